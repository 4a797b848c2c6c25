"""Everything a flow run or the Slack endpoint needs, built once from Settings at the entry point.

The ledger's engine is made at once; the HTTP client, the Slack client and the Jira trackers are
made (and their libraries imported) on first use, so a command that only reads the ledger pays for
none of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from phasegate.ledger.db import make_engine, sessions
from phasegate.settings import Settings

if TYPE_CHECKING:
    import httpx

    from phasegate.configs.schema import Engagement
    from phasegate.integrations.issue_tracker import JiraTracker
    from phasegate.integrations.slack_chat import SlackChat


class Runtime:
    def __init__(self, settings: Settings, *, http: httpx.Client | None = None, chat: SlackChat | None = None,
                 sleep: Callable[[float], None] = time.sleep, engine: Engine | None = None) -> None:
        """`engine`: the ledger's, when the caller already has one (it stays the caller's to dispose);
        by default one of its own on `settings.ledger_url`."""
        self.settings = settings
        self.sleep = sleep  # waits between evidence reads; tests record them instead
        self._own_engine = engine is None
        self.engine = engine if engine is not None else make_engine(settings.ledger_url)
        self.sessions: sessionmaker[Session] = sessions(self.engine, audit_key=settings.audit_key_bytes)
        self._http = http
        self._chat = chat
        self._trackers: dict[tuple[str, str], JiraTracker] = {}

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            from phasegate.integrations.http import client

            self._http = client(timeout=self.settings.metrics_timeout)
        return self._http

    @property
    def chat(self) -> SlackChat:
        if self._chat is None:
            from phasegate.integrations.slack_chat import SlackChat, make_web_client

            self._chat = SlackChat(make_web_client(self.settings.slack_bot_token.get_secret_value(),
                                                   self.settings.slack_api_url))
        return self._chat

    def tracker(self, engagement: Engagement) -> JiraTracker:
        """The Jira tracker for this engagement's site; ServiceUnavailable when it cannot be reached
        (raised by make_jira_client)."""
        url = self.settings.jira_sites.get(engagement.jira.url, engagement.jira.url)
        key = (url, engagement.jira.deployment)
        if key not in self._trackers:
            from phasegate.integrations.issue_tracker import JiraTracker
            from phasegate.integrations.jira_client import make_jira_client

            s = self.settings
            client = make_jira_client(url, engagement.jira.deployment, email=s.jira_email,
                                      api_token=s.jira_api_token.get_secret_value() if s.jira_api_token else None,
                                      pat=s.jira_pat.get_secret_value() if s.jira_pat else None,
                                      timeout=s.jira_timeout)
            self._trackers[key] = JiraTracker(client, engagement.jira.deployment)
        return self._trackers[key]

    def read_json(self, url: str, path: str) -> tuple[float, Any]:
        from phasegate.integrations.metric_sources import read_json_metric

        return read_json_metric(self.http, url, path)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._own_engine:
            self.engine.dispose()

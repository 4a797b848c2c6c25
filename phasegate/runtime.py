"""Everything a flow run or the Slack endpoint needs, built once from Settings at the entry point."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from configs.schema import Engagement
from integrations.issue_tracker import JiraTracker, make_jira_client
from integrations.metric_sources import read_json_metric
from integrations.slack_chat import SlackChat, make_web_client
from phasegate.ledger.db import make_engine, sessions
from phasegate.settings import Settings


class Runtime:
    def __init__(self, settings: Settings, *, http: httpx.Client | None = None, chat: SlackChat | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.sleep = sleep  # waits between evidence reads; tests record them instead
        self.engine = make_engine(settings.ledger_url)
        self.sessions: sessionmaker[Session] = sessions(self.engine)
        self.http = http or httpx.Client(timeout=settings.metrics_timeout)
        self.chat = chat or SlackChat(make_web_client(settings.slack_bot_token.get_secret_value(),
                                                      settings.slack_api_url))
        self._trackers: dict[tuple[str, str], JiraTracker] = {}

    def tracker(self, engagement: Engagement) -> JiraTracker:
        """The Jira tracker for this engagement's site; ServiceUnavailable when it cannot be reached
        (raised by make_jira_client)."""
        url = self.settings.jira_sites.get(engagement.jira.url, engagement.jira.url)
        key = (url, engagement.jira.deployment)
        if key not in self._trackers:
            s = self.settings
            client = make_jira_client(url, engagement.jira.deployment, email=s.jira_email,
                                      api_token=s.jira_api_token.get_secret_value() if s.jira_api_token else None,
                                      pat=s.jira_pat.get_secret_value() if s.jira_pat else None,
                                      timeout=s.jira_timeout)
            self._trackers[key] = JiraTracker(client, engagement.jira.deployment)
        return self._trackers[key]

    def read_json(self, url: str, path: str) -> tuple[float, Any]:
        return read_json_metric(self.http, url, path)

    def close(self) -> None:
        self.http.close()
        self.engine.dispose()

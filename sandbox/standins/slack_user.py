"""A scripted Slack user: clicks gate buttons and submits reason modals the way Slack delivers them,
as signed form-encoded HTTP requests to phasegate's endpoint. Used by the demo and the tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from phasegate.integrations.http import client
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.slack.signature import sign
from phasegate.states import Outcome

RETRY_HINT = "please click again"  # phasegate's answer when the ledger could not take a click


class SlackUser:
    def __init__(self, user_id: str, *, endpoint: str, signing_secret: str, slack: SlackStandin,
                 http: httpx.Client | None = None) -> None:
        self.user_id = user_id
        self.endpoint = endpoint.rstrip("/") + "/slack/interactions"
        self.secret = signing_secret
        self.slack = slack
        self.http = http or client(timeout=10)

    def send(self, payload: dict[str, Any], *, timestamp: int | None = None) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": sign(self.secret, stamp, body)}
        return self.http.post(self.endpoint, content=body, headers=headers)

    def click_payload(self, gate_id: int, outcome: Outcome, channel: str, message_ts: str,
                      action_ts: str | None = None) -> dict[str, Any]:
        return {
            "type": "block_actions",
            "user": {"id": self.user_id, "username": self.user_id.lower()},
            "trigger_id": self.slack.issue_trigger_id(),
            "response_url": self.slack.response_url(),
            "container": {"type": "message", "channel_id": channel, "message_ts": message_ts},
            "channel": {"id": channel},
            "actions": [{"type": "button", "action_id": f"gate:{outcome.value}", "block_id": f"gate-{gate_id}",
                         "value": str(gate_id), "action_ts": action_ts or f"{time.time():.6f}"}],
        }

    def click(self, gate_id: int, outcome: Outcome, channel: str, message_ts: str) -> httpx.Response:
        return self.send(self.click_payload(gate_id, outcome, channel, message_ts))

    def persist(self, payload: Callable[[], dict[str, Any]], recorded: Callable[[], bool], *,
                attempts: int = 4, patience: float = 10) -> httpx.Response:
        """Click as a person does: when phasegate answers that the ledger could not take the click
        ("... please click again in a minute"), click again after a pause. Stops when `recorded()`
        is true, when phasegate said anything else, or after `patience` seconds without a word."""
        for _ in range(attempts):
            sent = payload()
            response = self.send(sent)
            response.raise_for_status()
            url = sent.get("response_url")
            if not isinstance(url, str) or not self._told_to_retry(url, recorded, patience):
                return response
            time.sleep(1)
        return response

    def submit_persisting(self, view: dict[str, Any], reason: str, *, attempts: int = 4) -> httpx.Response:
        """Submit a form, again after a pause while phasegate says the ledger could not take it."""
        for _ in range(attempts):
            response = self.submit_view(view, reason)
            if response.status_code != 200 or RETRY_HINT not in response.text:
                return response
            time.sleep(1)
        return response

    def _told_to_retry(self, response_url: str, recorded: Callable[[], bool], patience: float) -> bool:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            said = self.slack.said_to(response_url)
            if any(RETRY_HINT in text for text in said):
                return True
            if said or recorded():
                return False
            time.sleep(0.05)
        return False

    def answer_with_reason(self, gate_id: int, outcome: Outcome, channel: str, message_ts: str, reason: str,
                           timeout: float = 10) -> httpx.Response:
        """Click, wait for the reason modal Slack would show, and submit it."""
        seen = len(self.slack.views)
        response = self.persist(lambda: self.click_payload(gate_id, outcome, channel, message_ts),
                                lambda: len(self.slack.views) > seen)
        response.raise_for_status()
        deadline = time.monotonic() + timeout
        while len(self.slack.views) <= seen:
            if time.monotonic() > deadline:
                raise TimeoutError("no reason modal was opened")
            time.sleep(0.05)
        view = self.slack.views[seen]
        return self.submit_persisting(view, reason)

    def submit_view(self, view: dict[str, Any], reason: str) -> httpx.Response:
        submitted = dict(view) | {"id": f"V{time.time_ns()}", "hash": f"{time.time_ns()}.x",
                                  "state": {"values": {"reason": {"reason": {"type": "plain_text_input",
                                                                              "value": reason}}}}}
        return self.send({"type": "view_submission", "user": {"id": self.user_id}, "view": submitted})

"""A scripted Slack user: clicks gate buttons and submits reason modals the way Slack delivers them,
as signed form-encoded HTTP requests to phasegate's endpoint. Used by the demo and the tests."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from phasegate.slack_signature import sign
from phasegate.states import Outcome
from sandbox.standins.slack_api import SlackStandin


class SlackUser:
    def __init__(self, user_id: str, *, endpoint: str, signing_secret: str, slack: SlackStandin,
                 http: httpx.Client | None = None) -> None:
        self.user_id = user_id
        self.endpoint = endpoint.rstrip("/") + "/slack/interactions"
        self.secret = signing_secret
        self.slack = slack
        self.http = http or httpx.Client(timeout=10)

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

    def answer_with_reason(self, gate_id: int, outcome: Outcome, channel: str, message_ts: str, reason: str,
                           timeout: float = 10) -> httpx.Response:
        """Click, wait for the reason modal Slack would show, and submit it."""
        seen = len(self.slack.views)
        response = self.click(gate_id, outcome, channel, message_ts)
        response.raise_for_status()
        deadline = time.monotonic() + timeout
        while len(self.slack.views) <= seen:
            if time.monotonic() > deadline:
                raise TimeoutError("no reason modal was opened")
            time.sleep(0.05)
        view = self.slack.views[seen]
        return self.submit_view(view, reason)

    def submit_view(self, view: dict[str, Any], reason: str) -> httpx.Response:
        submitted = dict(view) | {"id": f"V{time.time_ns()}", "hash": f"{time.time_ns()}.x",
                                  "state": {"values": {"reason": {"reason": {"type": "plain_text_input",
                                                                              "value": reason}}}}}
        return self.send({"type": "view_submission", "user": {"id": self.user_id}, "view": submitted})

"""Slack's Socket Mode: the same way in as the HTTP endpoint, for teams that cannot expose one.

With an app-level token (`PHASEGATE_SLACK_APP_TOKEN=xapp-...`) phasegate opens a WebSocket to Slack
(slack_sdk's built-in client, no extra dependency) and Slack delivers interactions and slash commands
over it as envelopes. Each envelope is decoded by phasegate (`phasegate.slack.payloads.decode_envelope`),
not by slack_sdk, so that every one is acknowledged, even one too deep to decode or whose payload is
not an object: Slack resends an envelope it has no acknowledgement for, again and again. Its payload
goes through the endpoint's own router (`phasegate.slack.interactions`: shape, identity, policy,
values, record), the acknowledgement carries what the endpoint would have answered over HTTP, and only
then is the slow work run (the endpoint's background tasks), so the acknowledgement stays inside
Slack's three seconds. Socket Mode has no request signatures: the connection itself is authenticated
by the app-level token.

    client = start_socket_mode(deps, app_token, web_client)
    ...
    client.close()
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import Future
from typing import Any

from fastapi import BackgroundTasks, Response
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web import WebClient

from phasegate.ledger.db import ENDPOINT_PATIENCE
from phasegate.ledger.writers import deadline
from phasegate.slack.deps import SlackDeps
from phasegate.slack.interactions import on_command, on_interaction
from phasegate.slack.payloads import Envelope, decode_envelope

log = logging.getLogger("phasegate.slack.socket")


def answer_payload(response: Response) -> dict[str, Any] | None:
    """What the HTTP endpoint would have put in its 200 body (a modal's field errors, an ephemeral
    reply), as an acknowledgement's payload; None for an empty answer or a refusal."""
    if response.status_code != 200 or not response.body:
        return None
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def handle(deps: SlackDeps, envelope: Envelope, background: BackgroundTasks) -> dict[str, Any] | None:
    """The acknowledgement payload for one envelope; the work to run after it is added to `background`."""
    if envelope.problem is not None:
        log.warning("socket mode %s envelope refused: %s", envelope.kind, envelope.problem)
        return None
    if envelope.kind == "interactive":
        response = on_interaction(deps, envelope.payload, background)
    elif envelope.kind == "slash_commands":  # the form fields the HTTP endpoint receives, as JSON
        response = on_command(deps, envelope.payload if isinstance(envelope.payload, dict) else {}, background)
    else:  # events_api and anything newer: not used by phasegate; acknowledged so Slack stops resending
        return None
    if response.status_code != 200:
        log.warning("socket mode %s envelope refused: %s", envelope.kind, bytes(response.body)[:200])
    return answer_payload(response)


class Client(SocketModeClient):
    """slack_sdk's built-in client, with the envelopes taken before slack_sdk decodes them (it drops,
    unacknowledged, one too deep for its decoder or whose payload is not an object); every other
    message (hello, disconnect) is slack_sdk's own."""

    def __init__(self, deps: SlackDeps, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deps = deps
        self._open = 0  # envelopes taken and not yet answered, with the work after their acknowledgement
        self._changed = threading.Condition()

    def enqueue_message(self, message: str) -> None:
        envelope = decode_envelope(message)
        if envelope is None:
            super().enqueue_message(message)
            return
        with self._changed:
            self._open += 1
        self.message_workers.submit(self.answer, envelope).add_done_callback(self._done)

    def _done(self, done: Future[None]) -> None:
        failed(done)
        with self._changed:
            self._open -= 1
            self._changed.notify_all()

    def idle(self, timeout: float) -> bool:
        """Wait until every envelope taken is answered and the work after it done; False if `timeout`
        passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._open == 0, timeout)

    def answer(self, envelope: Envelope) -> None:
        background = BackgroundTasks()
        ack: dict[str, Any] | None = None
        try:
            with deadline(ENDPOINT_PATIENCE):  # acknowledged within Slack's 3 s
                ack = handle(self.deps, envelope, background)
        finally:  # acknowledged even if handling it failed: a resent envelope would only fail again
            self.send_socket_mode_response(SocketModeResponse(envelope.envelope_id, ack))
        asyncio.run(background())  # after the acknowledgement, as the endpoint does after its answer


def failed(done: Future[None]) -> None:
    """An envelope whose handling raised (a bug): logged with its traceback; it was acknowledged."""
    exc = done.exception()
    if exc is not None:
        log.error("socket mode envelope failed", exc_info=exc)


def start_socket_mode(deps: SlackDeps, app_token: str, web_client: WebClient) -> Client:
    """Connect to Slack (apps.connections.open with the app-level token) and handle envelopes on the
    client's worker threads until `close()`; reconnects on its own when Slack drops the socket."""
    client = Client(deps, app_token=app_token, web_client=web_client, logger=log)
    client.connect()
    return client

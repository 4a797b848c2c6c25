"""Slack's Socket Mode: the same handlers as the HTTP endpoint, for teams that cannot expose one.

With an app-level token (`PHASEGATE_SLACK_APP_TOKEN=xapp-...`) phasegate opens a WebSocket to Slack
(slack_sdk's built-in client, no extra dependency) and Slack delivers interactions and slash commands
over it as envelopes. Each envelope is handled by the endpoint's own functions
(`phasegate.slack.interactions.on_interaction`, `phasegate.slack.change_requests.on_command`), acknowledged with what the endpoint would have
answered over HTTP, and only then is the slow work run (the endpoint's background tasks), so the
acknowledgement stays inside Slack's three seconds. Socket Mode has no request signatures: the
connection itself is authenticated by the app-level token.

    client = start_socket_mode(deps, app_token, web_client)
    ...
    client.close()
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import BackgroundTasks, Response
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web import WebClient

from phasegate.slack import change_requests as slack_cr
from phasegate.slack.deps import SlackDeps
from phasegate.slack.interactions import on_interaction

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


def handle(deps: SlackDeps, request: SocketModeRequest) -> tuple[dict[str, Any] | None, BackgroundTasks]:
    """The acknowledgement payload for one envelope, and the work to run after acknowledging it."""
    background = BackgroundTasks()
    payload = request.payload if isinstance(request.payload, dict) else {}
    if request.type == "interactive":
        response = on_interaction(deps, payload, background)
    elif request.type == "slash_commands":  # the same form fields the HTTP endpoint receives, as JSON
        body = urlencode({k: str(v) for k, v in payload.items()}).encode()
        response = slack_cr.on_command(deps, body, background)
    else:  # events_api and anything newer: not used by phasegate; acknowledged so Slack stops resending
        return None, background
    if response.status_code != 200:
        log.warning("socket mode %s envelope refused: %s", request.type, bytes(response.body)[:200])
    return answer_payload(response), background


def listener(deps: SlackDeps) -> Any:
    def on_request(client: SocketModeClient, request: SocketModeRequest) -> None:
        ack, background = handle(deps, request)
        client.send_socket_mode_response(SocketModeResponse(request.envelope_id, ack))
        asyncio.run(background())  # after the acknowledgement, as the endpoint does after its answer

    return on_request


def start_socket_mode(deps: SlackDeps, app_token: str, web_client: WebClient) -> SocketModeClient:
    """Connect to Slack (apps.connections.open with the app-level token) and handle envelopes on the
    client's worker threads until `close()`; reconnects on its own when Slack drops the socket."""
    client = SocketModeClient(app_token=app_token, web_client=web_client, logger=log)
    client.socket_mode_request_listeners.append(listener(deps))
    client.connect()
    return client

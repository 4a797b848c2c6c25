"""A local stand-in for Slack's Socket Mode WebSocket.

Why: phasegate's Socket Mode path should be tested with slack_sdk's real client over a real
WebSocket. Attached to a `SlackStandin`, this makes `apps.connections.open` (called with the
app-level token) hand out a ws:// URL served here; on connect it says `hello`, as Slack does, and
`deliver()` sends an envelope and waits for its acknowledgement, which is what Slack checks.

    socket = SlackSocketStandin(slack)
    socket.start()
    ack = socket.deliver("interactive", payload)      # the ack's payload, or {} for a bare ack
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from phasegate.sandbox.standins.loopback import LoopbackServer
from phasegate.sandbox.standins.slack_api import SlackStandin

ACK_TIMEOUT = 3.0  # Slack resends an envelope that is not acknowledged within 3 s


class NotAcknowledged(Exception):
    """The client did not acknowledge an envelope in time (Slack would resend it)."""


class SlackSocketStandin(LoopbackServer):
    def __init__(self, slack: SlackStandin) -> None:
        self.slack = slack
        self.connections = 0  # how many times a client connected (reconnects count)
        self._socket: WebSocket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = threading.Event()
        self._acks: dict[str, dict[str, Any]] = {}
        self._acked = threading.Condition()
        self.app = Starlette(routes=[WebSocketRoute("/link", self._link)])

    def start(self) -> Any:
        handle = super().start()
        self.slack.socket_url = handle.url.replace("http://", "ws://") + "/link"
        return handle

    def wait_connected(self, timeout: float = 10) -> None:
        if not self._connected.wait(timeout):
            raise NotAcknowledged("no Socket Mode client connected")

    def deliver(self, kind: str, payload: object, timeout: float = ACK_TIMEOUT) -> dict[str, Any]:
        """Send one envelope of `kind` ("interactive", "slash_commands") and return its ack's payload."""
        return self.deliver_json(kind, json.dumps(payload), timeout)

    def deliver_json(self, kind: str, payload: str, timeout: float = ACK_TIMEOUT) -> dict[str, Any]:
        """`deliver` with the payload as JSON text, sent as it is (one too deep for `json.dumps`, say)."""
        self.wait_connected()
        socket, loop = self._socket, self._loop
        if socket is None or loop is None:
            raise NotAcknowledged("the Socket Mode client went away")
        envelope_id = str(uuid.uuid4())
        head = {"envelope_id": envelope_id, "type": kind}
        tail = {"accepts_response_payload": kind in ("interactive", "slash_commands"), "retry_attempt": 0}
        envelope = json.dumps(head)[:-1] + ', "payload": ' + payload + ", " + json.dumps(tail)[1:]
        asyncio.run_coroutine_threadsafe(socket.send_text(envelope), loop).result(timeout)
        with self._acked:
            if not self._acked.wait_for(lambda: envelope_id in self._acks, timeout):
                raise NotAcknowledged(f"envelope {envelope_id} ({kind}) not acknowledged within {timeout:g} s")
            return self._acks.pop(envelope_id)

    async def _link(self, socket: WebSocket) -> None:
        await socket.accept()
        self._socket, self._loop = socket, asyncio.get_running_loop()
        self.connections += 1
        await socket.send_text(json.dumps({"type": "hello", "num_connections": 1,
                                           "connection_info": {"app_id": "A0PHASEGATE"}}))
        self._connected.set()
        try:
            while True:
                message = json.loads(await socket.receive_text())
                if isinstance(message, dict) and "envelope_id" in message:
                    with self._acked:
                        self._acks[str(message["envelope_id"])] = message.get("payload") or {}
                        self._acked.notify_all()
        except WebSocketDisconnect:
            pass
        finally:
            if self._socket is socket:
                self._socket = None
                self._connected.clear()

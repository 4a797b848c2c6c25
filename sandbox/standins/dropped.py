"""Close a connection without an answer after the app has acted on the request.

Why: the fault behind duplicated posts is a request Slack carried out whose answer never arrived
(a reset connection, a proxy timing out). The client sees "Remote end closed connection without
response" and cannot tell whether the post happened. ASGI has no way for an app to drop its
connection, so this wrapper reaches the uvicorn transport through `send` (uvicorn's cycle object,
the server `phasegate.ops.servers` runs the stand-ins on) and fails loudly on any other server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

DROP = "standin.drop_connection"  # a handler sets scope[DROP] = True: its answer is never sent


class DropConnections:
    """ASGI wrapper: when the wrapped app marks the request with `scope[DROP]`, the answer is swallowed
    and the connection closed instead."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dropped = False

        async def answer(message: MutableMapping[str, Any]) -> None:
            nonlocal dropped
            if not dropped and scope.get(DROP):
                transport = getattr(getattr(send, "__self__", None), "transport", None)
                if transport is None:
                    raise RuntimeError("DropConnections needs uvicorn's h11 server to reach the connection")
                transport.close()
                dropped = True
            if not dropped:
                await send(message)

        await self.app(scope, receive, answer)
        if dropped:  # wait for uvicorn to see the close, so it does not try to send a 500 instead
            while (await receive())["type"] != "http.disconnect":
                pass

"""What keeps the sandbox on this machine.

Its Slack endpoint takes any request signed with `demo.SECRET`, which is published in this
repository, and its page signs a click for any user id: both are safe only where nobody else can
reach them. So

- the endpoint always listens on 127.0.0.1, whatever PHASEGATE_SLACK_HOST says (`loopback_only`,
  which also says what it overrode);
- the page answers only requests whose Host, and Origin when a browser sends one, name a loopback
  address on the page's own port (`LoopbackOnly`). A web page elsewhere can still make a browser on
  this machine send requests to 127.0.0.1: by DNS rebinding (its own name made to resolve to
  127.0.0.1, so the Host header carries that name) or cross-site (the Origin header carries its own).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from phasegate.settings import Settings

LOOPBACK = "127.0.0.1"


def is_loopback(name: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1); a name that merely starts like one is not."""
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def loopback_only(settings: Settings) -> tuple[Settings, str | None]:
    """`settings` with the Slack endpoint on 127.0.0.1, and the line that says so when the setting
    asked for anything that is not loopback."""
    if settings.slack_host == LOOPBACK:
        return settings, None
    note = None if is_loopback(settings.slack_host) else (
        f"PHASEGATE_SLACK_HOST={settings.slack_host} is not used here: the sandbox's Slack endpoint listens on "
        f"{LOOPBACK} only (it takes any request signed with the demo's published secret)")
    return settings.model_copy(update={"slack_host": LOOPBACK}), note


def on_loopback(url: str, port: int) -> bool:
    """Whether `url` (`//host:port` for a Host header) names a loopback address on `port` over HTTP."""
    try:
        parts = urlsplit(url)
        named_port = parts.port or (80 if parts.scheme in ("http", "") else None)
    except ValueError:  # a port that is not a number
        return False
    return parts.scheme in ("http", "") and is_loopback(parts.hostname or "") and named_port == port


def refusal(host: str | None, origin: str | None, port: int | None) -> str | None:
    """Why a request with this Host and Origin is refused by a page listening on `port`, if it is."""
    if port is None:
        return "the sandbox page answers over TCP on loopback only"
    own = f"http://{LOOPBACK}:{port}"
    if host is None or not on_loopback(f"//{host}", port):
        return f"Host {host!r} refused: the sandbox page answers only on loopback, at {own}"
    if origin is not None and not (origin.startswith("http://") and on_loopback(origin, port)):
        return f"Origin {origin!r} refused: the sandbox page answers only its own page on loopback, at {own}"
    return None


class LoopbackOnly:
    """ASGI middleware: 403, before any handler runs, unless `refusal` finds nothing wrong."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        server = scope.get("server")
        problem = refusal(headers.get("host"), headers.get("origin"), server[1] if server else None)
        if problem is None:
            await self.app(scope, receive, send)
            return
        await JSONResponse({"detail": problem}, status_code=403)(scope, receive, send)

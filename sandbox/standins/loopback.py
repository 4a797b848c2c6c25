"""The base of the stand-ins: an ASGI `app` served on a free loopback port between start() and stop().

Only the local world needs it; the product serves its one endpoint with `serve_in_thread` directly.
"""

from __future__ import annotations

from phasegate.ops.servers import ServerHandle, serve_in_thread


class LoopbackServer:
    app: object
    _handle: ServerHandle | None = None

    def start(self) -> ServerHandle:
        self._handle = serve_in_thread(self.app)
        return self._handle

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.stop()
            self._handle = None

    @property
    def url(self) -> str:
        if self._handle is None:
            raise RuntimeError(f"{type(self).__name__} is not started; call start() first")
        return self._handle.url

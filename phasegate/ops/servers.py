"""Run an ASGI app on a loopback port in a background thread.

The Slack endpoint (`phasegate up`, the tests) and the sandbox's stand-ins need a real HTTP server that
starts in well under a second and stops cleanly; uvicorn in a daemon thread is enough. Stopping one
takes milliseconds, not uvicorn's 0.15-0.2 s (a main loop that looks for the exit flag every 0.1 s, a
fixed 0.1 s sleep and 0.1 s polls in its shutdown): the tests start and stop hundreds of stand-ins.

    handle = serve_in_thread(app)          # port 0: the OS picks a free one
    httpx.get(handle.url + "/health")
    handle.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

GRACE = 5.0  # seconds open connections get to finish their responses once the server stops
POLL = 0.005  # seconds between looks at whether they have


class _Server(uvicorn.Server):
    """uvicorn's server, woken to stop rather than polled, its shutdown as uvicorn's without the
    fixed waits: stop accepting, ask each connection to close after its response, wait for them
    (GRACE at most), then the app's lifespan shutdown."""

    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()  # set once it accepts connections, for the thread that waits on it

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    async def main_loop(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # the Date header once a second, the exit flag
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.1)

    def wake(self) -> None:
        """Stop from another thread: at once if the main loop runs, else at its first look."""
        self.should_exit = True
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed: it has stopped
                self._loop.call_soon_threadsafe(self._stopping.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        until = loop.time() + GRACE
        while (self.server_state.connections or self.server_state.tasks) and loop.time() < until:
            await asyncio.sleep(POLL)
        for task in self.server_state.tasks:
            task.cancel(msg="the server stopped")
        if not self.force_exit:
            await self.lifespan.shutdown()


@dataclass
class ServerHandle:
    url: str
    port: int
    server: _Server
    thread: threading.Thread

    def stop(self, timeout: float = 5.0 + GRACE) -> None:
        self.server.wake()
        self.thread.join(timeout)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_in_thread(app: object, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Start `app` with uvicorn and return once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = int(sock.getsockname()[1])
    # lifespan: the app's shutdown (the Slack endpoint's own refresher, if any) runs when it is stopped
    config = uvicorn.Config(app, log_level="warning", lifespan="auto", access_log=False)  # type: ignore[arg-type]
    server = _Server(config)
    # run in a copy of the caller's context: the Prefect settings in force now apply to the handlers
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,), kwargs={"sockets": [sock]},
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.ready.wait(0.05):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"server on {host}:{port} did not start")
    return ServerHandle(url=f"http://{host}:{port}", port=port, server=server, thread=thread)


"""Run an ASGI app on a loopback port in a background thread.

The Slack endpoint (`phasegate up`, the tests) and the sandbox's stand-ins need a real HTTP server that
starts in well under a second and stops cleanly; uvicorn in a daemon thread is enough.

    handle = serve_in_thread(app)          # port 0: the OS picks a free one
    httpx.get(handle.url + "/health")
    handle.stop()
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn


@dataclass
class ServerHandle:
    url: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
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
    server = uvicorn.Server(config)
    # run in a copy of the caller's context: the Prefect settings in force now apply to the handlers
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,), kwargs={"sockets": [sock]},
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"server on {host}:{port} did not start")
        time.sleep(0.01)
    return ServerHandle(url=f"http://{host}:{port}", port=port, server=server, thread=thread)


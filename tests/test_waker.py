"""The refresher's Waker asks the Prefect API once per request: a refused connection or a 503 makes the
wake fail at once (PrefectUnreachable), so that the approver is told that the next step waits for the
orchestrator, rather than Prefect's client retrying for a minute (it retries a refused connection
once it has connected before, and a 503 always) while the approver hears nothing.

The API here is a small stand-in that answers what a Prefect server answers behind a proxy whose
Prefect has gone: a 404 for the run the first time (the client has connected), then 503."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import uuid4

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from phasegate.ops.servers import ServerHandle, serve_in_thread
from phasegate.orchestration.resume import Waker
from phasegate.orchestration.runs import PrefectUnreachable


class GoneAfterOne:
    def __init__(self) -> None:
        self.requests: list[str] = []

    async def respond(self, request: Request) -> JSONResponse:
        self.requests.append(request.url.path)
        if len(self.requests) == 1:
            return JSONResponse({"detail": "Flow run not found"}, status_code=404)
        return JSONResponse({"detail": "no healthy upstream"}, status_code=503)


@pytest.fixture
def api() -> Iterator[tuple[GoneAfterOne, ServerHandle]]:
    answer = GoneAfterOne()
    handle = serve_in_thread(Starlette(routes=[Route("/api/{path:path}", answer.respond, methods=["GET", "POST"])]))
    try:
        yield answer, handle
    finally:
        handle.stop()


def test_a_wake_asks_once_and_says_the_api_is_away(api: tuple[GoneAfterOne, ServerHandle]) -> None:
    answer, handle = api
    waker = Waker(wait=5)
    try:
        with temporary_settings(updates={PREFECT_API_URL: f"{handle.url}/api"}):
            assert waker.wake(str(uuid4())) is False  # no such run: the client has connected
            with pytest.raises(PrefectUnreachable, match="the Prefect API is not reachable"):
                waker.wake(str(uuid4()))
            assert PREFECT_CLIENT_MAX_RETRIES.value() > 0  # the caller's own settings are untouched
    finally:
        waker.close()
    assert len(answer.requests) == 2, answer.requests  # one read each: the 503 was not asked again


def test_a_refused_connection_fails_the_wake_after_the_client_has_connected(
        api: tuple[GoneAfterOne, ServerHandle]) -> None:
    """The API comes back on its port three seconds after it went: a client that retried would find
    it there and wake the run, with the approver told nothing meanwhile."""
    answer, handle = api
    back: list[ServerHandle] = []
    comes_back = threading.Timer(3.0, lambda: back.append(serve_in_thread(handle.server.config.app, port=handle.port)))
    waker = Waker(wait=5)
    try:
        with temporary_settings(updates={PREFECT_API_URL: f"{handle.url}/api"}):
            assert waker.wake(str(uuid4())) is False
            handle.stop()  # nothing listens on the port until the timer fires
            comes_back.start()
            with pytest.raises(PrefectUnreachable, match="ConnectError"):
                waker.wake(str(uuid4()))
    finally:
        comes_back.cancel()
        comes_back.join()
        waker.close()
        for server in back:
            server.stop()
    assert len(answer.requests) == 1, answer.requests

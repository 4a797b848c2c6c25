"""How the refresher's Waker meets a Prefect API that is away or busy.

A refused connection fails the wake at once (PrefectUnreachable), so that the approver is told that
the next step waits for the orchestrator, rather than Prefect's client retrying it for a minute (as
it does once it has connected before) while the approver hears nothing. A busy API (a 503: a Prefect
server on SQLite answers so while its database is locked) is asked again after the Waker's pauses,
each time once: Prefect's own retries are off.

The API here is a small stand-in that answers a scripted list of statuses: the first 404 (no such
run) shows the client has connected."""

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


class Scripted:
    """Answers 404 (no such flow run) or 503 in the order given, then 503 for good."""

    def __init__(self, *statuses: int) -> None:
        self.statuses, self.requests = list(statuses), 0

    async def respond(self, request: Request) -> JSONResponse:
        self.requests += 1
        status = self.statuses.pop(0) if self.statuses else 503
        return JSONResponse({"detail": "Flow run not found" if status == 404 else "database is locked"},
                            status_code=status)


@pytest.fixture
def api() -> Iterator[tuple[Scripted, ServerHandle]]:
    answer = Scripted(404)
    handle = serve_in_thread(Starlette(routes=[Route("/api/{path:path}", answer.respond, methods=["GET", "POST"])]))
    try:
        yield answer, handle
    finally:
        handle.stop()


def test_a_busy_api_is_asked_again_after_a_pause_and_once_each_time(api: tuple[Scripted, ServerHandle]) -> None:
    """(Prefect's client, its retries off, still waits about 2 s after a 503 before it raises.)"""
    answer, handle = api
    waker = Waker(wait=5, pauses=(0.01,))
    try:
        with temporary_settings(updates={PREFECT_API_URL: f"{handle.url}/api"}):
            assert waker.wake(str(uuid4())) is False  # no such run: the client has connected
            answer.statuses = [503, 404]
            assert waker.wake(str(uuid4())) is False  # busy, then answered after the pause
            assert answer.requests == 3
            with pytest.raises(PrefectUnreachable, match="PrefectHTTPStatusError") as busy:
                waker.wake(str(uuid4()))  # busy, and still busy after the pause
            assert not busy.value.refused
            assert PREFECT_CLIENT_MAX_RETRIES.value() > 0  # the caller's own settings are untouched
    finally:
        waker.close()
    assert answer.requests == 5  # Prefect's retries would have asked six times each time


def test_a_refused_connection_fails_the_wake_after_the_client_has_connected(
        api: tuple[Scripted, ServerHandle]) -> None:
    """The API comes back on its port three seconds after it went: a client that retried would find
    it there and wake the run, with the approver told nothing meanwhile."""
    answer, handle = api
    back: list[ServerHandle] = []
    answer.statuses = [404, 404]
    comes_back = threading.Timer(3.0, lambda: back.append(serve_in_thread(handle.server.config.app, port=handle.port)))
    waker = Waker(wait=5, pauses=(0.01,))
    try:
        with temporary_settings(updates={PREFECT_API_URL: f"{handle.url}/api"}):
            assert waker.wake(str(uuid4())) is False
            handle.stop()  # nothing listens on the port until the timer fires
            comes_back.start()
            with pytest.raises(PrefectUnreachable, match="ConnectError") as refused:
                waker.wake(str(uuid4()))
            assert refused.value.refused
    finally:
        comes_back.cancel()
        comes_back.join()
        waker.close()
        for server in back:
            server.stop()
    assert answer.requests == 1

"""A click answered in time however busy the ledger is: acknowledged at once, finished after.

Slack shows the clicker an error when the answer takes more than 3 s, and a click's answer is an
empty 200 whatever happened (what happened is shown on the prompt, or told through the click's
response_url). So a click's handler gets `SlackDeps.ack_within` seconds; when it has not returned by
then (its turn behind other writers, a lock held by another process), the click is acknowledged
with the empty 200 it would have got and the handler carries on, on its own thread, with the
patience of a click that no longer keeps anyone waiting (`CLICK_PATIENCE` while the line of writers
moves or its writers keep working; a ledger that is down or hung fails them, and the click gives up
`ENDPOINT_TIMEOUT` after the line last moved). Whatever it then has
to say (a refusal, "not recorded") goes through the response_url, as it would have on time. Clicks wait for the ledger in a line of their own
(`ClickLine`), not on the server's thread pool.

Forms (view_submission) and slash commands are not acknowledged early: their answer carries what
they show (a form's field errors, an ephemeral text), so they keep Slack's deadline
(`ENDPOINT_PATIENCE`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context

from fastapi import BackgroundTasks, Response

from phasegate.ledger.db import CLICK_PATIENCE
from phasegate.ledger.writers import deadline

log = logging.getLogger("phasegate.slack")
_FINISHING: set[asyncio.Task[None]] = set()  # clicks acknowledged early, still finishing (kept from the GC)
WORKERS = 6  # the ledger takes one writer at a time on SQLite, four per process on PostgreSQL


class ClickLine:
    """Clicks handled a few at a time, first come first served, on threads of their own.

    Acknowledged early, a click no longer holds its sender back, so a burst arrives faster than the
    ledger records it. Handled on the server's shared thread pool, every waiting click would be a
    thread contending for the interpreter with the event loop that answers the next ones; here they
    wait as queued jobs, and the event loop keeps answering within `ack_within`.
    """

    def __init__(self, workers: int = WORKERS) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="phasegate-clicks")
        self._open = 0
        self._changed = threading.Condition()

    def run(self, job: Callable[[], Response]) -> Future[Response]:
        """`job()` in its turn, in the caller's context (its ledger deadline)."""
        context = copy_context()
        with self._changed:
            self._open += 1

        def done(_: Future[Response]) -> None:
            with self._changed:
                self._open -= 1
                self._changed.notify_all()

        future = self._pool.submit(context.run, job)
        future.add_done_callback(done)
        return future

    def idle(self, timeout: float) -> bool:
        """Wait until no click is queued or being handled; False if `timeout` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._open == 0, timeout)


def is_click(payload: object) -> bool:
    return isinstance(payload, dict) and payload.get("type") == "block_actions"


async def acknowledged(line: ClickLine, handler: Callable[[BackgroundTasks], Response],
                       background: BackgroundTasks, *, started: float, within: float) -> Response:
    """`handler(later)`'s answer if it returns within `within` seconds of `started` (a
    time.monotonic()); else an empty 200 at once, the handler finishing after it. Its background
    work (`later`) runs after the answer either way."""
    later = BackgroundTasks()
    with deadline(CLICK_PATIENCE - (time.monotonic() - started)):  # copied into the task's context
        work = asyncio.wrap_future(line.run(lambda: handler(later)))
    try:
        response = await asyncio.wait_for(asyncio.shield(work), max(0.0, within - (time.monotonic() - started)))
    except TimeoutError:
        task = asyncio.ensure_future(finish(work, later))
        _FINISHING.add(task)
        task.add_done_callback(_FINISHING.discard)
        return Response(status_code=200)
    background.add_task(later)
    return response


async def finish(work: asyncio.Future[Response], later: BackgroundTasks) -> None:
    """A click acknowledged early: wait for its handler, then run what it left for after the answer."""
    try:
        response = await work
    except Exception:  # a bug: logged, as an unhandled error in a request would be
        log.exception("a click acknowledged early failed")
        return
    if response.status_code != 200:
        log.warning("a click acknowledged early was refused: %s", bytes(response.body)[:200])
    await later()


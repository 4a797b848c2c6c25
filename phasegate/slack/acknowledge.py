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
(`ClickLine`), not on the server's thread pool, and are recorded in groups: one transaction for the
clicks that waited together (issue 23: a burst costs one BEGIN and one COMMIT per group, not per click),
whose gates are read once for all of them, and whose writes are sent once per statement
(phasegate.ledger.groups).

Forms (view_submission) and slash commands are not acknowledged early: their answer carries what
they show (a form's field errors, an ephemeral text), so they keep Slack's deadline
(`ENDPOINT_PATIENCE`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import Context, copy_context
from dataclasses import dataclass, field

from fastapi import BackgroundTasks, Response
from sqlalchemy.orm import Session, sessionmaker

from phasegate.ledger import gates
from phasegate.ledger.db import CLICK_PATIENCE, group
from phasegate.ledger.writers import DEADLINE, deadline

log = logging.getLogger("phasegate.slack")
_FINISHING: set[asyncio.Task[None]] = set()  # clicks acknowledged early, still finishing (kept from the GC)
GROUP_MOST = 64  # clicks recorded in one transaction at most
ALONE_WORKERS = 6  # clicks handled one by one after their group failed: as many at once as the ledger takes
IDLE_EXIT = 30.0  # seconds without a click after which the line's thread ends (the next click starts another)

Handler = Callable[[BackgroundTasks], Response]
Hint = tuple[int, str]  # the gate and the delivery id a click's answer will be recorded under, if it is one
Done = tuple[Response, BackgroundTasks]  # the answer, and what its handler left for after it


@dataclass(eq=False)  # a job is itself: compared by identity
class _Job:
    sessions: sessionmaker[Session]
    handler: Handler
    context: Context  # the request's: its ledger deadline
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Done]
    hint: Hint | None = None
    done: Done | BaseException | None = field(default=None)

    def run(self) -> None:
        later = BackgroundTasks()
        try:
            self.done = (self.context.run(self.handler, later), later)
        except Exception as exc:  # a bug, or a fault its handler does not answer: the request's to raise
            self.done = exc


class ClickLine:
    """Clicks recorded in groups, first come first served, on a thread of their own (on PostgreSQL a
    group's lock waits are short: `phasegate.ledger.db.GROUP_LOCK_WAIT` says why).

    Acknowledged early, a click no longer holds its sender back, so a burst arrives faster than one
    transaction a click could record it. The line's thread takes every click waiting (GROUP_MOST at
    most) and runs their handlers one after the other inside one write transaction, each joining it
    (phasegate.ledger.db.group): one turn, one BEGIN and one COMMIT (one fsync) for the group, and one
    wake of the event loop to hand back all its answers. A refusal is decided before anything is
    written and leaves the group as it was. A group whose transaction fails (its BEGIN or its COMMIT:
    the ledger is down, busy past its patience, or failed mid-group; or a handler failed after
    writing) records nothing; each of its clicks is
    then handled again on its own, as Slack's redelivery of it would be (answers carry delivery ids,
    so one that the failed COMMIT did record is not recorded twice), and answered for itself.
    """

    def __init__(self, most: int = GROUP_MOST) -> None:
        self._most = most
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._alone = ThreadPoolExecutor(ALONE_WORKERS, thread_name_prefix="phasegate-click")
        self._thread: threading.Thread | None = None
        self._open = 0
        self._changed = threading.Condition()

    def run(self, sessions: sessionmaker[Session], handler: Handler, hint: Hint | None = None) -> asyncio.Future[Done]:
        """`handler(later)` in its turn, in the caller's context (its ledger deadline), its write
        transaction joining its group's; the answer and `later` once the group has committed. `hint`:
        the gate answer it will record, read with its group's others before any handler runs."""
        loop = asyncio.get_running_loop()
        job = _Job(sessions, handler, copy_context(), loop, loop.create_future(), hint)
        with self._changed:
            self._open += 1
            self._queue.put(job)
            if self._thread is None:  # the first click, or the first since the line was idle for IDLE_EXIT
                self._thread = threading.Thread(target=self._serve, name="phasegate-clicks", daemon=True)
                self._thread.start()
        return job.future

    def idle(self, timeout: float) -> bool:
        """Wait until no click is queued or being handled; False if `timeout` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._open == 0, timeout)

    def _serve(self) -> None:
        while True:
            try:
                jobs = [self._queue.get(timeout=IDLE_EXIT)]
            except queue.Empty:
                with self._changed:
                    if self._queue.empty():  # a click is put under this lock: none can be left behind
                        self._thread = None
                        return
                continue
            while len(jobs) < self._most:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            first = jobs[0].sessions
            grouped = [job for job in jobs if job.sessions is first]
            for job in jobs:
                if job.sessions is not first:  # another ledger's: each on its own
                    self._alone.submit(self._one, job)
            if len(grouped) == 1:
                self._one(grouped[0])
            else:
                self._group(grouped)

    def _group(self, jobs: list[_Job]) -> None:
        deadlines = [d for job in jobs if (d := job.context.get(DEADLINE)) is not None]
        hints = [job.hint for job in jobs if job.hint is not None]
        try:
            with deadline(min(deadlines, default=time.monotonic() + CLICK_PATIENCE) - time.monotonic()), \
                    group(jobs[0].sessions, lambda conn: gates.prefetch(conn, hints)) as sound:
                for job in jobs:
                    job.run()
                    if not sound():  # it failed after writing: the group commits nothing
                        break
        except Exception as exc:  # nothing of the group was recorded: each click on its own
            log.info("a group of %d clicks was not recorded, handling each on its own: %s", len(jobs), exc)
            for job in jobs:
                self._alone.submit(self._one, job)
            return
        self._hand_back(jobs)

    def _one(self, job: _Job) -> None:
        job.run()
        self._hand_back([job])

    def _hand_back(self, jobs: list[_Job]) -> None:
        loops: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            loops.setdefault(job.loop, []).append(job)
        for loop, theirs in loops.items():  # one wake of each event loop for all its answers
            try:
                loop.call_soon_threadsafe(_settle, theirs)
            except RuntimeError:  # that loop is closed (its server stopped): nobody waits for these answers
                log.info("%d click answers not handed back: their server has stopped", len(theirs))
        with self._changed:
            self._open -= len(jobs)
            self._changed.notify_all()


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # its request went away
            continue
        if isinstance(job.done, BaseException):
            job.future.set_exception(job.done)
        elif job.done is not None:
            job.future.set_result(job.done)


def is_click(payload: object) -> bool:
    return isinstance(payload, dict) and payload.get("type") == "block_actions"


async def acknowledged(line: ClickLine, sessions: sessionmaker[Session], handler: Handler,
                       background: BackgroundTasks, *, started: float, within: float,
                       hint: Hint | None = None) -> Response:
    """`handler(later)`'s answer if it is recorded within `within` seconds of `started` (a
    time.monotonic()); else an empty 200 at once, the handler finishing after it. Its background
    work (`later`) runs after the answer either way."""
    with deadline(CLICK_PATIENCE - (time.monotonic() - started)):  # copied into the job's context
        work = line.run(sessions, handler, hint)
    if not await settled_within(work, within - (time.monotonic() - started)):
        task = asyncio.ensure_future(finish(work))
        _FINISHING.add(task)
        task.add_done_callback(_FINISHING.discard)
        return Response(status_code=200)
    response, later = work.result()
    background.add_task(later)
    return response


async def settled_within(work: asyncio.Future[Done], seconds: float) -> bool:
    """Whether `work` settles within `seconds`; it goes on either way (wait_for over shield, without
    the task and the two futures they make for each click)."""
    if not work.done():
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        timer = loop.call_later(max(0.0, seconds), wake)
        work.add_done_callback(wake)
        try:
            await waiter
        finally:
            timer.cancel()
            work.remove_done_callback(wake)
    return work.done()


async def finish(work: asyncio.Future[Done]) -> None:
    """A click acknowledged early: wait for its handler, then run what it left for after the answer."""
    try:
        response, later = await work
    except Exception:  # a bug: logged, as an unhandled error in a request would be
        log.exception("a click acknowledged early failed")
        return
    if response.status_code != 200:
        log.warning("a click acknowledged early was refused: %s", bytes(response.body)[:200])
    await later()

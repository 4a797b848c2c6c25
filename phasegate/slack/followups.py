"""The work after an answer, kept off the answering path.

The Slack endpoint answers each click within Slack's three seconds and then has follow-up work:
re-render the prompt from the ledger, `chat.update` it, wake the run. Done as request background
tasks, that work takes the same thread pool and lock slots as the next clicks' answers, so a burst
of clicks is answered more slowly the more of them decide gates. Here a few threads of their own do
it, oldest first, never two at once for one key, with at most one pending job per key: ten answers
on one gate while its refresh waits make one refresh (it re-renders from the ledger, so it shows all
ten) that wakes the run if any of them decided the gate.

Jobs live in memory, as background tasks did: a process that dies loses the refreshes it had not
done; the answers are in the ledger, the next click on the gate (an answer, or a click the closed gate
refuses) or `gate show` re-renders, the run re-renders as it carries the decision out, and the gate
watch wakes runs whose gate is decided.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from contextvars import Context, copy_context

from phasegate.ledger.writers import DEADLINE

log = logging.getLogger("phasegate.slack.followups")


WORKERS = 4  # a slow Slack call holds up one of these, not every prompt
CLICKS_POLL = 0.05  # seconds between looks at whether clicks still wait for the ledger


class Followups:
    """`clicks_waiting`: whether answers are queued for the ledger right now; while they are, one
    follow-up runs at a time (never none, so a long burst starves no prompt), leaving the process's
    CPU to the answers Slack is waiting for."""

    def __init__(self, workers: int = WORKERS, name: str = "phasegate-followups",
                 clicks_waiting: Callable[[], bool] = lambda: False) -> None:
        self.workers, self.name, self.clicks_waiting = workers, name, clicks_waiting
        self._pending: dict[Hashable, tuple[Callable[[bool], None], bool, Context]] = {}  # oldest first
        self._running: set[Hashable] = set()
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(self, key: Hashable, job: Callable[[bool], None], flag: bool) -> None:
        """Run `job(flag)` soon, in the caller's context (its Prefect settings, say); a job already
        pending for `key` runs once, with the flags OR-ed."""
        with self._changed:
            pending = self._pending.pop(key, None)
            context = copy_context()
            context.run(DEADLINE.set, None)  # after the answer: the request's deadline (Slack's 3 s) is not the job's
            self._pending[key] = (job, flag or (pending is not None and pending[1]), context)
            if not self._threads:
                self._threads = [threading.Thread(target=self._drain, name=f"{self.name}-{n}", daemon=True)
                                 for n in range(self.workers)]
                for thread in self._threads:
                    thread.start()
            self._changed.notify_all()

    def idle(self, timeout: float) -> bool:
        """Wait until nothing is pending or running; False if `timeout` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._running, timeout)

    def _next(self) -> Hashable | None:
        return next((key for key in self._pending if key not in self._running), None)

    def _may_start(self) -> bool:
        return self._next() is not None and not (self._running and self.clicks_waiting())

    def _drain(self) -> None:
        while True:
            with self._changed:
                while not self._changed.wait_for(self._may_start, CLICKS_POLL):
                    pass  # the clicks' queue changes without a word to this one: look again
                key = self._next()
                job, flag, context = self._pending.pop(key)
                self._running.add(key)
            try:
                context.run(job, flag)
            except Exception:  # a bug in one job must not stop the others'
                log.exception("follow-up for %s failed", key)
            finally:
                with self._changed:
                    self._running.discard(key)
                    self._changed.notify_all()

"""The refresher: the work after an answer, done outside the process that answered the click.

Recording an answer marks its prompt in the ledger, in the answer's own transaction
(phasegate.ledger.followups). The refresher, on connections of its own, claims the marks due, the
oldest first, a batch at a time, and for each one (a few at once on threads of their own, never two
for one prompt): draws the prompt once from the ledger and `chat.update`s it, however many answers
made the mark; wakes the run when an answer decided (with the `wake` it is given: in production one
long-lived Prefect client, phasegate.orchestration.resume.Waker); and deletes the mark only once the
prompt is drawn. A Slack failure (a 5xx, a timeout, a 429 whose Retry-After the Slack client has
already waited out three times) puts the mark off by BACKOFF and it is tried again; a mark made
meanwhile is done again. When the run cannot be woken because the Prefect API does not answer, the
approver who decided (in Slack) is told, once, that the next step starts when the orchestrator is
back, and the wake is left to `phasegate up`'s catch-up and the gate watch (phasegate/gates/watch.py),
which wake every run whose gate is decided: the refresher does not try again itself.

`phasegate up`, `phasegate serve-slack` and the sandbox run it as a process of its own
(phasegate/ops/refresher.py); a `SlackDeps` built without that (tests, an embedded endpoint) runs it
on a thread that the first answer starts (`poke`) and that ends after LINGER seconds with nothing to
do. Either way a process that dies loses nothing: the marks are in the ledger, and the next
refresher takes them (a mark claimed by the dead one when its lease, LEASE, ends).

While a burst of answers is coming in (BURST prompts or more first marked in the last SETTLE
seconds), the refresher leaves the marks younger than HOLD alone: the CPU and the ledger go to
recording the clicks, the prompts a burst marks twice are drawn once, and no mark waits more than
HOLD for it (issue 23: on PostgreSQL, a refresher working beside a burst cost it about a quarter
of its clicks a second).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from phasegate.errors import EXPECTED, NotFound
from phasegate.gates.answers import RECORDED_NEXT_STEP_LATER
from phasegate.integrations.slack_chat import SlackChat
from phasegate.ledger import change_requests, followups, gates
from phasegate.ledger.db import transaction
from phasegate.ledger.followups import Pending
from phasegate.ledger.models import utcnow
from phasegate.ledger.writers import DEADLINE
from phasegate.messages import changes as cr_messages
from phasegate.messages.prompts import draw
from phasegate.orchestration.runs import PrefectUnreachable
from phasegate.states import Prompt

log = logging.getLogger("phasegate.refresher")

WORKERS = 4  # prompts drawn at once: a slow Slack call holds up one of these, not every prompt
BATCH = 32  # marks claimed at a time
POLL = 0.25  # seconds between looks at the ledger when nothing was due
LEASE = 120.0  # seconds a claimed mark is left to its refresher (a wake may wait 30 s for the run to pause)
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # seconds before a failed mark is tried again, by try
LINGER = 5.0  # seconds an on-demand refresher thread waits for work before it ends
BURST, SETTLE = 32, 0.5  # prompts first marked within SETTLE seconds: a burst of answers is coming in
HOLD = 2.0  # seconds a mark is left alone at most while a burst comes in


class Refresher:
    def __init__(self, sessions: sessionmaker[Session], chat: SlackChat, wake: Callable[[str], object], *,
                 workers: int = WORKERS, poll: float = POLL, lease: float = LEASE,
                 backoff: tuple[float, ...] = BACKOFF, burst: int = BURST, hold: float = HOLD) -> None:
        self.sessions, self.chat, self.wake = sessions, chat, wake
        self.poll, self.lease, self.backoff = poll, lease, backoff
        self.burst, self.hold = burst, hold
        self.holding = False  # the last pass left young marks alone: a burst was coming in
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="phasegate-refresh")
        self._poked = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, stop: threading.Event, *, linger: float | None = None) -> None:
        """Pass after pass until `stop` is set (or, with `linger`, until nothing was due for that long)."""
        quiet_since = time.monotonic()
        while not stop.is_set():
            try:
                done = self.pass_once()
            except SQLAlchemyError as exc:  # the ledger is away: look again later
                log.warning("could not take follow-ups from the ledger: %s", exc)
                done, self.holding = 0, False
            if done:
                quiet_since = time.monotonic()
                continue
            if linger is not None and not self.holding and time.monotonic() - quiet_since > linger:
                return
            self._poked.wait(self.poll)
            self._poked.clear()

    def pass_once(self) -> int:
        """Claim the marks due now and do them (during a burst, those made HOLD ago); how many there were."""
        with transaction(self.sessions) as session:
            now = utcnow()
            self.holding = followups.made_since(session, now - timedelta(seconds=SETTLE)) >= self.burst
            made_by = now - timedelta(seconds=self.hold) if self.holding else None
            batch = followups.take(session, now, BATCH, lease=self.lease, made_by=made_by)
        context = copy_context()  # the workers talk to the Prefect API this thread was given
        list(self._pool.map(lambda pending: context.copy().run(self.one, pending), batch))  # each prompt once
        return len(batch)

    def one(self, pending: Pending) -> None:
        try:
            self.follow_up(pending)
        except Exception as exc:  # a bug, or the ledger failing: the mark is tried again later
            log.exception("follow-up of %s %s failed", pending.prompt.value, pending.target)
            self.put_off(pending, f"{type(exc).__name__}: {exc}", pending.wake)

    def follow_up(self, pending: Pending) -> None:
        problem = None
        try:
            if pending.prompt is Prompt.GATE:
                draw(self.sessions, self.chat, pending.target)
            else:
                cr_messages.refresh(self.sessions, self.chat, pending.target)
        except NotFound:  # nothing to draw or wake any more
            with transaction(self.sessions) as session:
                followups.done(session, pending)
            return
        except EXPECTED as exc:
            problem = f"could not update the Slack prompt ({exc})"
            log.warning("%s %s: %s", pending.prompt.value, pending.target, problem)
        if pending.wake:
            self.wake_run(pending)
        if problem is not None:
            self.put_off(pending, problem, wake=False)  # the run is woken (or left to the catch-up)
            return
        with transaction(self.sessions) as session:
            followups.done(session, pending)

    def wake_run(self, pending: Pending) -> None:
        with transaction(self.sessions, write=False) as session:
            row = (gates.by_id(session, pending.target) if pending.prompt is Prompt.GATE
                   else change_requests.by_id(session, pending.target))
            run, channel = row.flow_run_id, row.channel
        if not run:
            return
        try:
            self.wake(run)
        except PrefectUnreachable as exc:  # the catch-up and the gate watch wake it when Prefect is back
            log.warning("%s %s: %s", pending.prompt.value, pending.target, exc)
            if pending.tell:
                try:
                    self.chat.ephemeral(channel, pending.tell, RECORDED_NEXT_STEP_LATER)
                except EXPECTED as told:
                    log.warning("could not tell %s: %s", pending.tell, told)
        except EXPECTED as exc:
            log.warning("%s %s: %s", pending.prompt.value, pending.target, exc)

    def put_off(self, pending: Pending, problem: str, wake: bool) -> None:
        pause = self.backoff[min(pending.tries, len(self.backoff) - 1)]
        try:
            with transaction(self.sessions) as session:
                followups.retry(session, pending, at=utcnow() + timedelta(seconds=pause), problem=problem, wake=wake)
        except SQLAlchemyError as exc:  # the lease ends, and the mark is due again
            log.warning("could not put off the follow-up of %s %s: %s", pending.prompt.value, pending.target, exc)

    def poke(self) -> None:
        """Look at the ledger now; on demand (no refresher process), start the thread that does."""
        with self._lock:
            if self._closed.is_set():
                return
            if self._thread is None or not self._thread.is_alive():
                context = copy_context()  # the caller's Prefect settings, for the wake ...
                context.run(DEADLINE.set, None)  # ... but not its request's deadline (Slack's 3 s)
                self._thread = threading.Thread(target=context.run, name="phasegate-refresher", daemon=True,
                                                args=(self.run, self._closed), kwargs={"linger": LINGER})
                self._thread.start()
        self._poked.set()

    def idle(self, timeout: float) -> bool:
        """Wait until the ledger holds no mark (none due, none being done, none put off); False if
        `timeout` passed first. Whichever process refreshes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with transaction(self.sessions, write=False) as session:
                if followups.waiting(session) == 0:
                    return True
            time.sleep(0.05)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop the on-demand thread (after the pass under way, `timeout` at most) and the workers."""
        with self._lock:
            self._closed.set()
            thread = self._thread
        self._poked.set()
        if thread is not None:
            thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

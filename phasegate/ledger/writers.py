"""Writers take turns: a process's write transactions on one ledger wait in line, first come first
served, for a few places, instead of racing for the database's locks.

SQLite takes one writer at a time. Left to itself, every waiting connection sits in SQLite's busy
handler, which sleeps and retries, so under a burst some writers lose every retry to newcomers and
run out of time although the line ahead of them was short: a busy ledger answered like a dead one.
Here a writer of a SQLite file waits for its turn in this process (one place per file), and only
then takes the file's lock, where it meets only writers of other processes (flow runs, the CLI).

PostgreSQL takes many writers, but in one process they share one interpreter lock: forty threads
each holding a connection through a dozen round trips spend their time handing that lock around,
every transaction (and the row locks it holds) lasts longer, the pool runs dry, and the event loop
that answers Slack waits seconds for its turn at the interpreter. A few places (four, with the work
after the answer in a process of its own) keep the transactions short and the event loop answering;
the others wait in line, not in the pool.

A line that moves is a busy ledger; a line whose writers fail is a ledger that is down or hung. A
writer therefore waits as long as the writers ahead of it keep getting their work done or keep
working, and gives up once the line has not moved for `timeout` seconds while the database failed
the writers in their places since (each of their waits is bounded by `timeout` too, so a down or
hung ledger shows as failures within about that), or has not moved at all for `STUCK` times
`timeout`; at once if it already has not when the writer joins, and in any case after `patience`
seconds or at the deadline its request set (`deadline`). The line moves when a writer gets its work
done or finds a place free. A writer that is only slow (a loaded machine, a long transaction) is not
a failure: on a machine starved of CPU the writers ahead took longer than `timeout` while the
database answered every one of them, and giving up then told a burst of clickers "not recorded" at
once. Giving up raises WriterTimeout, a PoolTimeout, which the Slack endpoint answers like any
ledger that did not answer in time. A lock wait that ran out while the database answered (`busy`:
another process's transaction held the lock) is no failure of the database either: the Slack
endpoint tries such a request again (phasegate.slack.interactions).

    writer = Writer(Turns(places=1), timeout=1.5, patience=2.5)
    with writer.turn() as left:   # seconds left for the database's own lock wait
        ...
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# What a database that is down or hung raises (a refusal, such as a policy error, is work done).
FAILED = (OperationalError, InterfaceError, PoolTimeout)
# A line where no writer got its work done for this many timeouts is stuck, failures or not.
STUCK = 4


def busy(exc: BaseException) -> bool:
    """A wait for a lock that ran out while the database answered: another transaction (of another
    process: this one's writers wait in line) held what this one needed. A busy ledger, not a down
    one: a database that is down or frozen does not answer at all (phasegate.ledger.bounded), and one
    whose lock is held for good runs out again on every try. PostgreSQL's lock_timeout and
    statement_timeout (SQLSTATE 55P03, 57014) and a deadlock it broke by failing this transaction
    (40P01: tried again, the other has gone on), SQLite's busy timeout (SQLITE_BUSY)."""
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlstate", None) in ("55P03", "57014", "40P01"):
        return True
    return str(getattr(orig, "sqlite_errorname", "") or "").startswith("SQLITE_BUSY")


class WriterTimeout(PoolTimeout):
    """A writer gave up waiting for a turn: the ledger did not take the write in time."""


class Turns:
    """At most `places` writers at once, the others served in the order they came.

    A place passes straight from the writer that ends to the oldest one waiting, so no newcomer
    overtakes a waiting writer, and a writer's wait is the work queued ahead of it. A thread that
    holds a place and begins another write transaction (on another connection) does not queue for a
    second place behind itself.
    """

    def __init__(self, places: int = 1) -> None:
        if places < 1:
            raise ValueError("a ledger needs at least one writer's place")
        self._mutex = threading.Lock()
        self._free = places
        self._waiting: deque[threading.Lock] = deque()
        self._holders: dict[int, int] = {}  # thread id: how many turns it is inside
        self._moved = time.monotonic()  # when a writer last got its work done or found a place free
        self._failed = float("-inf")  # when the database last failed a writer

    def take(self, timeout: float, until: float) -> bool:
        """Wait for a place while the line moves or its writers keep working: False once it has
        not moved for `timeout` seconds and the database failed a writer since, once it has not
        moved for STUCK times that, or at `until` (a time.monotonic()); a free place is taken even then."""
        me, joined = threading.get_ident(), time.monotonic()
        with self._mutex:
            if me in self._holders:
                self._holders[me] += 1
                return True
            if self._free:
                self._free -= 1
                self._holders[me] = 1
                self._moved = joined
                return True
            mine = threading.Lock()
            mine.acquire()
            self._waiting.append(mine)
        while True:
            with self._mutex:
                give_up = min(self._stalls(timeout), until)
            # woken in slices: a failure ahead brings the time to give up forward
            handed = mine.acquire(timeout=max(0.0, min(give_up - time.monotonic(), timeout / STUCK)))
            with self._mutex:
                if handed or mine not in self._waiting:  # handed over by `give`, perhaps just as the wait ran out
                    self._holders[me] = 1
                    return True
                if time.monotonic() >= min(self._stalls(timeout), until):
                    self._waiting.remove(mine)
                    return False
            # the line moved, or its writers are still at work: wait on

    def _stalls(self, timeout: float) -> float:
        """When the line counts as stopped if it does not move before: `timeout` after it last
        moved if the database failed a writer since, else STUCK times that."""
        return self._moved + (timeout if self._failed > self._moved else timeout * STUCK)

    @property
    def waiting(self) -> int:
        """How many writers wait in line now."""
        return len(self._waiting)

    def give(self, *, done: bool | None = True) -> None:
        """Leave the place; `done` is False when the database failed the writer, None when it only
        found what it needed held by another transaction (`busy`): neither a move nor a failure."""
        me = threading.get_ident()
        with self._mutex:
            self._holders[me] -= 1
            if self._holders[me]:
                return
            del self._holders[me]
            if done:
                self._moved = time.monotonic()
            elif done is False:
                self._failed = time.monotonic()
            if self._waiting:
                self._waiting.popleft().release()  # the place goes to the oldest waiter, never back to the pool
            else:
                self._free += 1


DEADLINE: ContextVar[float | None] = ContextVar("phasegate_ledger_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Inside the block, writers in this context give up waiting `seconds` from now at the latest:
    a request's budget (Slack's 3 s) counts the time it waited for a thread before its first write."""
    token = DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        DEADLINE.reset(token)


class Writer:
    """How one engine's write transactions wait: for a turn among the ledger's writers in this
    process, while the line moves (see the module's docstring), `patience` at most, and never past
    the context's `deadline`."""

    def __init__(self, turns: Turns, timeout: float, patience: float | None = None) -> None:
        self.turns, self.timeout = turns, timeout
        self.patience = timeout if patience is None else patience

    @contextmanager
    def turn(self) -> Iterator[float]:
        """Hold a turn; yields the seconds the database's locks may then be waited for (a SQLite file
        held by another process's writer, a PostgreSQL row): `timeout`, within what is left until
        the writer would have given up waiting."""
        until = time.monotonic() + self.patience
        if (latest := DEADLINE.get()) is not None:
            until = min(until, latest)
        if not self.turns.take(self.timeout, until):
            raise WriterTimeout(f"no turn to write to the ledger: the database failed the writers ahead of this one "
                                f"and none got its work done for {self.timeout:g} s, or its time ran out "
                                f"({self.patience:g} s at most)")
        done: bool | None = True  # a refusal (a policy error, say) is work done too
        try:
            yield max(0.0, min(self.timeout, until - time.monotonic()))
        except FAILED as exc:
            done = None if busy(exc) else False
            raise
        finally:
            self.turns.give(done=done)

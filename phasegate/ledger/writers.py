"""Writers take turns: a process's write transactions on one ledger queue, first come first served,
for a bounded number of places instead of racing for the database's locks.

SQLite takes one writer at a time. Left to itself, every waiting connection sits in SQLite's busy
handler, which sleeps and retries, so under a burst some writers lose every retry to newcomers and
run out of time although the queue ahead of them was short: a busy ledger answered like a dead one.
Here a writer of a SQLite file waits for its turn in this process (one place per file), and only
then takes the file's lock, where it meets only writers of other processes (flow runs, the CLI).

PostgreSQL takes many writers, but in one process they share one interpreter lock: forty threads
each holding a connection through a dozen round trips spend their time handing that lock around,
every transaction (and the row locks it holds) lasts longer, and the pool runs dry. A few places
(the pool's steady size) keep the transactions short and the rest of the process, the event loop
that answers Slack included, running; the others wait in line, not in the pool.

A wait for a turn is bounded (`Writer.timeout`); one that runs out raises WriterTimeout, a
PoolTimeout, which the endpoint answers like any ledger that did not answer in time.

    writer = Writer(Turns(places=1), timeout=1.5)
    with writer.turn() as left:   # seconds of the bound left for the database's own lock wait
        ...
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import TimeoutError as PoolTimeout


class WriterTimeout(PoolTimeout):
    """A writer waited out its bound for a turn: the ledger did not take the write in time."""


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

    def take(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a place; False if none came."""
        me = threading.get_ident()
        with self._mutex:
            if me in self._holders:
                self._holders[me] += 1
                return True
            if self._free:
                self._free -= 1
                self._holders[me] = 1
                return True
            mine = threading.Lock()
            mine.acquire()
            self._waiting.append(mine)
        handed = mine.acquire(timeout=max(timeout, 0.0))
        with self._mutex:
            if not handed and mine in self._waiting:
                self._waiting.remove(mine)
                return False
            self._holders[me] = 1  # handed over by `give`, perhaps just as the wait ran out
            return True

    def give(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            self._holders[me] -= 1
            if self._holders[me]:
                return
            del self._holders[me]
            if self._waiting:
                self._waiting.popleft().release()  # the place goes to the oldest waiter, never back to the pool
            else:
                self._free += 1


class Writer:
    """How one engine's write transactions wait: for a turn among the ledger's writers in this
    process, within the engine's timeout."""

    def __init__(self, turns: Turns, timeout: float) -> None:
        self.turns, self.timeout = turns, timeout

    @contextmanager
    def turn(self) -> Iterator[float]:
        """Hold a turn; yields the seconds left of the timeout, for a SQLite file's lock (held perhaps
        by another process's writer), so that the turn and that lock together wait `timeout` at most."""
        started = time.monotonic()
        if not self.turns.take(self.timeout):
            raise WriterTimeout(f"no turn to write to the ledger within {self.timeout:g} s: the writers queued "
                                "ahead of this one did not finish in time")
        try:
            yield max(0.0, self.timeout - (time.monotonic() - started))
        finally:
            self.turns.give()

"""Every PostgreSQL call bounded on the client side, pooled connections included.

PostgreSQL's statement_timeout and lock_timeout are enforced by the server: a server that is frozen
(SIGSTOP, a hung host or disk) enforces nothing, and the kernel still accepts connections and
acknowledges what is sent, so no TCP timeout fires either. A click would then wait for as long as
the freeze lasts and be committed when the server comes back, long after Slack showed its error.

Here every wait of a connection for the server (a statement, a ping, COMMIT) is bounded: by the
engine's timeout plus `MARGIN` (so that a live server's own timeout, which leaves the connection
usable, normally comes first), and by the request's deadline (phasegate.ledger.writers.deadline)
plus `GRACE` when there is one. A connection that runs out of time is mid-exchange and cannot be used again: it is
closed, and SQLAlchemy's pool drops it. Connecting is bounded by the same deadline (libpq counts
connect_timeout in whole seconds, at least 2).

    NoAnswer                 the server did not answer in time; nothing of the transaction was committed
    └── CommitUnconfirmed    COMMIT was sent and not answered: the transaction may have been committed;
                             `xid` names it for pg_xact_status once the server answers again
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.connection import _WAIT_INTERVAL

from phasegate.ledger.writers import DEADLINE

MARGIN = 0.5  # seconds beyond the engine's timeout, which the server enforces itself when it runs
# Seconds past the request's deadline a wait that began before it may take: a live server's own
# timeouts usually end it first (cutting it costs a reconnect), and the answer still leaves within 3 s.
GRACE = 0.4
RV = TypeVar("RV")


class NoAnswer(psycopg.OperationalError):
    """The ledger's server did not answer within the client-side bound; the connection was closed."""


class CommitUnconfirmed(NoAnswer):
    """COMMIT was sent and its answer did not come in time: the transaction may have been committed."""

    def __init__(self, message: str, *, xid: str | None) -> None:
        super().__init__(message)
        self.xid = xid


def bound(timeout: float, grace: float = GRACE) -> float:
    """Seconds the next wait for the server may take: the engine's timeout plus MARGIN, and no
    later than `grace` past the request's deadline."""
    limit = timeout + MARGIN
    if (latest := DEADLINE.get()) is not None:
        limit = min(limit, latest + grace - time.monotonic())
    return max(limit, 0.01)


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server is bounded (see the module's docstring)."""

    phasegate_timeout = 30.0  # the engine's timeout; make_engine sets it on each connection
    _phasegate_commit: bool = False
    _phasegate_xid: str | None = None
    _phasegate_known_xid: str | None = None  # read at BEGIN (`begin_group`), for this transaction's COMMIT

    def rollback(self) -> None:
        self._phasegate_known_xid = None
        super().rollback()

    def wait(self, gen: Any, interval: float = _WAIT_INTERVAL, timeout: float | None = None) -> Any:
        limit = bound(self.phasegate_timeout)
        if timeout is not None and timeout <= limit:  # psycopg's own, shorter bound (a cancel, say)
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, limit)
        except pg_errors._WaitTimeout:
            self.pgconn.finish()  # mid-exchange: never used again (closed, so the pool drops it)
            said = f"the ledger did not answer within {limit:.1f} s (the connection was closed)"
            if self._phasegate_commit:
                raise CommitUnconfirmed(said + "; the transaction may have been committed",
                                        xid=self._phasegate_xid) from None
            raise NoAnswer(said + "; nothing was committed") from None

    def begin_group(self, lock_wait: float) -> None:
        """BEGIN a group's transaction (phasegate.ledger.db.group) with its lock wait, and read its id
        for the COMMIT: one round trip for all three."""
        with self.pipeline():
            self.execute(f"SET LOCAL lock_timeout = {max(1, int(lock_wait * 1000))}")
            cursor = self.execute("SELECT pg_current_xact_id()::text")
        row = cursor.fetchone()
        self._phasegate_known_xid = row[0] if row else None

    def commit(self) -> None:
        """COMMIT; within a request (a deadline set), the transaction's id is read first (unless its
        BEGIN read it), so that a COMMIT whose answer does not come in time can be looked up once the
        server answers again."""
        self._phasegate_xid, known, self._phasegate_known_xid = None, self._phasegate_known_xid, None
        if DEADLINE.get() is not None and not self.autocommit:
            row = (known,) if known is not None else self.execute("SELECT pg_current_xact_id_if_assigned()::text").fetchone()
            self._phasegate_xid = row[0] if row else None
        self._phasegate_commit = True
        try:
            super().commit()
        finally:
            self._phasegate_commit = False


def connect(cargs: list[Any], cparams: dict[str, Any], timeout: float) -> BoundedConnection:
    """A new connection, within the request's deadline when there is one: the connect runs on a thread
    of its own and is given up on at the deadline (the thread then closes what it gets, within libpq's
    connect_timeout)."""
    if DEADLINE.get() is None:
        return _opened(BoundedConnection.connect(*cargs, **cparams), timeout)
    limit = bound(timeout, grace=0.0)  # a connection begun after the deadline is of no use to the request
    lock, done = threading.Lock(), threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            conn = BoundedConnection.connect(*cargs, **cparams)
        except Exception as exc:  # handed to the caller below
            box["error"] = exc
            done.set()
            return
        with lock:
            if box.get("abandoned"):
                conn.close()
                return
            box["conn"] = conn
        done.set()

    threading.Thread(target=run, name="phasegate-ledger-connect", daemon=True).start()
    done.wait(limit)
    with lock:
        if "conn" in box:
            return _opened(box["conn"], timeout)
        if "error" in box:
            raise box["error"]
        box["abandoned"] = True
    raise NoAnswer(f"the ledger did not accept a connection within {limit:.1f} s; nothing was committed")


def _opened(conn: BoundedConnection, timeout: float) -> BoundedConnection:
    conn.phasegate_timeout = timeout
    return conn

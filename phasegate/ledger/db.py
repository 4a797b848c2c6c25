"""Engines and sessions. SQLite gets WAL, a busy timeout and write-locking transactions so that
the Slack endpoint and flow runs in other processes never count a quorum from a stale read;
PostgreSQL gets the same guarantee from `SELECT ... FOR UPDATE` on the gate row.

SQLite takes one writer at a time. Inside one process the writers of a file therefore queue for
their turn (`Turns`, first come first served) before `BEGIN IMMEDIATE`, rather than all racing for
the file's lock in SQLite's busy handler, which sleeps and retries and lets some of them lose past
any timeout however short their wait ought to be: a burst of clicks is a queue that moves, not a
ledger that is down. Writers in other processes (flow runs, the CLI) still meet at the file's lock.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from phasegate.errors import ServiceUnavailable

if TYPE_CHECKING:  # Alembic loads only when the schema has to change
    from alembic.config import Config

# The ledger could not be reached or did not answer in time (as opposed to refusing a value).
LEDGER_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
READ_ONLY = "phasegate_read_only"  # an execution option: this transaction only reads
LOCK_WAIT = "phasegate_lock_wait"  # an execution option: seconds a SQLite BEGIN IMMEDIATE may wait
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The newest migration's revision: each file in versions/ is named after its revision ("0006_spend.py").
HEAD = max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


# Seconds one ledger call from the Slack endpoint may take: Slack wants its answer within 3 s, and a
# click the ledger cannot take in time is answered "not recorded, click again" rather than left hanging.
ENDPOINT_TIMEOUT = 1.5
DEFAULT_TIMEOUT = 30.0  # flows, CLI, watch: a busy ledger is waited for, a dead one still fails


class WriterTimeout(PoolTimeout):
    """A writer waited out its bound for its turn: the ledger did not take the write in time."""


class Turns:
    """The writers of one SQLite file in this process, one at a time, in the order they came.

    A turn passes straight from the writer that ends to the oldest one waiting, so no newcomer
    overtakes a waiting writer and a writer's wait is the work queued ahead of it.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._taken = False
        self._waiting: deque[threading.Lock] = deque()

    def take(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the turn; False if it did not come."""
        with self._mutex:
            if not self._taken:
                self._taken = True
                return True
            mine = threading.Lock()
            mine.acquire()
            self._waiting.append(mine)
        if mine.acquire(timeout=max(timeout, 0.0)):
            return True  # handed over by `give`
        with self._mutex:
            if mine in self._waiting:
                self._waiting.remove(mine)
                return False
        return True  # handed over just as the wait ran out

    def give(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._taken = False


class Writer:
    """How an engine's write transactions wait: the file's turns, within the engine's timeout."""

    def __init__(self, turns: Turns, timeout: float) -> None:
        self.turns, self.timeout = turns, timeout

    @contextmanager
    def turn(self) -> Iterator[float]:
        """Hold the turn; yields the seconds left of the timeout for the file's lock (another
        process's writer may hold it), so that the turn and the lock together wait `timeout` at most."""
        started = time.monotonic()
        if not self.turns.take(self.timeout):
            raise WriterTimeout(f"no turn to write to the ledger within {self.timeout:g} s: the writers queued "
                                "ahead of this one did not finish in time")
        try:
            yield max(0.0, self.timeout - (time.monotonic() - started))
        finally:
            self.turns.give()


FILE_TURNS: dict[str, Turns] = {}  # by the SQLite file's resolved path: one queue per file in this process
WRITERS: weakref.WeakKeyDictionary[Engine, Writer] = weakref.WeakKeyDictionary()
_REGISTRY = threading.Lock()


def make_engine(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """Every wait bounded by `timeout`: for a pooled connection, connecting (PostgreSQL's
    connect_timeout counts whole seconds, at least 2), each statement and lock wait (PostgreSQL's
    statement_timeout), and on SQLite a writer's turn and the file's lock together (busy timeout)."""
    millis = int(timeout * 1000)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": timeout}, pool_timeout=timeout)
        if path and path != ":memory:":
            with _REGISTRY:
                turns = FILE_TURNS.setdefault(str(Path(path).resolve()), Turns())
            WRITERS[engine] = Writer(turns, timeout)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={millis}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            options = connection.get_execution_options()
            if options.get(READ_ONLY, False):
                connection.exec_driver_sql("BEGIN")
                return
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(options.get(LOCK_WAIT, timeout) * 1000)}")
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_timeout=timeout,
                         connect_args={"connect_timeout": max(2, math.ceil(timeout)),
                                       "options": f"-c statement_timeout={millis}"})


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One transaction. On SQLite a writing one waits for its turn among this process's writers,
    then takes the write lock at BEGIN (so that what it reads is what it writes against);
    `write=False` is for reads that decide nothing, such as a click's pre-check (the answer itself
    is re-checked under the lock): it reads a snapshot and never waits for a writer. PostgreSQL runs
    it READ ONLY, so a write inside one fails there loudly."""
    bind = factory.kw.get("bind")
    writer = WRITERS.get(bind) if write and isinstance(bind, Engine) else None
    if writer is not None:
        with writer.turn() as left, factory() as session, session.begin():
            lock_wait: dict[str, Any] = {LOCK_WAIT: left}
            session.connection(execution_options=lock_wait)
            yield session
        return
    with factory() as session, session.begin():
        if not write:
            options: dict[str, Any] = {READ_ONLY: True, "postgresql_readonly": True}
            session.connection(execution_options=options)
        yield session


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the ledger at `url` to the newest schema (what `phasegate db upgrade` runs)."""
    from alembic import command
    from alembic.util.exc import CommandError

    try:
        command.upgrade(alembic_config(url), "head")
    except (SQLAlchemyError, CommandError, OSError) as exc:
        where = url.split("@")[-1]  # never echo a password
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ServiceUnavailable(f"cannot open or migrate the ledger at {where}: {reason}") from None


def sqlite_revision(url: str) -> str | None:
    """The schema revision of the SQLite ledger at `url`, read without SQLAlchemy or Alembic; None when
    the file or its version table is not there yet."""
    import sqlite3

    path = Path(url.split("///", 1)[-1])
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=DEFAULT_TIMEOUT)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def ensure_schema(url: str) -> None:
    """The default SQLite ledger, created or upgraded on first use: one read when it is current."""
    if sqlite_revision(url) != HEAD:
        upgrade(url)

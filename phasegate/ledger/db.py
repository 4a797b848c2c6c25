"""Engines and sessions. SQLite gets WAL, a busy timeout and write-locking transactions so that
the Slack endpoint and flow runs in other processes never count a quorum from a stale read;
PostgreSQL gets the same guarantee from `SELECT ... FOR UPDATE` on the gate row. Write
transactions take turns within a process (phasegate.ledger.writers): one at a time per SQLite file,
a few at a time on PostgreSQL, the others waiting in line within the engine's timeout."""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from phasegate.errors import ServiceUnavailable
from phasegate.ledger import groups
from phasegate.ledger.groups import Spoiled as Spoiled  # what a group that cannot commit raises
from phasegate.ledger.read import HEAD as HEAD  # the schema's newest revision and its first-use check
from phasegate.ledger.read import MIGRATIONS  # live with the light read path (no ORM), once
from phasegate.ledger.read import ensure_schema as ensure_schema
from phasegate.ledger.read import sqlite_revision as sqlite_revision
from phasegate.ledger.writers import STUCK, Turns, Writer

if TYPE_CHECKING:  # Alembic loads only when the schema has to change
    from alembic.config import Config

# The ledger could not be reached or did not answer in time (as opposed to refusing a value).
LEDGER_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
AUDIT_KEY = "phasegate_audit_key"  # a sessionmaker's info entry: the key of the audit chain's links
READ_ONLY = "phasegate_read_only"  # an execution option: this transaction only reads
LOCK_WAIT = "phasegate_lock_wait"  # an execution option: seconds a SQLite BEGIN IMMEDIATE may wait


# Seconds one ledger call from the Slack endpoint may take: Slack wants its answer within 3 s, and a
# click the ledger cannot take in time is answered "not recorded, click again" rather than left hanging.
ENDPOINT_TIMEOUT = 1.5
# Seconds a click may wait, from its handler's start, for a thread, for its turn behind other clicks
# while the line moves (a busy ledger, not a down one) and for the locks after: Slack's 3 s less the
# time to read the request before and to write and answer after (phasegate.ledger.writers.deadline).
ENDPOINT_PATIENCE = 2.2
# Seconds a click is given at most to be answered: past that it is acknowledged with an empty 200 and
# finishes after the answer, telling the clicker through its response_url only what the prompt does
# not show (phasegate.slack.app). Well under Slack's 3 s, so a loaded machine still answers in time.
ACK_WITHIN = 0.5
# Seconds an acknowledged click may then wait for the ledger while the line of writers moves (a busy
# ledger, or a slow one); one whose writers the database fails and whose line then has not moved for
# ENDPOINT_TIMEOUT (a ledger that is down or hung) still gives up then (phasegate.ledger.writers).
CLICK_PATIENCE = 60.0
DEFAULT_TIMEOUT = 30.0  # flows, CLI, watch: a busy ledger is waited for, a dead one still fails


FILE_TURNS: dict[str, Turns] = {}  # by the SQLite file's resolved path: one line of writers per file in this process
WRITERS: weakref.WeakKeyDictionary[Engine, Writer] = weakref.WeakKeyDictionary()  # how each engine's writers wait
_REGISTRY = threading.Lock()
# PostgreSQL writers at once in one process: a few overlap their round trips with each other's Python
# work; many only hand the interpreter lock around, and the event loop that answers Slack waits for it.
# bench.ack's burst on PostgreSQL: 2 places 131-149 clicks/s, 4 places 166-172 (the refresher in its
# own process); the pool (5 + 10) still leaves room for the reads beside them.
POSTGRESQL_WRITERS = 4
# A pooled PostgreSQL connection is tried (one round trip) before it is used only once it has lain idle
# this many seconds (SQLAlchemy's pre-ping tries it every time): one returned a moment ago is alive, and
# a burst's groups each save a round trip. One whose server process ended since fails at its first
# statement; SQLAlchemy then replaces the pool's connections, and the click is handled again on a new
# one (phasegate.slack.interactions, faults.stale_connection).
PING_IDLE = 0.5
RETURNED = "phasegate_returned"  # the pool record's info: when its connection was last checked in


def make_engine(url: str, *, timeout: float = DEFAULT_TIMEOUT, patience: float | None = None) -> Engine:
    """Every wait bounded by `timeout`: a pooled connection, connecting (PostgreSQL's
    connect_timeout counts whole seconds, at least 2), each statement and lock wait (PostgreSQL's
    statement_timeout), a SQLite file locked by another process (busy timeout). PostgreSQL's are
    bounded on this side too (phasegate.ledger.bounded): a frozen server enforces none of its own. A writer's turn
    (phasegate.ledger.writers) is waited for while the line moves, until no writer has got its work
    done for `timeout` and the database failed one since (or none for STUCK times that), and `patience`
    (default: `timeout`) at most; the turn and the locks after it
    (a SQLite file's, PostgreSQL's row and table locks) together wait `patience` at most."""
    millis = int(timeout * 1000)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": timeout}, pool_timeout=timeout)
        if path and path != ":memory:":
            with _REGISTRY:
                turns = FILE_TURNS.setdefault(str(Path(path).resolve()), Turns())
            WRITERS[engine] = Writer(turns, timeout, patience)

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
            busy = int(options.get(LOCK_WAIT, timeout) * 1000)
            if connection.info.get(LOCK_WAIT, millis) != busy:  # what the connection was last told
                connection.exec_driver_sql(f"PRAGMA busy_timeout={busy}")
                connection.info[LOCK_WAIT] = busy
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, pool_timeout=timeout,
                           connect_args={"connect_timeout": max(2, math.ceil(timeout)),
                                         "options": f"-c statement_timeout={millis}"})
    WRITERS[engine] = Writer(Turns(places=POSTGRESQL_WRITERS), timeout, patience)

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(RETURNED, -math.inf) < PING_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces it (and raises what connecting raises, if it fails)
            raise DisconnectionError(f"a pooled ledger connection is gone: {exc}") from exc

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[RETURNED] = time.monotonic()

    @event.listens_for(engine, "do_connect")
    def _connect_pg(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        from phasegate.ledger import bounded  # psycopg loads with the first PostgreSQL connection

        return bounded.connect(list(cargs), dict(cparams), timeout)  # every later wait is bounded on this side too

    @event.listens_for(engine, "begin")
    def _on_begin_pg(connection: Any) -> None:
        wait = connection.get_execution_options().get(LOCK_WAIT)
        if wait is not None and wait < timeout:  # a writer that queued: its lock waits get what is left
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}")

    return engine


def writers_waiting(engine: Engine) -> bool:
    """Whether writers on this engine's ledger wait in line in this process now."""
    writer = WRITERS.get(engine)
    return writer is not None and writer.turns.waiting > 0


def busy_patience(factory: sessionmaker[Session]) -> float:
    """Seconds a request may go on trying a write whose locks another process's transactions held
    (phasegate.ledger.writers.busy): STUCK times its engine's timeout, as a line of writers in this
    process that does not move for that long counts as stuck."""
    writer = WRITERS.get(factory.kw.get("bind"))  # type: ignore[arg-type]
    return STUCK * (writer.timeout if writer is not None else DEFAULT_TIMEOUT)


def sessions(engine: Engine, *, audit_key: bytes | None = None) -> sessionmaker[Session]:
    """Sessions on `engine` whose commits also rewrite the status projection of the engagements they
    changed (phasegate.ledger.projection); with `audit_key`, the audit chain's new links are keyed
    (HMAC-SHA-256) and keyed links can be verified (phasegate.ledger.chain)."""
    from phasegate.ledger.projection import track

    info = {AUDIT_KEY: audit_key} if audit_key else {}
    factory = sessionmaker(engine, expire_on_commit=False, info=info)
    track(factory)
    return factory


@contextmanager
def transaction(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One transaction. A writing one waits for its turn among this process's writers; on SQLite it
    then takes the write lock at BEGIN (so that what it reads is what it writes against);
    `write=False` is for reads that decide nothing, such as a click's pre-check (the answer itself
    is re-checked under the lock): it reads a snapshot and never waits for a writer. PostgreSQL runs
    it READ ONLY, so a write inside one fails there loudly."""
    bind = factory.kw.get("bind")
    joined = groups.current()
    if joined is not None and isinstance(bind, Engine) and bind.url == joined.url:
        with joined.part():
            yield joined.session
        return
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


@contextmanager
def group(factory: sessionmaker[Session], prepare: Callable[[Connection], object] | None = None,
          ) -> Iterator[Callable[[], bool]]:
    """One write transaction that every `transaction` opened on this thread inside it joins (group
    commit): several requests recorded with one turn, one BEGIN and one COMMIT. A joined transaction
    that raises before it wrote anything (a refusal) leaves the others as they were; one that raises
    after writing spoils the group: it then raises Spoiled and commits nothing, and the caller handles
    each request again on its own. Yields whether the group is still sound. Nothing is durable before
    the group commits; `on_commit` callbacks run after it has. `prepare(conn)` runs first, as the
    group's own (phasegate.ledger.groups: what it reads for all the requests goes in the memo)."""
    if groups.current() is not None:
        raise RuntimeError("a group of transactions inside another")
    bind = factory.kw.get("bind")
    try:
        with transaction(factory) as session:
            conn = session.connection()
            joined = groups.enter(groups.Open(session, bind.url if isinstance(bind, Engine) else None, conn))
            if conn.dialect.name == "postgresql":  # a group's lock waits end soon (GROUP_LOCK_WAIT says why)
                with groups.driver_errors(conn):  # phasegate.ledger.bounded: one round trip
                    cast(Any, conn.connection.driver_connection).begin_group(GROUP_LOCK_WAIT)
            event.listen(conn, "before_cursor_execute", joined.count)
            event.listen(conn, "before_execute", joined.before)
            try:
                if prepare is not None:
                    with joined.own():
                        prepare(conn)
                yield lambda: joined.spoiled is None
                if joined.spoiled is not None:
                    raise groups.Spoiled("a transaction of this group failed after writing") from joined.spoiled
                joined.send(conn)  # what was deferred, before the COMMIT
            finally:
                joined.conn = None  # what runs at the COMMIT (the projection's flush) writes at once
                event.remove(conn, "before_execute", joined.before)
                event.remove(conn, "before_cursor_execute", joined.count)
    finally:
        groups.leave()
    for callback in joined.committed:
        callback()


# Seconds a PostgreSQL group waits for a row lock: a group holds the locks of every request in it,
# taken in the order the requests came, until it commits, so two replicas' groups can lock the same
# rows in opposite orders. One then gives up (PostgreSQL's deadlock check waits a second) and its
# requests are handled one by one; a group behind another's commit waits a few milliseconds.
GROUP_LOCK_WAIT = 0.3


def on_commit(callback: Callable[[], object]) -> None:
    """`callback()` once what was written has committed: at once, or inside a `group` after the group
    has (once per group, however many of its transactions asked)."""
    joined = groups.current()
    if joined is None:
        callback()
    else:
        joined.committed[callback] = None


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

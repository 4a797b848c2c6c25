"""The ledger for read commands (`gate list`, `status`): a Core engine and a few queries, no ORM.

`engine` opens the ledger with the same bounded waits as phasegate.ledger.db.make_engine and reads in
plain (SQLite) or READ ONLY (PostgreSQL) transactions; it loads only the dialect of its URL. The
SQLite default ledger is created or upgraded on first use, as for every command (`ensure_schema`,
which loads Alembic and the models only when the schema is not current).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Row, create_engine, event, func, select

from phasegate.errors import NotFound
from phasegate.ledger import tables
from phasegate.states import GateState

TIMEOUT = 30.0  # as phasegate.ledger.db.DEFAULT_TIMEOUT: a busy ledger is waited for, a dead one still fails
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The newest migration's revision: each file in versions/ is named after its revision ("0006_spend.py").
HEAD = max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def sqlite_revision(url: str) -> str | None:
    """The schema revision of the SQLite ledger at `url`, read without SQLAlchemy or Alembic; None when
    the file or its version table is not there yet."""
    path = Path(url.split("///", 1)[-1])
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=TIMEOUT)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def ensure_schema(url: str) -> None:
    """The default SQLite ledger, created or upgraded on first use: one read when it is current."""
    if sqlite_revision(url) != HEAD:
        from phasegate.ledger.db import upgrade

        upgrade(url)


def engine(url: str, *, timeout: float = TIMEOUT) -> Engine:
    """A Core engine for reading, every wait bounded by `timeout` (as make_engine's)."""
    millis = int(timeout * 1000)
    if url.startswith("sqlite"):
        made = create_engine(url, connect_args={"timeout": timeout}, pool_timeout=timeout)

        @event.listens_for(made, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
            dbapi_connection.execute(f"PRAGMA busy_timeout={millis}")

        @event.listens_for(made, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")  # a snapshot; never the write lock

        return made
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_timeout=timeout,
                         connect_args={"connect_timeout": max(2, math.ceil(timeout)),
                                       "options": f"-c statement_timeout={millis}"},
                         execution_options={"postgresql_readonly": True})


@contextmanager
def reading(url: str) -> Iterator[Connection]:
    """One read-only transaction on the ledger at `url`."""
    made = engine(url)
    try:
        with made.connect() as conn, conn.begin():
            yield conn
    finally:
        made.dispose()


def newest_gates(conn: Connection, engagement_id: str | None = None, *, open_only: bool = False,
                 limit: int | None = None) -> tuple[list[Row[Any]], int]:
    """The newest `limit` gates (every one with None), oldest first, and how many there are in all
    (as phasegate.ledger.gates.newest, in Core)."""
    g = tables.gates
    if engagement_id is not None and conn.scalar(
            select(tables.engagements.c.id).where(tables.engagements.c.id == engagement_id)) is None:
        raise NotFound(f"no engagement {engagement_id!r} in the ledger (register it with `phasegate engagement create FILE`)")
    where = [g.c.engagement_id == engagement_id] if engagement_id is not None else []
    if open_only:
        where.append(g.c.state == GateState.OPEN)
    total = conn.scalar(select(func.count()).select_from(g).where(*where)) or 0
    query = select(g).where(*where).order_by(g.c.id.desc())
    return list(conn.execute(query if limit is None else query.limit(limit)))[::-1], total

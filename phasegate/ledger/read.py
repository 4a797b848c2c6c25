"""The ledger for read commands (`gate list`, `status`): the DB-API drivers and a few queries, no SQLAlchemy.

`reading` opens the ledger with the same bounded waits as phasegate.ledger.db.make_engine (SQLite's
busy timeout; PostgreSQL's connect_timeout and statement_timeout) and reads in one plain (SQLite) or
READ ONLY (PostgreSQL) transaction; it loads sqlite3 or psycopg, by its URL. One set of SQL strings
serves both: named parameters (`:name`, turned into psycopg's `%(name)s` by `pyformat`), and the rows
decoded as the ORM's types decode them (phasegate.ledger.tables). The SQLite default ledger is created
or upgraded on first use, as for every command (`ensure_schema`, which loads Alembic and the models
only when the schema is not current).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

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


class Row(dict[str, Any]):
    """A decoded row: its columns by name, as attributes too (`gate.phase`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def pyformat(sql: str) -> str:
    """`:name` parameters as psycopg's `%(name)s`."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


def listed(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """An IN list of bound parameters: "(:name_0, :name_1)" and their values; "(NULL)" (matching
    nothing) when there are none."""
    params = {f"{name}_{n}": value for n, value in enumerate(values)}
    return "(" + (", ".join(f":{key}" for key in params) or "NULL") + ")", params


class Reader:
    """One read-only transaction on the ledger, through its DB-API connection."""

    def __init__(self, connection: Any, *, postgresql: bool) -> None:
        self.connection = connection
        self.postgresql = postgresql

    def rows(self, sql: str, params: dict[str, Any] | None = None,
             decoded: Sequence[tables.Table] = ()) -> list[Row]:
        """The rows of `sql`, each column named in one of the `decoded` tables decoded by its type."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(pyformat(sql) if self.postgresql else sql, params or {})
            names = [column[0] for column in cursor.description]
            kinds = {name: kind for table in decoded for name, kind in table.columns.items()}
            decoders = [(n, tables.decoder(kinds[name])) for n, name in enumerate(names) if name in kinds]
            found = []
            for record in cursor.fetchall():
                values = list(record)
                for n, decode in decoders:
                    if decode is not None:
                        values[n] = decode(values[n])
                found.append(Row(zip(names, values, strict=True)))
            return found
        finally:
            cursor.close()

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        found = self.rows(sql, params)
        return next(iter(found[0].values())) if found else None


def connect(url: str, *, timeout: float = TIMEOUT) -> Reader:
    """A connection for reading, every wait bounded by `timeout` (as make_engine's), no transaction yet."""
    millis = int(timeout * 1000)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ":memory:"
        db = sqlite3.connect(path or ":memory:", timeout=timeout, isolation_level=None)  # BEGIN is ours
        db.execute(f"PRAGMA busy_timeout={millis}")
        return Reader(db, postgresql=False)
    import psycopg
    from psycopg.types.string import TextLoader

    conninfo = re.sub(r"^postgresql\+psycopg://", "postgresql://", url)
    pg = psycopg.connect(conninfo, connect_timeout=max(2, math.ceil(timeout)),
                         options=f"-c statement_timeout={millis}")
    pg.read_only = True  # each transaction BEGIN READ ONLY
    for json_type in ("json", "jsonb"):  # JSON as text, decoded as on SQLite (tables.json_value)
        pg.adapters.register_loader(json_type, TextLoader)
    return Reader(pg, postgresql=True)


@contextmanager
def reading(url: str, *, timeout: float = TIMEOUT) -> Iterator[Reader]:
    """One read-only transaction on the ledger at `url`: SQLite's plain BEGIN (a snapshot, never the
    write lock), PostgreSQL's READ ONLY."""
    reader = connect(url, timeout=timeout)
    try:
        if not reader.postgresql:
            reader.connection.execute("BEGIN")
        yield reader
        if reader.postgresql:
            reader.connection.commit()
        else:
            reader.connection.execute("COMMIT")
    finally:
        reader.connection.close()  # an open transaction is rolled back


def newest_gates(conn: Reader, engagement_id: str | None = None, *, open_only: bool = False,
                 limit: int | None = None) -> tuple[list[Row], int]:
    """The newest `limit` gates (every one with None), oldest first, and how many there are in all
    (`gate list`)."""
    if engagement_id is not None and conn.scalar("SELECT id FROM engagements WHERE id = :id",
                                                 {"id": engagement_id}) is None:
        raise NotFound(f"no engagement {engagement_id!r} in the ledger (register it with `phasegate engagement create FILE`)")
    where, params = [], {"engagement_id": engagement_id, "open": GateState.OPEN.value, "limit": limit}
    if engagement_id is not None:
        where.append("engagement_id = :engagement_id")
    if open_only:
        where.append("state = :open")
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    total = conn.scalar(f"SELECT count(*) FROM gates{condition}", params) or 0
    query = (f"SELECT {tables.gates.names()} FROM gates{condition} ORDER BY id DESC"
             + (" LIMIT :limit" if limit is not None else ""))
    return conn.rows(query, params, [tables.gates])[::-1], total


def engagement_listing(conn: Reader, limit: int | None = None) -> tuple[list[Row], int]:
    """The first `limit` engagements by id (every one with None) and how many there are in all
    (`engagement list`)."""
    query = f"SELECT {tables.engagements.names()} FROM engagements ORDER BY id" + (" LIMIT :limit" if limit is not None else "")
    rows = conn.rows(query, {"limit": limit}, [tables.engagements])
    total = len(rows) if limit is None or len(rows) < limit else conn.scalar("SELECT count(*) FROM engagements")
    return rows, total or 0

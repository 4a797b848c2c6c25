"""A group of transactions on one thread (group commit), and what the group holds for all of them.

`phasegate.ledger.db.group` opens one write transaction that every `transaction` opened inside it on
the same thread joins: several requests recorded with one turn, one BEGIN and one COMMIT. Two more
savings for a burst of clicks (issue 23), each with a rule that keeps it exact:

- `defer`: a write held back and sent with the others of its statement (one execute for all their
  rows; on PostgreSQL every statement held goes in one pipeline, one round trip), just before the next
  other statement runs on the group's connection or before the COMMIT. Whatever runs next therefore
  reads what was deferred, as if it had been written at once.
- `memo`: what the group's requests read once for all of them, taken under the locks they record
  under (phasegate.ledger.held, phasegate.ledger.gates.prefetch). It stays valid only while nothing
  else runs on the connection: any other statement drops it, and the requests after that read for
  themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

_GROUP = threading.local()

Merge = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]  # (held, new) -> what is sent


class Spoiled(SQLAlchemyError):
    """A transaction of a `group` raised after it wrote (or its database refused a statement): the
    group cannot commit what it holds, so it commits nothing."""


@dataclass
class Open:
    """A group's transaction while it is open on this thread."""

    session: Session
    url: object
    conn: Connection | None = None
    committed: dict[Callable[[], object], None] = field(default_factory=dict)
    writes: int = 0
    spoiled: BaseException | None = None
    memo: dict[str, Any] = field(default_factory=dict)
    held: dict[Any, dict[Hashable, dict[str, Any]]] = field(default_factory=dict)  # by statement, in order
    quiet: bool = False  # the group's own statements are running: they neither send nor drop

    def count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        """A write's statement (its own, not the group's: a deferred one counted when it was held)."""
        if not self.quiet and not statement.lstrip()[:6].upper().startswith("SELECT"):
            self.writes += 1

    def before(self, conn: Connection, *_: Any) -> None:
        """Any other statement: what was deferred is sent first, and the memo no longer holds."""
        if self.quiet:
            return
        self.memo.clear()
        self.send(conn)

    @contextmanager
    def own(self) -> Iterator[None]:
        """The group's own statements (a memo's reads, a deferred write sent): nothing else's."""
        self.quiet = True
        try:
            yield
        finally:
            self.quiet = False

    def hold(self, statement: Any, params: dict[str, Any], key: Hashable | None, merge: Merge | None) -> None:
        rows = self.held.setdefault(statement, {})
        key = object() if key is None else key
        known = rows.get(key)
        rows[key] = params if known is None or merge is None else merge(known, params)
        self.writes += 1  # a deferred write is a write: a request that raises after one spoils the group

    def send(self, conn: Connection) -> None:
        """Every deferred write, each statement once with all its rows, in the order first deferred."""
        if not self.held:
            return
        held, self.held = self.held, {}
        with self.own(), pipelined(conn):
            for statement, rows in held.items():
                values = list(rows.values())
                conn.execute(statement, values[0] if len(values) == 1 else values)

    @contextmanager
    def part(self) -> Iterator[None]:
        """One joined transaction: what raises before writing anything leaves the group as it was (a
        refusal reads, then refuses); what raises after writing, or with a statement refused, spoils it."""
        if self.spoiled is not None:
            raise Spoiled("an earlier transaction of this group failed after writing") from self.spoiled
        writes = self.writes
        try:
            yield
        except BaseException as exc:
            session = self.session
            if self.writes != writes or isinstance(exc, SQLAlchemyError) or session.new or session.dirty \
                    or session.deleted:
                self.spoiled = exc
            raise


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """The statements executed inside, sent as one pipeline on PostgreSQL: one round trip for all of
    them, not one each. Their failure, which psycopg reports as the pipeline ends, reaches the caller
    as SQLAlchemy's error for it (`driver_errors`)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with driver_errors(conn), conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
        yield


@contextmanager
def driver_errors(conn: Connection) -> Iterator[None]:
    """psycopg's errors raised inside, outside any SQLAlchemy execute (a pipeline's end, the driver
    called directly), as SQLAlchemy's error for them, as if a statement had failed on its own: a lost
    connection invalidated."""
    if conn.dialect.name != "postgresql":
        yield
        return
    import psycopg  # loaded with the first PostgreSQL connection

    try:
        yield
    except psycopg.Error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)  # type: ignore[arg-type]
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, psycopg.Error, connection_invalidated=lost) from exc


def enter(joined: Open) -> Open:
    """`joined` is the group open on this thread (phasegate.ledger.db.group)."""
    _GROUP.open = joined
    return joined


def leave() -> None:
    _GROUP.open = None


def current() -> Open | None:
    """The group open on this thread, if any."""
    joined: Open | None = getattr(_GROUP, "open", None)
    return joined


def of(conn: Connection) -> Open | None:
    """The group open on this thread if `conn` is its connection."""
    joined = current()
    return joined if joined is not None and joined.conn is conn else None


def defer(conn: Connection, statement: Any, params: dict[str, Any] | list[dict[str, Any]], *,
          key: Hashable | None = None, merge: Merge | None = None) -> None:
    """`conn.execute(statement, params)` (one row, or several), held back inside a group until the
    next other statement or the COMMIT. A later row under the same `key` (one row's) replaces it, or
    is `merge`d with it when given."""
    joined = of(conn)
    if joined is None:
        conn.execute(statement, params)
    elif isinstance(params, list):
        for row in params:
            joined.hold(statement, row, None, None)
    else:
        joined.hold(statement, params, key, merge)


def memo(conn: Connection) -> dict[str, Any] | None:
    """The group's memo if `conn` is a group's connection (see the module's docstring); else None."""
    joined = of(conn)
    return None if joined is None else joined.memo

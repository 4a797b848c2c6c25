"""What is wrong with a ledger that fails a call: its disk is full, it is read-only, it cannot be
reached, it does not answer in time, or its schema is missing. The click's answer, `/healthz`,
`/readyz` and the CLI say which, instead of one guess for all ("unavailable", or "has `phasegate db
upgrade` been run?" when PostgreSQL was simply down).

    fault = classify(exc)          # a LedgerFault, or None for an error that is not one of these
    raise unavailable(exc)         # the LedgerUnavailable to show, one line
    problem = write_problem(sessions)   # /readyz: None once a write was committed
"""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from phasegate.errors import LedgerFault, LedgerUnavailable
from phasegate.ledger.db import LEDGER_DOWN, transaction
from phasegate.ledger.models import HeartbeatRow, utcnow

# PostgreSQL's SQLSTATEs by fault: a class (two characters) or one code.
PG_STATES = {"53100": LedgerFault.DISK_FULL, "25006": LedgerFault.READ_ONLY, "42P01": LedgerFault.SCHEMA_MISSING,
             "42703": LedgerFault.SCHEMA_MISSING, "57014": LedgerFault.NO_ANSWER, "55P03": LedgerFault.NO_ANSWER,
             "08": LedgerFault.UNREACHABLE, "57P": LedgerFault.UNREACHABLE, "53": LedgerFault.DISK_FULL}
SQLITE_NAMES = {"SQLITE_FULL": LedgerFault.DISK_FULL, "SQLITE_READONLY": LedgerFault.READ_ONLY,
                "SQLITE_BUSY": LedgerFault.NO_ANSWER, "SQLITE_LOCKED": LedgerFault.NO_ANSWER,
                "SQLITE_CANTOPEN": LedgerFault.UNREACHABLE, "SQLITE_IOERR": LedgerFault.UNREACHABLE}
WHAT = {
    LedgerFault.DISK_FULL: "the ledger's disk is full: nothing can be recorded until space is freed",
    LedgerFault.READ_ONLY: "the ledger is read-only (its file, mount or server refuses writes)",
    LedgerFault.UNREACHABLE: "the ledger's database cannot be reached (down, or refusing connections)",
    LedgerFault.NO_ANSWER: "the ledger did not answer in time (hung, frozen or too busy)",
    LedgerFault.SCHEMA_MISSING: "the ledger's tables are missing or older than this phasegate: "
                                "run `phasegate db upgrade`",
}
PROBE = "readyz"


def classify(exc: BaseException) -> LedgerFault | None:
    """The fault behind a database error, or None when it is not one of them (a bad value, a bug)."""
    if isinstance(exc, PoolTimeout):  # no connection or no writer's turn in time
        return LedgerFault.NO_ANSWER
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        name = getattr(orig, "sqlite_errorname", "") or ""
        for prefix, fault in SQLITE_NAMES.items():
            if name.startswith(prefix):
                return fault
        if "no such table" in str(orig) or "no such column" in str(orig):
            return LedgerFault.SCHEMA_MISSING
        return None
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        for key in (state, state[:3], state[:2]):
            if key in PG_STATES:
                return PG_STATES[key]
        return None
    if _psycopg_no_answer(orig):
        return LedgerFault.NO_ANSWER
    if isinstance(exc, DBAPIError) and exc.connection_invalidated or type(orig).__name__ == "OperationalError":
        return LedgerFault.UNREACHABLE  # a connection that failed without a server's SQLSTATE
    return None


def is_fault(exc: BaseException) -> bool:
    """Whether the error is the ledger's trouble (down, busy, full, read-only, no schema), not a bug."""
    return isinstance(exc, LEDGER_DOWN) or classify(exc) is not None


def stale_connection(exc: BaseException) -> bool:
    """A pooled connection found gone at its first statement (its server process ended since it was
    last used: a restart, pg_terminate_backend; phasegate.ledger.db pings only idle ones): SQLAlchemy
    has replaced the pool's connections, so trying again opens a new one. Not a server that does not
    answer (the next try would wait as long), nor a COMMIT left unanswered."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated and classify(exc) is LedgerFault.UNREACHABLE


def unconfirmed(exc: BaseException) -> tuple[bool, str | None]:
    """Whether `exc` is a COMMIT sent and not answered in time (phasegate.ledger.bounded), and the
    transaction's id to look it up by."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if "psycopg" not in sys.modules:
        return False, None
    from phasegate.ledger.bounded import CommitUnconfirmed

    return (True, orig.xid) if isinstance(orig, CommitUnconfirmed) else (False, None)


def commit_status(sessions: sessionmaker[Session], xid: str) -> str | None:
    """PostgreSQL's word on transaction `xid`: "committed", "aborted", "in progress"; None while the
    ledger does not answer."""
    try:
        with transaction(sessions, write=False) as session:
            status = session.execute(text("SELECT pg_xact_status(CAST(:xid AS xid8))"), {"xid": xid}).scalar()
    except SQLAlchemyError:
        return None
    return str(status) if status is not None else None


def _psycopg_no_answer(orig: object) -> bool:
    if "psycopg" not in sys.modules:  # only a PostgreSQL ledger's errors are psycopg's
        return False
    from psycopg.errors import ConnectionTimeout

    from phasegate.ledger.bounded import NoAnswer

    return isinstance(orig, NoAnswer | ConnectionTimeout)


def reason(exc: BaseException) -> str:
    """The database's own first line, for the operator."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return lines[0][:200] if lines else type(orig).__name__


def unavailable(exc: BaseException) -> LedgerUnavailable | None:
    """The one-line typed error for a database error that is a ledger fault; None for any other."""
    fault = classify(exc)
    if fault is None:
        return None
    return LedgerUnavailable(fault, f"{WHAT[fault]} ({reason(exc)})")


def write_problem(sessions: sessionmaker[Session]) -> LedgerUnavailable | None:
    """Commit a write to the heartbeat row, as a click would; None when the ledger took it."""
    try:
        with transaction(sessions) as session:
            now = utcnow()
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            session.execute(insert(HeartbeatRow).values(probe=PROBE, written_at=now)
                            .on_conflict_do_update(index_elements=["probe"], set_={"written_at": now}))
    except SQLAlchemyError as exc:
        return unavailable(exc) or LedgerUnavailable(LedgerFault.UNREACHABLE, f"the ledger refused a write ({reason(exc)})")
    return None

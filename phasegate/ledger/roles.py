"""Least privilege on PostgreSQL: an owner role that migrates, a runtime role that only reads and writes rows.

The append-only triggers (append_only.py) stop an UPDATE or DELETE from anyone who cannot drop or
disable them, and on PostgreSQL only a table's owner (or a superuser) can: `DROP TRIGGER`, `ALTER
TABLE ... DISABLE TRIGGER`, `DROP FUNCTION` and `SET session_replication_role` all need ownership or
superuser rights. So phasegate's processes connect as a runtime role that owns nothing, and the
owner role is used only by `phasegate db upgrade`. The runtime role gets, table by table, no more
than the code needs: append-only tables SELECT and INSERT, the others SELECT, INSERT and UPDATE,
no DELETE or TRUNCATE anywhere.

    phasegate db upgrade --runtime-role phasegate_app   # as the owner: migrate, then grant
    phasegate db grants phasegate_app                   # or print the statements for a DBA
"""

from __future__ import annotations

import re

from sqlalchemy import text

from phasegate.errors import InvalidRequest, NotFound, PolicyError
from phasegate.ledger.append_only import APPEND_ONLY
from phasegate.ledger.db import make_engine
from phasegate.ledger.models import Base

ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def statements(role: str) -> list[str]:
    """The GRANTs that let `role` run phasegate and nothing more, for the current schema."""
    if not ROLE.fullmatch(role):
        raise InvalidRequest({"role": f"{role!r}: use lower-case letters, digits and _ (at most 63)"})
    tables = sorted(t.name for t in Base.metadata.sorted_tables)
    write_once = sorted(set(APPEND_ONLY) & set(tables))
    mutable = [t for t in tables if t not in write_once]
    return [
        f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"',
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        f'GRANT SELECT ON alembic_version TO "{role}"',
        f'GRANT SELECT, INSERT ON {", ".join(write_once)} TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE ON {", ".join(mutable)} TO "{role}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
    ]


def grant(url: str, role: str) -> list[str]:
    """Apply `statements(role)` at `url`, connected as the owner (what `db upgrade --runtime-role` runs)."""
    if not url.startswith("postgresql"):
        raise PolicyError("a runtime role is for PostgreSQL; SQLite has no roles (protect the file instead)")
    todo = statements(role)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            if exists is None:
                raise NotFound(f'role "{role}" does not exist: CREATE ROLE "{role}" LOGIN first')
            for statement in todo:
                conn.execute(text(statement))
    finally:
        engine.dispose()
    return todo


"""Triggers that make decisions, evidence snapshots, spend entries, Jira revisions, change-request
answers, attestations, metric submissions, scope baselines and audit events append-only in the database itself, so an edit through SQL is refused rather than merely detected
later by `audit verify`.

The chain heads are the one mutable part of the trail: a head may only move forward and never be
deleted. PostgreSQL also refuses TRUNCATE, which bypasses row triggers. The migration that adds
the chain creates these triggers; nothing in phasegate drops them except that migration's
downgrade. Someone with the rights to drop or disable triggers can still edit rows, which is
what the hash chain is for.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

FIRST = ("audit_events", "decisions", "evidence_snapshots")  # made append-only by migration 0003
SEALED_ONCE = ("change_decisions", "attestations", "metric_submissions", "baselines")  # migration 0011
APPEND_ONLY = (*FIRST, "spend_entries", "jira_revisions", *SEALED_ONCE)  # spend_entries: 0006; jira_revisions: 0009
HEADS = "audit_heads"


def _sqlite_table(table: str) -> list[str]:
    return [f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END" for op in ("UPDATE", "DELETE")]


def _pg_table(table: str) -> list[str]:
    return [f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION phasegate_append_only()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION phasegate_append_only()"]


def _sqlite_statements(tables: tuple[str, ...]) -> list[str]:
    statements = [s for table in tables for s in _sqlite_table(table)]
    statements.append(f"CREATE TRIGGER {HEADS}_forward_only BEFORE UPDATE ON {HEADS} "
                      "WHEN NEW.seq <= OLD.seq OR NEW.engagement_id <> OLD.engagement_id "
                      f"BEGIN SELECT RAISE(ABORT, '{HEADS} only move forward: UPDATE refused'); END")
    statements.append(f"CREATE TRIGGER {HEADS}_no_delete BEFORE DELETE ON {HEADS} "
                      f"BEGIN SELECT RAISE(ABORT, '{HEADS} are never deleted: DELETE refused'); END")
    return statements


_PG_FUNCTIONS = [
    """CREATE FUNCTION phasegate_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
    END $$""",
    """CREATE FUNCTION phasegate_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.seq > OLD.seq AND NEW.engagement_id = OLD.engagement_id THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION '% only move forward: % refused', TG_TABLE_NAME, TG_OP;
    END $$""",
]


def _pg_statements(tables: tuple[str, ...]) -> list[str]:
    statements = list(_PG_FUNCTIONS) + [s for table in tables for s in _pg_table(table)]
    statements.append(f"CREATE TRIGGER {HEADS}_no_truncate BEFORE TRUNCATE ON {HEADS} "
                      "FOR EACH STATEMENT EXECUTE FUNCTION phasegate_append_only()")
    statements.append(f"CREATE TRIGGER {HEADS}_forward_only BEFORE UPDATE OR DELETE ON {HEADS} "
                      "FOR EACH ROW EXECUTE FUNCTION phasegate_head_forward_only()")
    return statements


def create(conn: Connection, tables: tuple[str, ...] = APPEND_ONLY) -> None:
    """The trigger functions, the heads' triggers and the triggers of `tables` (a migration passes
    the tables that exist at its revision)."""
    statements = _pg_statements(tables) if conn.dialect.name == "postgresql" else _sqlite_statements(tables)
    for statement in statements:
        conn.execute(text(statement))


def protect(conn: Connection, table: str) -> None:
    """Make one more table append-only, once `create` has run (a later migration's table)."""
    for statement in _pg_table(table) if conn.dialect.name == "postgresql" else _sqlite_table(table):
        conn.execute(text(statement))


def drop(conn: Connection) -> None:
    """Remove the triggers (the migration's downgrade)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP FUNCTION IF EXISTS phasegate_append_only() CASCADE"))
        conn.execute(text("DROP FUNCTION IF EXISTS phasegate_head_forward_only() CASCADE"))
        return
    tables = ", ".join(f"'{t}'" for t in (*APPEND_ONLY, HEADS))
    names: list[str] = list(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                              f"AND tbl_name IN ({tables})")).scalars())
    for name in names:
        conn.execute(text(f'DROP TRIGGER "{name}"'))


def unprotect(conn: Connection, table: str) -> None:
    """Undo `protect` for one table (a later migration's downgrade)."""
    if conn.dialect.name == "postgresql":
        for name in (f"{table}_append_only", f"{table}_no_truncate"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
        return
    for op in ("update", "delete"):
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{op}"))

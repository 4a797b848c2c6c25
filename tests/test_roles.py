"""Least privilege on PostgreSQL: the owner migrates, the runtime role only reads and writes rows.

Tried as the runtime role would try it: every way past the append-only triggers (drop or disable them,
drop their function, skip them with session_replication_role, TRUNCATE) and every edit of an
append-only table is refused by PostgreSQL itself, while phasegate's own work goes through.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_roles import owner_and_runtime
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import engagements, spend
from phasegate.ledger.db import make_engine, sessions, transaction, upgrade


@pytest.fixture
def two_roles() -> Iterator[tuple[str, str, str]]:
    """(owner url, runtime url, runtime role): a database owned by a fresh owner role, migrated by it."""
    with owner_and_runtime("roles") as urls:
        yield urls


def test_db_upgrade_grants_the_runtime_role_rows_and_nothing_more(two_roles: tuple[str, str, str],
                                                                   acme: Engagement) -> None:
    owner_url, runtime_url, role = two_roles
    done = CliRunner().invoke(app, ["db", "upgrade", "--runtime-role", role],
                              env={"PHASEGATE_DATABASE_URL": owner_url})
    assert done.exit_code == 0, done.output
    assert f"granted to {role}" in done.output

    upgrade(runtime_url)  # a process that checks the schema on start finds it current, as the runtime role
    engine = make_engine(runtime_url)
    try:
        with transaction(sessions(engine)) as session:  # phasegate's own work, as the runtime role
            engagements.register(session, acme)
            spend.record(session, acme, Phase.POC, "1200", by=acme.pm_slack_user, note="first invoice")
        with transaction(sessions(engine)) as session:  # a change rewrites the status columns: UPDATE, not DELETE
            spend.record(session, acme, Phase.POC, "130000", by=acme.pm_slack_user, note="second invoice")
        refused = {
            "UPDATE spend_entries SET amount = 1": "permission denied",
            "DELETE FROM audit_events": "permission denied",
            "DELETE FROM engagements": "permission denied",
            "TRUNCATE audit_events": "permission denied",
            "UPDATE audit_heads SET seq = 0": None,  # allowed by the grant, refused by the forward-only trigger
            "DROP TRIGGER audit_events_append_only ON audit_events": "must be owner",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL": "must be owner",
            "DROP FUNCTION phasegate_append_only() CASCADE": "must be owner",
            "SET session_replication_role = replica": "permission denied",
            "CREATE TABLE shadow (id int)": "permission denied",
        }
        for statement, expected in refused.items():
            with engine.connect() as conn, pytest.raises(DBAPIError) as caught:
                conn.execute(text(statement))
            message = str(caught.value.orig).lower()
            assert expected is None or expected in message, (statement, message)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM spend_entries")).scalar_one() == 2
            assert conn.execute(text("SELECT over_budget FROM engagement_status")).scalar_one() is True
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one() >= 2
    finally:
        engine.dispose()


def test_the_grants_can_be_printed_for_a_dba_and_refuse_a_hostile_role_name() -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["db", "grants", "phasegate_app"])
    assert printed.exit_code == 0
    expected = ('GRANT SELECT, INSERT ON attestations, audit_events, baselines, change_decisions, decisions, '
                'evidence_snapshots, jira_revisions, metric_submissions, spend_entries TO "phasegate_app";')
    assert expected in printed.output
    assert "DELETE" not in printed.output and "TRUNCATE" not in printed.output
    hostile = runner.invoke(app, ["db", "grants", 'x"; DROP TABLE gates; --'])
    assert hostile.exit_code == 1 and "use lower-case letters" in hostile.output


def test_sqlite_has_no_runtime_role(tmp_path: object) -> None:
    done = CliRunner().invoke(app, ["db", "upgrade", "--runtime-role", "phasegate_app"],
                              env={"PHASEGATE_DATABASE_URL": f"sqlite:///{tmp_path}/ledger.db"})
    assert done.exit_code == 1 and "SQLite has no roles" in done.output

"""`phasegate status` from the status columns (issue 23 item 4).

The view reads each engagement's projection row (written in the transaction of every change) and its
open gates and answers, and decodes no engagement file. These tests hold it to the rows the decoding
path (phasegate.reports.portfolio.status_rows) gives, on both backends, over engagements in
different states and at different times; check that the columns are written by the change's own
commit (and not by a rolled-back one); that the migration backfills engagements registered before
it; and that the command renders plain columns when its output is not a terminal.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from helpers import Invoke, ok, open_gate, with_changes
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import engagements, gates, phases, read, spend
from phasegate.ledger.db import alembic_config, transaction, upgrade
from phasegate.ledger.models import EngagementStatusRow, WeeklyReportRow, utcnow
from phasegate.reports import status_view
from phasegate.reports.portfolio import status_rows
from phasegate.states import Outcome, Rag, ReportKind, Via


def variant(acme: Engagement, n: int) -> Engagement:
    return with_changes(acme, id=f"e{n}-{acme.id}", name=f"{acme.name} {n}", slack_channel=f"C0STATUS{n:02d}")


def portfolio(ledger: sessionmaker[Session], acme: Engagement) -> list[str]:
    """Five engagements: registered only; a gate open with one answer; over budget with an amber
    report; a PoC extended; a gate open with no answer."""
    plain, answered, costly, extended, waiting = (variant(acme, n) for n in range(5))
    with transaction(ledger) as session:
        engagements.register(session, plain)
    gate_id = open_gate(ledger, answered)
    with transaction(ledger) as session:
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="", via=Via.CLI)
    for e in (costly, extended):
        with transaction(ledger) as session:
            engagements.register(session, e)
            phases.start_phase(session, e, Phase.POC, requested_by=e.pm_slack_user, flow_run_id=None,
                               today=e.start_date)
    with transaction(ledger) as session:
        spend.record(session, costly, Phase.POC, "200000", by="U0SPONSOR1")
        session.add(WeeklyReportRow(kind=ReportKind.ENGAGEMENT, subject=costly.id, week="2026-W33", rag=Rag.AMBER,
                                    body={}))
    with transaction(ledger) as session:
        phases.extend(session, extended, Phase.POC, after=1, reason="more data", today=extended.start_date)
    open_gate(ledger, waiting)
    return [e.id for e in (plain, answered, costly, extended, waiting)]


@pytest.mark.parametrize("days", [0, 20, 200])
def test_status_from_columns_is_the_status_from_decoded_files(ledger: sessionmaker[Session], ledger_url: str,
                                                              acme: Engagement, days: int) -> None:
    ids = portfolio(ledger, acme)
    now = utcnow() + dt.timedelta(days=days)
    with transaction(ledger, write=False) as session:
        decoded = status_rows(session, now, ids)
    with read.reading(ledger_url) as conn:
        shown = status_view.page(conn, limit=None, finished=True)
        from_columns = status_view.rows(conn, now, shown.ids)
    assert shown.ids == sorted(ids)
    assert from_columns == decoded
    # the portfolio covers what the view shows: an answer, over budget, an amber report, an extension
    by_id = {r["id"]: r for r in from_columns}
    assert by_id[ids[1]]["open_gates"] and "Dana Whitfield" not in by_id[ids[1]]["blocking"]
    assert by_id[ids[2]]["rag"] != "green" and by_id[ids[2]]["last_report"] == "2026-W33"
    assert by_id[ids[3]]["week"] == by_id[ids[2]]["week"] is not None
    assert by_id[ids[4]]["blocking"] == ["Dana Whitfield", "Omar Haddad", "Priya Natarajan"]


def test_columns_are_written_by_the_commit_of_the_change(ledger: sessionmaker[Session], acme: Engagement) -> None:
    with transaction(ledger) as session:
        engagements.register(session, acme)
    with pytest.raises(RuntimeError), transaction(ledger) as session:
        phases.start_phase(session, acme, Phase.POC, requested_by=acme.pm_slack_user, flow_run_id=None,
                           today=acme.start_date)
        raise RuntimeError("rolled back")
    with transaction(ledger, write=False) as session:
        row = session.get(EngagementStatusRow, acme.id)
        assert row is not None and (row.phase_started, row.timebox_ends_on, row.booked_weeks) == (None, None, 0)
    with transaction(ledger) as session:
        phases.start_phase(session, acme, Phase.POC, requested_by=acme.pm_slack_user, flow_run_id=None,
                           today=acme.start_date)
    with transaction(ledger, write=False) as session:
        row = session.get(EngagementStatusRow, acme.id)
        assert row is not None
        assert (row.phase_started, row.planned_weeks, row.booked_weeks) == (acme.start_date, 8, 8)
        assert row.timebox_ends_on == phases.current_timebox(session, acme.id, Phase.POC).ends_on


def test_the_migration_backfills_engagements_registered_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    command.upgrade(alembic_config(url), "0012")  # the schema just before the status columns
    acme = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")
    engine = create_engine(url)
    with Session(engine) as session, session.begin():  # a session without the projection's hooks, as before 0013
        engagements.register(session, acme)
        phases.start_phase(session, acme, Phase.POC, requested_by=acme.pm_slack_user, flow_run_id=None,
                           today=acme.start_date)
    engine.dispose()
    upgrade(url)
    with read.reading(url) as conn:
        (row,) = status_view.rows(conn, utcnow(), [acme.id])
        (stored,) = conn.rows("SELECT phase_started FROM engagement_status", decoded=[read.tables.engagement_status])
    assert (row["phase"], row["planned_weeks"], stored.phase_started) == ("poc", 8, acme.start_date)


def test_status_prints_plain_columns_when_not_a_terminal(cli: Invoke, home: Path) -> None:
    ok(cli("engagement", "create", str(ENGAGEMENTS_DIR / "acme-churn.yaml")))
    result = cli("status")
    ok(result)
    printed = result.stdout
    assert "┃" not in printed and "│" not in printed
    heading, line = printed.splitlines()[:2]
    assert heading.split() == ["engagement", "phase", "week", "RAG", "open", "gates", "overdue", "waiting", "for",
                               "timebox", "ends"]
    assert line.split() == ["acme-churn", "registered", "-", "GREEN", "-", "-", "-", "-"]
    assert heading.index("RAG") == line.index("GREEN")


def test_the_status_view_reads_the_data_deletion_attestation_the_report_reads() -> None:
    from phasegate.reports import status_view
    from phasegate.rules import handoff

    assert status_view.DATA_DELETED == handoff.DATA_DELETED

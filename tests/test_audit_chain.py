"""The tamper-evident audit trail, on SQLite and PostgreSQL: a ledger written by the real tasks
verifies; triggers refuse UPDATE and DELETE; and every edit, deletion, reordering and truncation
made by someone with database access (triggers switched off first, as they would have to) is
named by `phasegate audit verify`, which exits non-zero. Appends from many writers at once leave
one unbroken chain."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import PG_ADMIN, settings_for, triggers_off
from helpers import closed_port_url, posted_gate
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.exc import DBAPIError

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import audit, gates, phases
from phasegate.ledger.db import alembic_config, make_engine, transaction, upgrade
from phasegate.ledger.models import AuditEventRow, AuditHeadRow, Base, DecisionRow, SnapshotRow
from phasegate.ledger.verify import verify
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import AuditKind, Outcome, Via

SPONSOR, TECH_LEAD, VENDOR_LEAD = "U0SPONSOR1", "U0TECHLEAD", "U0VENDLEAD"
Invoke = Callable[..., Result]


@pytest.fixture
def cli(ledger_url: str, tmp_path: Path, slack: SlackStandin) -> Invoke:
    from typer.testing import CliRunner

    runner = CliRunner(env={"PHASEGATE_HOME": str(tmp_path), "PHASEGATE_DATABASE_URL": ledger_url,
                            "PREFECT_API_URL": closed_port_url(), "COLUMNS": "200",
                            "PHASEGATE_SLACK_API_URL": slack.base_url, "PHASEGATE_SLACK_BOT_TOKEN": slack.bot_token})

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke


def decided_g1(rt: Runtime, acme: Engagement) -> int:
    """acme's G1 opened by the real tasks, a changed mind, then decided GO from Slack and the CLI."""
    gate_id = posted_gate(rt, acme).id  # its milestones are open: GO is a waiver and carries a reason
    for approver, outcome, reason, channel in [(SPONSOR, Outcome.NO_GO, "F1 too low", Via.SLACK),
                                               (SPONSOR, Outcome.GO, "pilot scope only", Via.SLACK),
                                               (VENDOR_LEAD, Outcome.GO, "agreed: pilot scope", Via.CLI)]:
        with transaction(rt.sessions) as session:
            gates.answer(session, gate_id, approver=approver, outcome=outcome, reason=reason, via=channel)
    return gate_id


def tamper(url: str, *statements: Any) -> None:
    """Run statements as someone with direct database access would: triggers off, one transaction."""
    engine = make_engine(url)
    with engine.begin() as conn, triggers_off(conn):
        for statement in statements:
            conn.execute(text(statement) if isinstance(statement, str) else statement)
    engine.dispose()


def events(rt: Runtime, engagement_id: str) -> list[AuditEventRow]:
    with transaction(rt.sessions) as session:
        return list(session.scalars(select(AuditEventRow).where(AuditEventRow.engagement_id == engagement_id)
                                    .order_by(AuditEventRow.seq)))


def broken(result: Result, *fragments: str) -> list[str]:
    """The problem lines of a failed `audit verify`; one of them must contain every fragment."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line]
    assert lines and all(line.startswith("phasegate: acme-churn: ") for line in lines), lines
    assert any(all(f in line for f in fragments) for line in lines), (fragments, lines)
    return lines


def test_an_untouched_ledger_verifies(rt: Runtime, acme: Engagement, cli: Invoke) -> None:
    gate_id = decided_g1(rt, acme)
    chain = events(rt, acme.id)
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert [e.prev_hash for e in chain[1:]] == [e.hash for e in chain[:-1]]
    with transaction(rt.sessions) as session:
        [report] = verify(session, acme.id)
        head = session.get(AuditHeadRow, acme.id)
        sealed = {(e.row_table, e.row_id) for e in chain if e.row_table}
        decision_ids = [d.id for d in gates.decisions(session, gate_id)]
        snapshot_id = gates.by_id(session, gate_id).snapshot_id
        box_id = phases.current_timebox(session, acme.id, Phase.POC).id
    assert report.intact and report.events == len(chain)
    assert head is not None and (head.seq, head.hash) == (chain[-1].seq, chain[-1].hash)
    assert sealed == ({("decisions", d) for d in decision_ids} | {("evidence_snapshots", snapshot_id)}
                      | {("gates", gate_id), ("timeboxes", box_id), ("engagements", 0)})  # the engagement is row 0

    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert f"acme-churn: {len(chain)} events intact, head #{len(chain)} {chain[-1].hash}" in result.stdout
    assert f"audit chain intact: {len(chain)} events in 1 engagement" in result.stdout
    shown = cli("gate", "show", str(gate_id))
    assert shown.exit_code == 0 and "warning: evidence" not in shown.stdout and "broken" not in shown.stdout


@pytest.mark.parametrize("table", ["audit_events", "decisions", "evidence_snapshots"])
def test_triggers_refuse_update_and_delete(rt: Runtime, acme: Engagement, ledger_url: str, table: str) -> None:
    decided_g1(rt, acme)
    engine = make_engine(ledger_url)
    column = {"audit_events": "subject", "decisions": "approver", "evidence_snapshots": "digest"}[table]
    for statement in (f"UPDATE {table} SET {column} = 'forged'", f"DELETE FROM {table}"):
        with pytest.raises(DBAPIError, match=f"{table} is append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with pytest.raises(DBAPIError, match="audit_heads only move forward"), engine.begin() as conn:
        conn.execute(text("UPDATE audit_heads SET seq = seq - 1"))
    with pytest.raises(DBAPIError, match="DELETE refused"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_heads"))
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = 'forged'")).scalar() == 0
    engine.dispose()
    with transaction(rt.sessions) as session:
        assert verify(session, acme.id)[0].intact


def test_an_edited_decision_approver_is_named(rt: Runtime, acme: Engagement, ledger_url: str, cli: Invoke) -> None:
    """The issue's forgery: the approver of a recorded GO rewritten in SQL."""
    gate_id = decided_g1(rt, acme)
    with transaction(rt.sessions) as session:
        decision = gates.decisions(session, gate_id)[-1]
    sealing = next(e for e in events(rt, acme.id) if e.row_table == "decisions" and e.row_id == decision.id)
    tamper(ledger_url, f"UPDATE decisions SET approver = 'U0FORGED1' WHERE id = {decision.id}")
    broken(cli("audit", "verify", acme.id), f"decision {decision.id} was edited after event #{sealing.seq} sealed it",
           f"approver now 'U0FORGED1', recorded '{VENDOR_LEAD}'")
    shown = cli("gate", "show", str(gate_id))
    assert "warning: the audit chain of acme-churn is broken" in " ".join(shown.stdout.split())


def test_edited_evidence_is_named_and_gate_show_warns(rt: Runtime, acme: Engagement, ledger_url: str,
                                                      cli: Invoke) -> None:
    gate_id = decided_g1(rt, acme)
    with transaction(rt.sessions) as session:
        frozen = session.get(SnapshotRow, gates.by_id(session, gate_id).snapshot_id)
        assert frozen is not None
        body = dict(frozen.body)
    body["criteria"] = [dict(c, result="pass", seen="0.99") for c in body["criteria"]]
    snapshots = Base.metadata.tables["evidence_snapshots"]
    tamper(ledger_url, update(snapshots).where(snapshots.c.id == frozen.id).values(body=body))
    broken(cli("audit", "verify", acme.id), f"evidence snapshot {frozen.id} was edited after event #")
    broken(cli("audit", "verify", acme.id), f"gate {gate_id} (acme-churn/G1): digest", "does not match its evidence")
    shown = " ".join(cli("gate", "show", str(gate_id)).stdout.split())
    assert f"warning: evidence does not match this gate: digest {frozen.digest[:12]} does not match" in shown


def test_an_edited_event_payload_is_named(rt: Runtime, acme: Engagement, ledger_url: str, cli: Invoke) -> None:
    decided_g1(rt, acme)
    decided = next(e for e in events(rt, acme.id) if e.kind is AuditKind.GATE_DECIDED)
    table = Base.metadata.tables["audit_events"]
    tamper(ledger_url, update(table).where(table.c.id == decided.id).values(payload=dict(decided.payload,
                                                                                           outcome="no_go")))
    lines = broken(cli("audit", "verify", acme.id),
                   f"event #{decided.seq} (id {decided.id}, gate_decided acme-churn/G1) was edited")
    assert len(lines) == 1


def test_a_rewritten_event_breaks_the_next_link(rt: Runtime, acme: Engagement, ledger_url: str, cli: Invoke) -> None:
    """An attacker who also recomputes the edited event's own hash is caught by the event after it."""
    decided_g1(rt, acme)
    chain = events(rt, acme.id)
    target = chain[2]
    tamper(ledger_url, f"UPDATE audit_events SET hash = '{'f' * 64}' WHERE id = {target.id}")
    broken(cli("audit", "verify", acme.id), f"event #{target.seq + 1}", f"does not link to event #{target.seq}")


def test_a_deleted_event_and_a_deleted_decision_are_named(rt: Runtime, acme: Engagement, ledger_url: str,
                                                          cli: Invoke) -> None:
    gate_id = decided_g1(rt, acme)
    chain = events(rt, acme.id)
    with transaction(rt.sessions) as session:
        first_decision = gates.decisions(session, gate_id)[0]
    tamper(ledger_url, f"DELETE FROM audit_events WHERE id = {chain[3].id}",
           f"DELETE FROM decisions WHERE id = {first_decision.id}")
    result = cli("audit", "verify", acme.id)
    broken(result, f"event #4 missing before event #5 (id {chain[4].id}", "(deleted)")
    broken(result, f"decision {first_decision.id}, sealed by event #", "is missing (deleted)")


def test_reordered_events_are_named(rt: Runtime, acme: Engagement, ledger_url: str, cli: Invoke) -> None:
    """Two events' contents swapped (the ids and places stay), in three steps around the UNIQUE prev_hash."""
    decided_g1(rt, acme)
    first, second = events(rt, acme.id)[2:4]
    table = Base.metadata.tables["audit_events"]
    content = ("kind", "subject", "payload", "created_at", "row_table", "row_id", "row_hash", "hash")

    def values(e: AuditEventRow) -> dict[str, Any]:
        return {name: getattr(e, name) for name in content}

    tamper(ledger_url,
           update(table).where(table.c.id == first.id).values(**values(second), prev_hash="moving"),
           update(table).where(table.c.id == second.id).values(**values(first), prev_hash=first.prev_hash),
           update(table).where(table.c.id == first.id).values(prev_hash=second.prev_hash))
    broken(cli("audit", "verify", acme.id), f"event #{first.seq} (id {first.id}", "is out of order",
           f"chained after event #{second.seq}")


def test_a_truncated_chain_is_named(rt: Runtime, acme: Engagement, ledger_url: str, cli: Invoke) -> None:
    decided_g1(rt, acme)
    chain = events(rt, acme.id)
    tamper(ledger_url, f"DELETE FROM audit_events WHERE id IN ({chain[-1].id}, {chain[-2].id})")
    broken(cli("audit", "verify", acme.id), f"truncated: the head records event #{len(chain)} but the chain ends "
           f"at #{len(chain) - 2} (2 newest events deleted)")


def test_verify_refuses_an_unknown_engagement(rt: Runtime, acme: Engagement, cli: Invoke) -> None:
    decided_g1(rt, acme)
    result = cli("audit", "verify", "nope")
    assert result.exit_code == 1 and result.stderr.strip() == "phasegate: no engagement 'nope' in the ledger"


def test_export_writes_the_decision_history(rt: Runtime, acme: Engagement, cli: Invoke, tmp_path: Path) -> None:
    """The gate part of the export; tests/test_audit_export.py has the rest of a steering committee's record."""
    gate_id = decided_g1(rt, acme)
    with transaction(rt.sessions) as session:
        digest = gates.by_id(session, gate_id).digest
    head = events(rt, acme.id)[-1].hash
    md = cli("audit", "export", acme.id)
    assert md.exit_code == 0, md.output
    assert md.stdout.startswith("# Decision history: ACME churn prediction (acme-churn)\n")
    assert f"Audit chain intact: {len(events(rt, acme.id))} events, head #" in md.stdout and head in md.stdout
    assert "### G1 (poc), timebox 1, revision 1" in md.stdout and f"- Evidence digest: `{digest}`" in md.stdout
    assert f"| Dana Whitfield ({SPONSOR}) | client | sponsor | NO-GO | F1 too low | slack |" in md.stdout
    assert f"| Priya Natarajan ({VENDOR_LEAD}) | vendor | vendor lead | GO with waiver | agreed: pilot scope | cli |" \
        in md.stdout

    out = tmp_path / "g.csv"
    result = cli("audit", "export", acme.id, "--format", "csv", "--out", str(out))
    assert result.exit_code == 0 and f"written to {out}" in result.stdout
    rows = [r for r in csv.DictReader(io.StringIO(out.read_text())) if r["record"] == "gate"]
    assert [(r["approver"], r["answer"], r["channel"]) for r in rows] == [
        (SPONSOR, "NO-GO", "slack"), (SPONSOR, "GO with waiver", "slack"), (VENDOR_LEAD, "GO with waiver", "cli")]
    assert {(r["subject"], r["outcome"], r["evidence_digest"], r["side"]) for r in rows[2:]} == {
        ("G1", "GO with waiver", digest, "vendor")}


@pytest.mark.timeout(120)
def test_concurrent_writers_leave_one_chain(rt: Runtime, acme: Engagement) -> None:
    """Eight writers (as from several endpoint replicas) append answers and events to one engagement
    at once; the chain ends up contiguous, unforked and verified."""
    gate_id = posted_gate(rt, acme).id
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            for i in range(6):
                with transaction(rt.sessions) as session:
                    if i % 2:
                        audit.record(session, acme.id, AuditKind.REMINDER_SENT, f"writer {n}", number=i)
                    else:  # two client GOs never complete G1's quorum (it needs one vendor), so every answer stays
                        gates.answer(session, gate_id, approver=(SPONSOR, TECH_LEAD)[n % 2], outcome=Outcome.GO,
                                     reason=f"writer {n} round {i}", via=Via.SLACK)
        except BaseException as exc:  # reported below, with the thread's own error
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    chain = events(rt, acme.id)
    with transaction(rt.sessions) as session:
        [report] = verify(session, acme.id)
        decisions = gates.decisions(session, gate_id)
    assert report.problems == [] and report.events == len(chain)
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert len({e.prev_hash for e in chain}) == len(chain)
    assert len(decisions) == 8 * 3 and sum(e.kind is AuditKind.REMINDER_SENT for e in chain) == 8 * 3


def test_concurrent_first_writers_start_one_chain(rt: Runtime) -> None:
    """Eight writers whose events are the first of a chain: one creates its head, the rest wait for it."""
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            with transaction(rt.sessions) as session:
                audit.record(session, "new-chain", AuditKind.METRIC_SUBMITTED, f"writer {n}")
        except BaseException as exc:  # reported below, with the thread's own error
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with transaction(rt.sessions) as session:
        [report] = verify(session, "new-chain")
    assert (report.problems, report.events, report.head_seq) == ([], 8, 8)


@pytest.fixture
def fresh_url(ledger_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same backend, not yet migrated."""
    if ledger_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"phasegate_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_ledger_from_before_the_chain_verifies_after_upgrade(
        fresh_url: str, acme: Engagement, slack: SlackStandin, jira: JiraStandin, metrics: MetricsStandin,
        tmp_path: Path) -> None:
    """Rows written before migration 0002 (the chain taken off again by its downgrade) are chained
    and sealed by the upgrade (0003 seals decisions and snapshots, 0011 the engagement, its gates and timeboxes), so
    an old ledger verifies."""
    from alembic import command

    upgrade(fresh_url)
    rt = Runtime(settings_for(fresh_url, slack, jira, metrics, tmp_path))
    try:
        gate_id = decided_g1(rt, acme)
        command.downgrade(alembic_config(fresh_url), "0001")
        upgrade(fresh_url)
        with transaction(rt.sessions) as session:
            [report] = verify(session, acme.id)
            sealed = session.scalars(select(AuditEventRow.subject).where(AuditEventRow.kind == AuditKind.ROW_SEALED)
                                     .order_by(AuditEventRow.seq)).all()
            decision_ids = session.scalars(select(DecisionRow.id).order_by(DecisionRow.id)).all()
        assert report.problems == []
        assert sealed[0].startswith("evidence snapshot ")
        assert sealed[1:] == [f"decision {d}" for d in decision_ids] + [f"engagement {acme.id}", f"gate {gate_id}",
                                                                        "timebox 1"]
    finally:
        rt.close()

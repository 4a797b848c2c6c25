"""The ledger on SQLite and PostgreSQL: migrations match the models, answers become decisions
exactly once, even when many arrive at the same moment, and nothing is ever edited."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from helpers import open_gate, register, with_changes
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Approver, Engagement, Metric, Milestone, Phase
from phasegate.errors import GateClosed, InvalidTransition, PolicyError
from phasegate.ledger import ballots, engagements, gates, phases
from phasegate.ledger.db import make_engine, transaction
from phasegate.ledger.models import (
    AuditEventRow,
    Base,
    DecisionRow,
    EngagementRow,
    GateRow,
    MetricSubmissionRow,
    MilestoneLinkRow,
    PhaseRunRow,
    utcnow,
)
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.evidence import Snapshot
from phasegate.states import AuditKind, EngagementState, GateState, Outcome, Via


def open_gate_on_friday(ledger: sessionmaker[Session], engagement: Engagement) -> int:
    return open_gate(ledger, engagement, today=dt.date(2026, 11, 27))


def empty_snapshot(engagement_id: str, phase: Phase = Phase.POC, timebox: int = 1) -> Snapshot:
    return Snapshot(engagement_id=engagement_id, phase=phase, timebox=timebox, collected_at=utcnow(),
                    milestones=[], metrics=[], criteria=[])


def test_migrations_match_the_models(ledger_url: str, ledger: sessionmaker[Session]) -> None:
    engine = make_engine(ledger_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_answers_add_up_to_one_decision(ledger: sessionmaker[Session], acme: Engagement) -> None:
    gate_id = open_gate_on_friday(ledger, acme)
    with transaction(ledger) as session:
        first = gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="",
                             via=Via.SLACK, delivery_id="d1")
    with transaction(ledger) as session:
        again = gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="",
                             via=Via.SLACK, delivery_id="d1")
    with transaction(ledger) as session:
        second_side = gates.answer(session, gate_id, approver="U0VENDLEAD", outcome=Outcome.GO, reason="",
                                   via=Via.CLI)
    assert (first.recorded, first.decided) == (True, None)
    assert (again.recorded, again.decided) == (False, None)
    assert (second_side.recorded, second_side.decided) == (True, Outcome.GO)
    with transaction(ledger) as session:
        gate = gates.by_id(session, gate_id)
        assert gate.state is GateState.DECIDED and gate.outcome is Outcome.GO and gate.decided_at is not None
        assert [d.via for d in gates.decisions(session, gate_id)] == [Via.SLACK, Via.CLI]
        kinds = [e.kind for e in session.scalars(select(AuditEventRow).order_by(AuditEventRow.id))]
    assert kinds[-3:] == [AuditKind.DECISION_RECORDED, AuditKind.DECISION_RECORDED, AuditKind.GATE_DECIDED]
    with transaction(ledger) as session, pytest.raises(GateClosed, match="already decided: GO"):
        gates.answer(session, gate_id, approver="U0TECHLEAD", outcome=Outcome.NO_GO, reason="late",
                     via=Via.SLACK)


def test_a_changed_mind_is_a_new_decision(ledger: sessionmaker[Session], acme: Engagement) -> None:
    gate_id = open_gate_on_friday(ledger, acme)
    for outcome, reason in [(Outcome.NO_GO, "data is not ready"), (Outcome.GO, "")]:
        with transaction(ledger) as session:
            gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=outcome, reason=reason,
                         via=Via.SLACK)
    with transaction(ledger) as session:
        rows = gates.decisions(session, gate_id)
        latest = gates.latest_answers(rows)
    assert [(r.outcome, r.reason) for r in rows] == [(Outcome.NO_GO, "data is not ready"), (Outcome.GO, "")]
    assert latest["U0SPONSOR1"].outcome is Outcome.GO


def test_concurrent_answers_decide_exactly_once(ledger: sessionmaker[Session], acme: Engagement) -> None:
    """Many replicas of the endpoint may record answers at the same moment; the quorum is counted
    under a lock, so the gate is decided once and every distinct answer is kept."""
    any_two = with_changes(acme, phases__poc__gate__quorum={"count": "any"})
    gate_id = open_gate_on_friday(ledger, any_two)
    barrier = threading.Barrier(12)
    results: list[gates.Answered | Exception] = []

    def click(n: int) -> None:
        barrier.wait()
        try:
            with transaction(ledger) as session:
                results.append(gates.answer(session, gate_id, approver=["U0SPONSOR1", "U0TECHLEAD", "U0VENDLEAD"][n % 3],
                                            outcome=Outcome.GO, reason="", via=Via.SLACK,
                                            delivery_id=f"click-{n % 6}"))
        except GateClosed as exc:
            results.append(exc)

    threads = [threading.Thread(target=click, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    decided = [r for r in results if isinstance(r, gates.Answered) and r.decided is not None]
    assert len(results) == 12 and len(decided) == 1
    with transaction(ledger) as session:
        assert len(gates.decisions(session, gate_id)) == 1
        events = session.scalars(select(AuditEventRow).where(AuditEventRow.kind == AuditKind.GATE_DECIDED)).all()
    assert len(events) == 1


def test_a_click_on_an_engagement_not_yet_decoded_decodes_only_its_gates_policy(
        ledger: sessionmaker[Session], acme: Engagement) -> None:
    """The answer is checked against the stored file's gate policy, decoded alone (the whole file is
    most of a click's CPU when the process has not seen the engagement yet); refusals are the same."""
    gate_id = open_gate_on_friday(ledger, acme)
    engagements.DECODED.clear()
    ballots.POLICIES.clear()
    with transaction(ledger) as session, pytest.raises(PolicyError, match="not an approver"):
        gates.answer(session, gate_id, approver="U0OUTSIDER", outcome=Outcome.GO, reason="", via=Via.SLACK)
    with transaction(ledger) as session:
        first = gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="", via=Via.SLACK)
        digest = engagements.get(session, acme.id).config_digest
    assert first.recorded and first.decided is None
    assert digest not in engagements.DECODED
    assert ballots.POLICIES[(digest, Phase.POC)] == acme.phases.poc.gate
    with transaction(ledger) as session:
        assert gates.answer(session, gate_id, approver="U0VENDLEAD", outcome=Outcome.GO, reason="",
                            via=Via.SLACK).decided is Outcome.GO


def test_extension_past_the_maximum_is_refused(ledger: sessionmaker[Session], acme: Engagement) -> None:
    """acme's PoC: 8 planned weeks, extensions of 2, at most 12: two extensions fit, a third does not."""
    gate_id = open_gate_on_friday(ledger, acme)
    with transaction(ledger) as session:
        assert phases.extend(session, acme, Phase.POC, after=1, reason="r", today=acme.start_date)[1] is True
        assert phases.extend(session, acme, Phase.POC, after=1, reason="r", today=acme.start_date)[1] is False
        phases.extend(session, acme, Phase.POC, after=2, reason="r", today=acme.start_date)
        assert phases.weeks_used(session, acme.id, Phase.POC) == 12
    with transaction(ledger) as session, pytest.raises(PolicyError, match="past its maximum of 12"):
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.EXTEND, reason="more time",
                     via=Via.CLI)


def test_not_yet_past_the_handover_maximum_is_refused_like_extend(ledger: sessionmaker[Session],
                                                                     acme: Engagement) -> None:
    """NOT YET extends supervised operation just as EXTEND extends a phase, so the same maximum
    refuses it when answered, instead of the flow failing later when it opens the next timebox."""
    capped = with_changes(acme, phases__handover__max_weeks=5)  # planned 5: no extension fits
    with transaction(ledger) as session:
        engagements.register(session, capped)
        phases.start_phase(session, capped, Phase.HANDOVER, requested_by="U0PMACME01", flow_run_id=None,
                           today=dt.date(2026, 11, 27))
        gate_id = gates.open_gate(session, empty_snapshot(capped.id, Phase.HANDOVER), requested_by="U0PMACME01",
                                  flow_run_id=None, channel=capped.slack_channel).id
    with transaction(ledger) as session, pytest.raises(PolicyError, match="past its maximum of 5"):
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.NOT_YET, reason="drill failed",
                     via=Via.CLI)
    with transaction(ledger) as session:
        assert gates.decisions(session, gate_id) == []


def test_state_changes_outside_the_tables_raise(ledger: sessionmaker[Session], acme: Engagement) -> None:
    """The transition tables are checked with a raise, so the checks hold under `python -O` too."""
    gate_id = open_gate_on_friday(ledger, acme)
    with transaction(ledger) as session:
        gates.settle(session, gates.by_id(session, gate_id), Outcome.GO)
    with transaction(ledger) as session, pytest.raises(InvalidTransition, match="is decided and cannot become decided"):
        gates.settle(session, gates.by_id(session, gate_id), Outcome.NO_GO)
    with transaction(ledger) as session:
        assert engagements.close(session, acme.id, EngagementState.COMPLETED, "accepted") is True
        assert engagements.close(session, acme.id, EngagementState.COMPLETED, "accepted") is False  # a re-run
    with transaction(ledger) as session, pytest.raises(InvalidTransition, match="is completed and cannot become closed"):
        engagements.close(session, acme.id, EngagementState.CLOSED, "too late")
    with transaction(ledger) as session, pytest.raises(PolicyError, match="is completed and cannot become active"):
        phases.start_phase(session, acme, Phase.DEVELOPMENT, requested_by="U0PMACME01", flow_run_id=None,
                           today=dt.date(2026, 11, 27))
    with transaction(ledger) as session:
        row = engagements.get(session, acme.id)
        assert (row.state, row.closed_reason) == (EngagementState.COMPLETED, "accepted")


def test_only_an_active_engagement_can_end() -> None:
    assert not EngagementState.REGISTERED.can_become(EngagementState.CLOSED)
    assert EngagementState.ACTIVE.can_become(EngagementState.ACTIVE)  # the next phase starts
    assert [s for s in EngagementState if s.ended] == [EngagementState.CLOSED, EngagementState.COMPLETED,
                                                       EngagementState.CANCELLED]
    assert EngagementState.REGISTERED.can_become(EngagementState.CANCELLED)  # `engagement cancel` before a start


def test_an_extension_adds_its_weeks_to_the_end_of_the_current_timebox(ledger: sessionmaker[Session],
                                                                      acme: Engagement) -> None:
    """An early review shortened the PoC, then EXTEND: the new timebox used to start on the day of
    the answer, so the weeks left in the first one were lost and two early reviews used up the
    12-week maximum after a week or two of calendar time."""
    start = acme.start_date
    with transaction(ledger) as session:
        engagements.register(session, acme)
        phases.start_phase(session, acme, Phase.POC, requested_by="U0PMACME01", flow_run_id=None, today=start)
        assert phases.current_timebox(session, acme.id, Phase.POC).ends_on == start + dt.timedelta(weeks=8)
        second, _ = phases.extend(session, acme, Phase.POC, after=1, reason="early review: more data", today=acme.start_date)
        third, _ = phases.extend(session, acme, Phase.POC, after=2, reason="another early review", today=acme.start_date)
        assert second.ends_on == start + dt.timedelta(weeks=10)
        assert third.ends_on == start + dt.timedelta(weeks=12)  # the maximum, in calendar time too
        assert phases.weeks_used(session, acme.id, Phase.POC) == 12


def test_a_running_engagements_file_is_frozen(ledger: sessionmaker[Session], acme: Engagement) -> None:
    open_gate_on_friday(ledger, acme)
    changed = with_changes(acme, name="ACME churn, now with upsell")
    with transaction(ledger) as session, pytest.raises(PolicyError, match="can no longer change"):
        engagements.register(session, changed)


def test_datetimes_come_back_aware_utc(rt: Runtime, acme: Engagement) -> None:
    register(rt, acme)
    with transaction(rt.sessions) as session:
        created = engagements.get(session, acme.id).created_at
    assert created.tzinfo is not None and created.utcoffset() == dt.timedelta(0)


# Every bounded ledger column a value from the engagement file lands in, with the schema field.
BOUNDED: list[tuple[Any, type[BaseModel], str]] = [
    (EngagementRow.id, Engagement, "id"),
    (EngagementRow.name, Engagement, "name"),
    (PhaseRunRow.requested_by, Engagement, "pm_slack_user"),
    (GateRow.channel, Engagement, "slack_channel"),
    (DecisionRow.approver, Approver, "slack_user"),
    (DecisionRow.role, Approver, "role"),
    (MilestoneLinkRow.milestone, Milestone, "key"),
    (MilestoneLinkRow.issue_key, Milestone, "jira_issue"),
    (MetricSubmissionRow.metric, Metric, "name"),
]


@pytest.mark.parametrize(("column", "model", "field"), BOUNDED, ids=[f"{m.__name__}.{f}" for _, m, f in BOUNDED])
def test_the_schema_limits_every_bounded_column_it_feeds(column: Any, model: type[BaseModel], field: str) -> None:
    """A value the schema accepts must fit its column; PostgreSQL refuses longer ones, SQLite never does."""
    limits = [m.max_length for m in model.model_fields[field].metadata if hasattr(m, "max_length")]
    assert limits == [column.property.columns[0].type.length]


def test_values_at_the_schema_limits_are_stored(ledger: sessionmaker[Session], acme: Engagement) -> None:
    """Characters, not bytes: a 200-character name of two-byte letters fits varchar(200) on PostgreSQL."""
    poc_approvers = [a.model_dump(mode="json") for a in acme.phases.poc.gate.approvers]
    poc_approvers[0]["role"] = "é" * 64
    long = with_changes(acme, name="é" * 200, phases__poc__gate__approvers=poc_approvers)
    gate_id = open_gate(ledger, long, today=dt.date(2026, 11, 27))
    with transaction(ledger) as session:
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="", via=Via.SLACK)
    with transaction(ledger) as session:
        assert engagements.get(session, acme.id).name == "é" * 200
        assert [d.role for d in gates.decisions(session, gate_id)] == ["é" * 64]

"""The ledger on SQLite and PostgreSQL: migrations match the models, answers become decisions
exactly once, even when many arrive at the same moment, and nothing is ever edited."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from helpers import open_gate, register, with_changes
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from configs.schema import Engagement, Phase
from phasegate.errors import GateClosed, PolicyError
from phasegate.ledger import engagements, gates
from phasegate.ledger.db import make_engine, transaction
from phasegate.ledger.models import AuditEventRow, Base
from phasegate.runtime import Runtime
from phasegate.states import AuditKind, Channel, GateState, Outcome


def open_gate_on_friday(ledger: sessionmaker[Session], engagement: Engagement) -> int:
    return open_gate(ledger, engagement, today=dt.date(2026, 11, 27))


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
                             channel=Channel.SLACK, delivery_id="d1")
    with transaction(ledger) as session:
        again = gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="",
                             channel=Channel.SLACK, delivery_id="d1")
    with transaction(ledger) as session:
        second_side = gates.answer(session, gate_id, approver="U0VENDLEAD", outcome=Outcome.GO, reason="",
                                   channel=Channel.CLI)
    assert (first.recorded, first.decided) == (True, None)
    assert (again.recorded, again.decided) == (False, None)
    assert (second_side.recorded, second_side.decided) == (True, Outcome.GO)
    with transaction(ledger) as session:
        gate = gates.by_id(session, gate_id)
        assert gate.state is GateState.DECIDED and gate.outcome is Outcome.GO and gate.decided_at is not None
        assert [d.channel for d in gates.decisions(session, gate_id)] == [Channel.SLACK, Channel.CLI]
        kinds = [e.kind for e in session.scalars(select(AuditEventRow).order_by(AuditEventRow.id))]
    assert kinds[-3:] == [AuditKind.DECISION_RECORDED, AuditKind.DECISION_RECORDED, AuditKind.GATE_DECIDED]
    with transaction(ledger) as session, pytest.raises(GateClosed, match="already decided: GO"):
        gates.answer(session, gate_id, approver="U0TECHLEAD", outcome=Outcome.NO_GO, reason="late",
                     channel=Channel.SLACK)


def test_a_changed_mind_is_a_new_decision(ledger: sessionmaker[Session], acme: Engagement) -> None:
    gate_id = open_gate_on_friday(ledger, acme)
    for outcome, reason in [(Outcome.NO_GO, "data is not ready"), (Outcome.GO, "")]:
        with transaction(ledger) as session:
            gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=outcome, reason=reason,
                         channel=Channel.SLACK)
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
                                            outcome=Outcome.GO, reason="", channel=Channel.SLACK,
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


def test_extension_past_the_maximum_is_refused(ledger: sessionmaker[Session], acme: Engagement) -> None:
    """acme's PoC: 8 planned weeks, extensions of 2, at most 12: two extensions fit, a third does not."""
    gate_id = open_gate_on_friday(ledger, acme)
    today = dt.date(2026, 11, 27)
    with transaction(ledger) as session:
        assert engagements.extend(session, acme, Phase.POC, after=1, reason="r", today=today)[1] is True
        assert engagements.extend(session, acme, Phase.POC, after=1, reason="r", today=today)[1] is False
        engagements.extend(session, acme, Phase.POC, after=2, reason="r", today=today)
        assert engagements.weeks_used(session, acme.id, Phase.POC) == 12
    with transaction(ledger) as session, pytest.raises(PolicyError, match="past its maximum of 12"):
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.EXTEND, reason="more time",
                     channel=Channel.CLI)


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

"""A group of clicks reads once for all of them and writes each statement once (issue 23;
phasegate.ledger.groups, phasegate.ledger.gates.prefetch): its gates are locked and read with their
answers, chain heads, policies and evidence at the start, every answer is then decided from that
memo, and the decisions, events, head moves and marks are sent together before the COMMIT. What is
recorded must be exactly what the same answers recorded one by one would be: the quorum counted
across the group's own answers, a redelivery inside the group recognised, the chain unbroken, and
any other statement in between (an attestation, a read) seeing what was deferred and ending the memo.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from helpers import wait_until
from sqlalchemy import Column, Engine, Integer, MetaData, Table, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from test_burst import prompts

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import GateClosed, PolicyError
from phasegate.ledger import audit, ballots, engagements, gates, groups
from phasegate.ledger.db import group, transaction
from phasegate.ledger.followups import TABLE as FOLLOW_UPS
from phasegate.ledger.models import DecisionRow, GateRow
from phasegate.ledger.verify import verify
from phasegate.states import AuditKind, GateState, Outcome, Via

CLIENT, VENDOR = "U0SPONSOR1", "U0VENDLEAD"
Hint = tuple[int, str]


def open_gates(ledger: sessionmaker[Session], acme: Engagement, count: int) -> list[int]:
    return [gate_id for gate_id, _, _ in prompts(ledger, None, acme, count)]


def click(ledger: sessionmaker[Session], gate_id: int, user: str, said: list[str],
          delivery: str | None = None) -> tuple[Hint, Callable[[], None]]:
    """A GO click as the endpoint records it, with the hint its group reads ahead by."""
    delivery = delivery or f"memo-{gate_id}-{user}"

    def handler() -> None:
        try:
            with transaction(ledger) as session:
                result = gates.answer(session, gate_id, approver=user, outcome=Outcome.GO, reason="", via=Via.SLACK,
                                      delivery_id=delivery)
        except (GateClosed, PolicyError) as exc:
            said.append(f"refused {gate_id} {user}: {exc}")
            return
        said.append(f"{'recorded' if result.recorded else 'repeat'} {gate_id} {user}"
                    f"{' decided ' + result.decided.value if result.decided else ''}")

    return (gate_id, delivery), handler


def statements(engine: Engine) -> tuple[list[str], Callable[[], None]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen, lambda: event.remove(engine, "before_cursor_execute", count)


def in_one_group(ledger: sessionmaker[Session], clicks: list[tuple[Hint, Callable[[], None]]], *,
                 hinted: bool = True) -> None:
    hints = [hint for hint, _ in clicks] if hinted else []
    with group(ledger, lambda conn: gates.prefetch(conn, hints)):
        for _, handler in clicks:
            handler()


def config_digest(ledger: sessionmaker[Session], gate_id: int) -> str:
    with transaction(ledger, write=False) as session:
        return engagements.get(session, session.get_one(GateRow, gate_id).engagement_id).config_digest


def decisions(ledger: sessionmaker[Session], gate_ids: list[int]) -> list[tuple[int, str]]:
    with transaction(ledger, write=False) as session:
        return sorted(session.execute(select(DecisionRow.gate_id, DecisionRow.approver)
                                      .where(DecisionRow.gate_id.in_(gate_ids))).tuples())


def test_a_group_reads_once_and_records_what_one_by_one_would(ledger: sessionmaker[Session], ledger_engine: Engine,
                                                              acme: Engagement) -> None:
    gate_ids = open_gates(ledger, acme, 20)
    hinted, alone = gate_ids[:10], gate_ids[10:]
    said: list[str] = []

    def burst(ids: list[int]) -> list[tuple[Hint, Callable[[], None]]]:
        clicks = [click(ledger, g, CLIENT, said) for g in ids] + [click(ledger, g, VENDOR, said) for g in ids]
        clicks.append(click(ledger, ids[0], CLIENT, said))  # a redelivery of the first, inside the group
        clicks.append(click(ledger, ids[1], "U0NOTASKED", said))  # not an approver: refused, nothing written
        clicks.append(click(ledger, ids[2], CLIENT, said, delivery="memo-late"))  # after the quorum: closed
        return clicks

    engagements.DECODED.clear()  # the group reads each gate's policy alone (ballots.GATE_POLICY), not the file
    ballots.POLICIES.clear()
    seen, stop = statements(ledger_engine)
    try:
        in_one_group(ledger, burst(hinted))
        grouped, seen[:] = list(seen), []
        assert ballots.POLICIES[(config_digest(ledger, hinted[0]), Phase.POC)] == acme.phases.poc.gate
        in_one_group(ledger, burst(alone), hinted=False)  # the same clicks, each reading for itself
    finally:
        stop()
    for ids in (hinted, alone):
        assert decisions(ledger, ids) == sorted([(g, CLIENT) for g in ids] + [(g, VENDOR) for g in ids])
    assert said.count(f"repeat {hinted[0]} {CLIENT}") == 1 and said.count(f"repeat {alone[0]} {CLIENT}") == 1
    assert sum(line.startswith("refused ") and "U0NOTASKED" in line for line in said) == 2, said
    assert sum(line.startswith(f"refused {hinted[2]} ") and "already decided" in line for line in said) == 1
    assert sum(" decided go" in line for line in said) == 20
    with transaction(ledger, write=False) as session:
        assert {g.state for g in session.scalars(select(GateRow).where(GateRow.id.in_(gate_ids)))} == {GateState.DECIDED}
        marks = session.execute(select(FOLLOW_UPS.c.target, FOLLOW_UPS.c.wake, FOLLOW_UPS.c.tell)).tuples().all()
        reports = verify(session)
    assert sorted(marks) == sorted((g, True, VENDOR) for g in gate_ids)  # one mark a prompt, its wake kept
    assert reports and all(report.intact for report in reports), [r.problems for r in reports if not r.intact]
    # 23 clicks: a few statements for the whole group (its reads, the gates' policies among them, one per
    # kind of write; on SQLite perhaps its busy timeout set again), not several a click
    assert len(grouped) <= 17, grouped
    assert len(seen) >= 100, len(seen)  # 161 on PostgreSQL, 182 on SQLite (16 for the group on SQLite, 15 on PostgreSQL, whose BEGIN sends its own)


def test_any_other_statement_sees_what_was_deferred_and_ends_the_memo(ledger: sessionmaker[Session],
                                                                      acme: Engagement) -> None:
    """An attestation on the same chain between two of the group's answers: it reads the head the first
    answer left (sent before it), and the second answer reads the head the attestation left."""
    gate_id = open_gates(ledger, acme, 1)[0]
    said: list[str] = []
    first, second = click(ledger, gate_id, CLIENT, said), click(ledger, gate_id, VENDOR, said)
    read: list[int] = []

    def another() -> None:
        with transaction(ledger) as session:
            read.append(len(session.scalars(select(DecisionRow).where(DecisionRow.gate_id == gate_id)).all()))
            audit.record(session, "burst-0000", AuditKind.ATTESTATION_RECORDED, "burst-0000/poc", milestone="m1")

    with group(ledger, lambda conn: gates.prefetch(conn, [first[0], second[0]])):
        first[1]()
        another()
        second[1]()
    assert read == [1]  # the first answer, deferred, was sent before the other statement ran
    assert said == [f"recorded {gate_id} {CLIENT}", f"recorded {gate_id} {VENDOR} decided go"]
    with transaction(ledger, write=False) as session:
        report = verify(session, "burst-0000")[0]
    assert report.intact, report.problems
    kinds = [row[0] for row in _events(ledger, "burst-0000")][-4:]
    assert kinds == ["decision_recorded", "attestation_recorded", "decision_recorded", "gate_decided"]


def _events(ledger: sessionmaker[Session], engagement_id: str) -> list[tuple[str]]:
    with transaction(ledger, write=False) as session:
        return list(session.execute(text("SELECT kind FROM audit_events WHERE engagement_id = :e ORDER BY seq"),
                                    {"e": engagement_id}).tuples())


def test_a_group_that_waited_for_anothers_locks_counts_its_answers(ledger: sessionmaker[Session], ledger_url: str,
                                                                   ledger_engine: Engine, acme: Engagement) -> None:
    """Two replicas' groups on one gate: the second's read waits for the first's lock and must then read
    the answer the first committed (READ COMMITTED: the answers are read by a statement begun after the
    lock was granted), so the second answer decides the gate."""
    if not ledger_url.startswith("postgresql"):
        pytest.skip("a SQLite group takes the whole file at BEGIN: no two groups read at once")
    gate_id = open_gates(ledger, acme, 1)[0]
    said: list[str] = []
    first, second = click(ledger, gate_id, CLIENT, said), click(ledger, gate_id, VENDOR, said)
    holding = threading.Event()
    release = threading.Event()

    def replica() -> None:
        with group(ledger, lambda conn: gates.prefetch(conn, [first[0]])):
            first[1]()
            holding.set()
            assert release.wait(10)

    other = threading.Thread(target=replica)
    other.start()
    assert holding.wait(10)

    def waiter() -> bool:  # a session of this test's database waits for a lock: the second group's read
        with ledger_engine.connect() as conn:
            return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                          "AND datname = current_database()")).scalar_one())

    def release_when_waited_for() -> None:
        wait_until(waiter, timeout=10, what="the second group to wait for the first's locks")
        release.set()

    threading.Thread(target=release_when_waited_for, daemon=True).start()
    in_one_group(ledger, [second])
    other.join(10)
    assert said == [f"recorded {gate_id} {CLIENT}", f"recorded {gate_id} {VENDOR} decided go"]


def test_a_write_the_database_refuses_in_a_pipeline_raises_sqlalchemys_error(ledger_engine: Engine) -> None:
    """On PostgreSQL a group's deferred writes go as one pipeline, whose failures psycopg reports as it
    ends: they must still reach the group as SQLAlchemy's errors (a spoiled group, faults.busy), and the
    connection be usable after the rollback."""
    table = Table("pipeline_probe", MetaData(), Column("id", Integer, primary_key=True))
    table.create(ledger_engine, checkfirst=True)
    try:
        with ledger_engine.connect() as conn:
            with pytest.raises(IntegrityError) as raised, groups.pipelined(conn):
                conn.execute(table.insert(), [{"id": 1}, {"id": 2}])
                conn.execute(table.insert(), [{"id": 3}, {"id": 1}])
            assert getattr(raised.value.orig, "sqlstate", "23505") == "23505"
            conn.rollback()
            with groups.pipelined(conn):
                conn.execute(table.insert(), [{"id": 1}, {"id": 2}])
            conn.commit()
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 2
    finally:
        table.drop(ledger_engine)

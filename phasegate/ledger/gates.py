"""Gates and decisions in the ledger, under the gate policy.

`answer` is the one place an answer becomes a decision, whether it came from Slack, the CLI or
the Prefect UI: the gate row is locked, the policy checked, the answer inserted, and the quorum
counted, all in one short transaction written through Core (phasegate.ledger.ballots); `check` is
the one check of an answer, run by `answer` and by a click's pre-check alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from phasegate.configs.gate_schema import GatePolicy
from phasegate.configs.schema import Approver, Engagement, Phase
from phasegate.errors import GateClosed, InternalError, NotFound
from phasegate.ledger import audit, ballots, chain, followups, groups
from phasegate.ledger import held as held_ahead
from phasegate.ledger.models import DecisionRow, GateRow, SnapshotRow, utcnow
from phasegate.ledger.phases import check_extension
from phasegate.rules import policy
from phasegate.rules.evidence import Snapshot
from phasegate.states import AuditKind, EngagementState, GateState, Outcome, Prompt, Via


@dataclass(frozen=True)
class Answered:
    gate: ballots.Gate  # as the answer left it (decided when `decided` is set)
    recorded: bool  # False: a repeat (double click, redelivery) that changed nothing
    decided: Outcome | None  # set when this answer completed the quorum


AnyGate = GateRow | ballots.Gate  # an ORM row, or the columns a click's transaction reads


def current(session: Session, engagement_id: str, phase: Phase, timebox: int) -> GateRow | None:
    return session.scalar(select(GateRow).where(GateRow.engagement_id == engagement_id, GateRow.phase == phase,
                                                GateRow.timebox == timebox)
                          .order_by(GateRow.revision.desc()).limit(1))


def by_id(session: Session, gate_id: int, *, lock: bool = False) -> GateRow:
    query = select(GateRow).where(GateRow.id == gate_id)
    gate = session.scalar(query.with_for_update() if lock else query)
    if gate is None:
        raise NotFound(f"no gate {gate_id}")
    return gate


def open_gate(session: Session, snapshot: Snapshot, *, requested_by: str, flow_run_id: str | None,
              channel: str, revision: int = 1, because: str = "") -> GateRow:
    digest = snapshot.digest()
    frozen = SnapshotRow(engagement_id=snapshot.engagement_id, phase=snapshot.phase, digest=digest,
                         body=snapshot.canonical())
    session.add(frozen)
    session.flush()
    gate = GateRow(engagement_id=snapshot.engagement_id, phase=snapshot.phase, timebox=snapshot.timebox,
                   revision=revision, snapshot_id=frozen.id, digest=digest, requested_by=requested_by,
                   flow_run_id=flow_run_id, channel=channel, reopened_because=because)
    session.add(gate)
    session.flush()
    audit.record(session, snapshot.engagement_id, AuditKind.EVIDENCE_FROZEN, gate.name, covers=frozen, digest=digest)
    audit.record(session, snapshot.engagement_id, AuditKind.GATE_OPENED, gate.name, covers=gate, gate_id=gate.id,
                 revision=revision, digest=digest, because=because)
    return gate


# Frozen evidence by (snapshot row, evidence digest): the rows are append-only and the digest is a
# SHA-256 of the content, so an entry can never name other evidence, even across ledgers. A click's
# pre-check, its answer and the prompt's re-render read the same snapshot; it is decoded once per
# process. Cleared when full. Callers must not change what they get (the same object is shared).
SNAPSHOTS: dict[tuple[int, str], Snapshot] = {}
SNAPSHOTS_MAX = 2048
SNAPSHOT_BODY = select(SnapshotRow.body).where(SnapshotRow.id == bindparam("id"))


def snapshot_of(session: Session, gate: AnyGate) -> Snapshot:
    key = (gate.snapshot_id, gate.digest)
    snapshot = SNAPSHOTS.get(key)
    if snapshot is None:
        body = session.connection().execute(SNAPSHOT_BODY, {"id": gate.snapshot_id}).scalar()  # Core: no ORM round
        if body is None:
            raise InternalError(f"{gate.name} revision {gate.revision} has no frozen evidence snapshot")
        snapshot = _keep(gate, body)
    return snapshot


SNAPSHOT_BODIES = select(SnapshotRow.id, SnapshotRow.body).where(SnapshotRow.id.in_(bindparam("ids", expanding=True)))


def prefetch(conn: Connection, wanted: Sequence[tuple[int, str | None]]) -> None:
    """What a group of answers, each (gate id, delivery id), reads: once for all of them
    (phasegate.ledger.held), with the frozen evidence their checks read that this process
    has not decoded yet. A group's own reads (phasegate.ledger.groups): `answer` then reads nothing."""
    held_ahead.prefetch(conn, wanted)
    memo = groups.memo(conn)
    held: held_ahead.Held | None = memo.get(ballots.HELD) if memo else None
    if held is None:
        return
    missing = {b.gate.snapshot_id: b.gate for b in held.ballots.values() if (b.gate.snapshot_id, b.gate.digest) not in SNAPSHOTS}
    if missing:
        for snapshot_id, body in conn.execute(SNAPSHOT_BODIES, {"ids": sorted(missing)}).tuples():
            _keep(missing[snapshot_id], body)


def _keep(gate: AnyGate, body: Any) -> Snapshot:
    snapshot = Snapshot.model_validate(body)
    if len(SNAPSHOTS) >= SNAPSHOTS_MAX:
        SNAPSHOTS.clear()
    SNAPSHOTS[(gate.snapshot_id, gate.digest)] = snapshot
    return snapshot


def decisions(session: Session, gate_id: int) -> list[DecisionRow]:
    return list(session.scalars(select(DecisionRow).where(DecisionRow.gate_id == gate_id).order_by(DecisionRow.id)))


def latest_answers(rows: list[DecisionRow]) -> dict[str, DecisionRow]:
    latest: dict[str, DecisionRow] = {}
    for row in rows:
        latest[row.approver] = row
    return latest


def ballot(session: Session, gate_id: int, *, lock: bool = False) -> ballots.Ballot:
    """The gate revision and its engagement's standing in one query (`lock`: the gate row held
    until the transaction ends); NotFound if there is no such gate."""
    return ballots.read(session.connection(), gate_id, lock=lock)


def check(session: Session, ballot: ballots.Ballot, *, via: Via, approver: str, outcome: Outcome, reason: str,
          engagement: Engagement | None = None) -> tuple[GatePolicy, Approver]:
    """The gate's policy and the approver's entry if the gate would take this answer now;
    GateClosed or PolicyError if not. The one check of an answer, whichever way it comes: `answer`
    runs it under the gate's lock, a click's pre-check before asking for a reason. Only the gate's
    policy is decoded from the stored file unless the answer extends the timebox."""
    gate = ballot.gate
    if ballot.state is EngagementState.CANCELLED:
        raise GateClosed(f"{gate.engagement_id} was cancelled ({ballot.closed_reason}); it takes no more answers")
    if gate.state is not GateState.OPEN:
        raise closed(session, gate)
    rules = engagement.phases.of(gate.phase).gate if engagement else ballots.policy(session.connection(), ballot)
    entry = policy.check_answer(rules, gate.phase, via=via, approver=approver,
                                requested_by=gate.requested_by, outcome=outcome, reason=reason,
                                unmet=snapshot_of(session, gate).unmet if outcome.passes else ())
    if outcome.extends_timebox:
        check_extension(session, engagement or ballots.config(session.connection(), ballot), gate.phase)
    return rules, entry


def answer(session: Session, gate_id: int, *, approver: str, outcome: Outcome, reason: str, via: Via,
           delivery_id: str | None = None, engagement: Engagement | None = None,
           operator: str | None = None) -> Answered:
    """Record one approver's answer; GateClosed if the revision is no longer open, PolicyError if refused.
    `operator` is the user@host that ran a CLI command, kept beside the Slack id it claimed.

    One short Core transaction, the same for every way an answer arrives: the gate row read and
    locked with its engagement's standing (one query by primary key), the answers so far and any
    earlier delivery of this one read (one query; on PostgreSQL the first also locks the chain head and
    draws the decision's id: phasegate.ledger.ballots.for_answer), the policy checked, the decision inserted and,
    when the quorum is met, the gate settled; every hash that does not depend on the chain is
    computed before its head is locked, and the events are linked and inserted under one lock of it.
    """
    conn = session.connection()
    locked = ballots.for_answer(conn, gate_id, delivery_id)
    read, answered = locked.ballot, locked.answers
    gate = read.gate
    if delivery_id is not None and any(row.delivery_id == delivery_id for row in answered):
        return Answered(gate, recorded=False, decided=None)  # a redelivery of an answer already recorded
    rules, entry = check(session, read, via=via, approver=approver, outcome=outcome, reason=reason,
                         engagement=engagement)
    latest = {row.approver: row for row in answered if row.gate_id == gate.id}  # oldest first: the last one stays
    reason = reason.strip()
    mine = latest.get(approver)
    if mine is not None and mine.outcome is outcome and mine.reason == reason:
        return Answered(gate, recorded=False, decided=None)
    now = utcnow()
    decision: dict[str, Any] = {"gate_id": gate.id, "outcome": outcome, "approver": approver,
                                "side": entry.side.value, "role": entry.role, "reason": reason, "digest": gate.digest,
                                "channel": via, "delivery_id": delivery_id, "operator": operator, "created_at": now}
    decision["id"] = ballots.insert(conn, decision, locked.decision_id)
    links = [chain.Link(AuditKind.DECISION_RECORDED, gate.name,
                        {"gate_id": gate.id, "approver": approver, "outcome": outcome.value, "reason": reason,
                         "digest": gate.digest, "channel": via.value,  # the payload key predates the name `via`
                         "operator": operator},
                        seal=("decisions", decision["id"], chain.row_hash("decisions", decision)))]
    decided = policy.reached(rules,
                             {user: row.outcome for user, row in latest.items()} | {approver: outcome})
    if decided is not None:
        gate, settled = ballots.settle(conn, gate, decided, now)
        links.append(settled)
    followups.answered(session, Prompt.GATE, gate.id, decided=decided is not None, approver=approver, via=via)
    head = chain.extend(session, gate.engagement_id, links, head=locked.head)  # last: the head is held until commit
    if locked.held is not None:  # read from its group's memo: the next answer of the group reads it there
        locked.held.recorded(ballots.Answer(gate.id, approver, outcome, reason, delivery_id), gate, head)
    return Answered(gate, recorded=True, decided=decided)


def settle(session: Session, gate: GateRow, outcome: Outcome) -> None:
    """Decide the revision without an answer (a timeout's outcome): in the ledger, its chain, and on `gate`."""
    session.flush()  # what the caller changed on the row before
    decided, link = ballots.settle(session.connection(), ballot(session, gate.id, lock=True).gate, outcome, utcnow())
    chain.extend(session, gate.engagement_id, [link])
    for key in ("state", "outcome", "decided_at"):  # what was just written, not a change still to flush
        set_committed_value(gate, key, getattr(decided, key))


def mark_stale(session: Session, gate: GateRow, fresh: Snapshot, reasons: list[str]) -> GateRow:
    """The approval no longer holds: the revision becomes stale and the gate reopens as the next one."""
    gate.state.check_can_become(GateState.STALE, f"{gate.name} revision {gate.revision}")
    gate.state = GateState.STALE
    because = "; ".join(reasons)
    audit.record(session, gate.engagement_id, AuditKind.GATE_STALE, gate.name, covers=gate, gate_id=gate.id,
                 because=because)
    return open_gate(session, fresh, requested_by=gate.requested_by, flow_run_id=gate.flow_run_id,
                     channel=gate.channel, revision=gate.revision + 1, because=because)


def closed(session: Session, gate: AnyGate) -> GateClosed:
    """The refusal of an answer to a revision that takes none any more, naming who decided it."""
    if gate.state is GateState.STALE:
        return GateClosed(f"{gate.name} revision {gate.revision} is stale; answer the reopened gate instead")
    latest = {row.approver: row.outcome for row in ballots.answers(session.connection(), gate.id, None)}
    winners = [approver for approver, outcome in latest.items() if outcome is gate.outcome]
    who = ", ".join(f"<@{approver}>" for approver in winners) or "timeout"
    if gate.outcome is None:
        raise InternalError(f"{gate.name} revision {gate.revision} is decided without an outcome")
    return GateClosed(f"{gate.name} was already decided: {gate.outcome.label} by {who}", mentions=winners)


def open_gates(session: Session, engagement_id: str | None = None) -> list[GateRow]:
    query = select(GateRow).where(GateRow.state == GateState.OPEN).order_by(GateRow.id)
    if engagement_id is not None:
        query = query.where(GateRow.engagement_id == engagement_id)
    return list(session.scalars(query))


def all_gates(session: Session, engagement_id: str | None = None) -> list[GateRow]:
    query = select(GateRow).order_by(GateRow.id)
    if engagement_id is not None:
        query = query.where(GateRow.engagement_id == engagement_id)
    return list(session.scalars(query))

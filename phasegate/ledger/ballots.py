"""What an answer to a gate is decided against, read and written through Core.

A click's transaction reads the gate revision and its engagement's standing in one query (both by
primary key; on PostgreSQL the gate row locked, on SQLite the whole file is the writer's already),
and the answers so far in one more (by the indexed gate id, or the unique delivery id of a
redelivery). The statements are built once per process: a click builds none. A group of clicks
(phasegate.ledger.groups) reads all of this once for all of them (`prefetch`), and each answer is then
decided from the group's memo without a statement of its own.

`Gate` holds exactly the columns a gate's seal hashes (phasegate.ledger.seals.SEALED), so when an
answer decides the gate the seal of the row it leaves is computed from what was read and what was
written, without reading the row back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from phasegate.configs import checks
from phasegate.configs.gate_schema import GatePolicy
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import NotFound
from phasegate.ledger import chain, engagements, groups, seals
from phasegate.ledger.models import Base
from phasegate.states import AuditKind, EngagementState, GateState, Outcome

GATES, DECISIONS, ENGAGEMENTS = (Base.metadata.tables[name] for name in ("gates", "decisions", "engagements"))


@dataclass(frozen=True)
class Gate:
    """One gate revision as an answer reads it: the columns its seal hashes."""

    id: int
    engagement_id: str
    phase: Phase
    timebox: int
    revision: int
    state: GateState
    snapshot_id: int
    digest: str
    requested_by: str
    outcome: Outcome | None
    decided_at: dt.datetime | None

    @property
    def name(self) -> str:
        return f"{self.engagement_id}/{self.phase.gate}"


@dataclass(frozen=True)
class Ballot:
    """A gate revision with its engagement's standing: what the policy checks an answer against."""

    gate: Gate
    state: EngagementState
    closed_reason: str | None
    config_digest: str


@dataclass(frozen=True)
class Answer:
    """An answer recorded before, as the quorum counts it and a redelivery is recognised by."""

    gate_id: int
    approver: str
    outcome: Outcome
    reason: str
    delivery_id: str | None


FIELDS = [field.name for field in dataclasses.fields(Gate)]
if tuple(FIELDS) != seals.SEALED["gates"]:  # a column sealed but not read would be hashed as None
    raise RuntimeError("ballots.Gate must hold exactly the gate columns seals.SEALED hashes")
_BALLOT = (select(*(GATES.c[name] for name in FIELDS), ENGAGEMENTS.c.state.label("engagement_state"),
                  ENGAGEMENTS.c.closed_reason, ENGAGEMENTS.c.config_digest)
           .join_from(GATES, ENGAGEMENTS, GATES.c.engagement_id == ENGAGEMENTS.c.id))
READ = _BALLOT.where(GATES.c.id == bindparam("gate_id"))
READ_LOCKED = READ.with_for_update(of=GATES)  # SQLite renders no FOR UPDATE: BEGIN IMMEDIATE took the file
ANSWERS = (select(DECISIONS.c.gate_id, DECISIONS.c.approver, DECISIONS.c.outcome, DECISIONS.c.reason,
                  DECISIONS.c.delivery_id)
           .where(or_(DECISIONS.c.gate_id == bindparam("gate_id"), DECISIONS.c.delivery_id == bindparam("delivery_id")))
           .order_by(DECISIONS.c.id))  # delivery_id = NULL matches no row: without one, the gate's answers only
INSERT = DECISIONS.insert().returning(DECISIONS.c.id)
INSERT_WITH_ID = DECISIONS.insert().inline()  # its id drawn before: nothing to read back
SETTLE = update(GATES).where(GATES.c.id == bindparam("gate_id"))
CONFIG = select(ENGAGEMENTS.c.config).where(ENGAGEMENTS.c.id == bindparam("engagement_id"))
CONFIGS = select(ENGAGEMENTS.c.id, ENGAGEMENTS.c.config).where(
    ENGAGEMENTS.c.id.in_(bindparam("engagement_ids", expanding=True)))


def read(conn: Connection, gate_id: int, *, lock: bool = False) -> Ballot:
    """The gate revision and its engagement's standing, in one query; NotFound if there is no such gate."""
    row = conn.execute(READ_LOCKED if lock else READ, {"gate_id": gate_id}).first()
    if row is None:
        raise NotFound(f"no gate {gate_id}")
    return _ballot(row)


def _ballot(row: Any) -> Ballot:
    return Ballot(Gate(**{name: row._mapping[name] for name in FIELDS}), row.engagement_state, row.closed_reason,
                  row.config_digest)


def config(conn: Connection, ballot: Ballot) -> Engagement:
    """The engagement file the answer is checked against: decoded once per process by its digest."""
    known = engagements.DECODED.get(ballot.config_digest)
    if known is not None:
        return known
    stored: dict[str, Any] = conn.execute(CONFIG, {"engagement_id": ballot.gate.engagement_id}).scalar_one()
    return engagements.decoded(ballot.config_digest, stored)


# Gate policies by (config digest, phase): what an answer is checked against, decoded alone from the
# stored file (a small part of it) when the whole file has not been decoded in this process. A click
# on an engagement this process has not seen yet decodes its gate's policy, not the whole file.
POLICIES: dict[tuple[str, Phase], GatePolicy] = {}
POLICIES_MAX = 4096


def policy(conn: Connection, ballot: Ballot) -> GatePolicy:
    """The gate policy of the ballot's phase in the engagement file the answer is checked against."""
    known = engagements.DECODED.get(ballot.config_digest)
    if known is not None:
        return known.phases.of(ballot.gate.phase).gate
    found = POLICIES.get((ballot.config_digest, ballot.gate.phase))
    if found is None:
        stored: dict[str, Any] = conn.execute(CONFIG, {"engagement_id": ballot.gate.engagement_id}).scalar_one()
        found = _policy_of(ballot, stored)
        if found is None:  # not the file's phase: the whole file says so, as it always has
            return config(conn, ballot).phases.of(ballot.gate.phase).gate
    return found


def _policy_of(ballot: Ballot, stored: dict[str, Any]) -> GatePolicy | None:
    """The ballot's gate policy decoded from its stored engagement file, and kept; None if the file has
    no such phase."""
    phase = (stored.get("phases") or {}).get(ballot.gate.phase.value)
    if not isinstance(phase, dict):
        return None
    found = GatePolicy.model_validate(phase.get("gate"), context=checks.STORED)  # checked when stored
    if len(POLICIES) >= POLICIES_MAX:
        POLICIES.clear()
    POLICIES[(ballot.config_digest, ballot.gate.phase)] = found
    return found


@dataclass
class Held:
    """What a group's answers are decided against, read once for all of them under the locks they are
    recorded under (`prefetch`), and kept as each recorded answer leaves it."""

    ballots: dict[int, Ballot]  # by gate id: the gates whose chain heads are held too
    answers: dict[int, list[Answer]]  # by gate id, oldest first
    asked: frozenset[str]  # the delivery ids the group carries: an earlier delivery of each is in `deliveries`
    deliveries: dict[str, Answer]
    heads: dict[str, tuple[int, str]]  # by engagement id: (seq, hash)
    ids: list[int] = field(default_factory=list)  # decision ids drawn for the group, given out in turn


@dataclass(frozen=True)
class Locked:
    """What an answer is decided and recorded against, read under the locks it is recorded under."""

    ballot: Ballot
    answers: list[Answer]
    head: tuple[int, str] | None  # the engagement's chain head (seq, hash), locked; None: to be locked
    decision_id: int | None  # the id the decision will have; None: given by its INSERT
    held: Held | None = None  # the group's, when read from it: to be told what the answer left


HELD = "ballots"  # the group memo's entry (phasegate.ledger.groups)


def prefetch(conn: Connection, wanted: Sequence[tuple[int, str | None]]) -> None:
    """For a group of answers, each (gate id, delivery id): their gates locked in the order of their
    ids with their chain heads, then their answers and the earlier deliveries of theirs, read once for
    all of them into the group's memo, with a decision id for each drawn. Three statements for the
    group, instead of two to three for each answer; `for_answer` then reads nothing."""
    memo = groups.memo(conn)
    if memo is None or not wanted:
        return
    ids = sorted({gate_id for gate_id, _ in wanted})
    if conn.dialect.name == "postgresql":
        rows = conn.execute(HOLD_PG, {"gate_ids": ids}).all()
        heads = {row.engagement_id: (int(row.head_seq), str(row.head_hash)) for row in rows}
        drawn = list(conn.execute(DRAW, {"n": len(wanted)}).scalars())
    else:  # the group's BEGIN IMMEDIATE holds the file: nothing else writes until it commits
        rows = conn.execute(HOLD, {"gate_ids": ids}).all()
        heads = {row.engagement_id: (int(row.seq), str(row.hash)) for row in conn.execute(
            HEADS_OF, {"engagement_ids": sorted({row.engagement_id for row in rows})})}
        first = int(conn.execute(NEXT_ID).scalar_one())
        drawn = list(range(first, first + len(wanted)))
    held = Held({row.id: _ballot(row) for row in rows if row.engagement_id in heads}, {},
                frozenset(d for _, d in wanted if d is not None), {}, heads, drawn)
    for row in conn.execute(ANSWERS_OF, {"gate_ids": list(held.ballots), "deliveries": sorted(held.asked)}):
        answer = Answer(**row._asdict())
        held.answers.setdefault(answer.gate_id, []).append(answer)
        if answer.delivery_id is not None:
            held.deliveries[answer.delivery_id] = answer
    unknown = {b.gate.engagement_id for b in held.ballots.values()
               if b.config_digest not in engagements.DECODED and (b.config_digest, b.gate.phase) not in POLICIES}
    if unknown:  # the policies a check would read one engagement at a time: read for all at once
        stored: dict[str, dict[str, Any]] = dict(conn.execute(CONFIGS, {"engagement_ids": sorted(unknown)}).tuples().all())
        for ballot in held.ballots.values():
            if ballot.gate.engagement_id in unknown:
                _policy_of(ballot, stored[ballot.gate.engagement_id])
    memo[HELD] = held


def _from_memo(conn: Connection, gate_id: int, delivery_id: str | None) -> Locked | None:
    memo = groups.memo(conn)
    held: Held | None = memo.get(HELD) if memo else None
    if held is None or gate_id not in held.ballots or not held.ids or (
            delivery_id is not None and delivery_id not in held.asked):
        return None
    ballot = held.ballots[gate_id]
    answers = list(held.answers.get(gate_id, ()))
    earlier = held.deliveries.get(delivery_id) if delivery_id is not None else None
    if earlier is not None and earlier.gate_id != gate_id:
        answers.append(earlier)
    return Locked(ballot, answers, held.heads[ballot.gate.engagement_id], held.ids.pop(0), held)


def recorded(locked: Locked, answer: Answer, gate: Gate, head: tuple[int, str]) -> None:
    """What an answer read from the group's memo left: the next answer of the group reads it there."""
    held = locked.held
    if held is None:
        return
    held.answers.setdefault(gate.id, []).append(answer)
    if answer.delivery_id is not None:
        held.deliveries[answer.delivery_id] = answer
    held.ballots[gate.id] = dataclasses.replace(held.ballots[gate.id], gate=gate)
    held.heads[gate.engagement_id] = head


def for_answer(conn: Connection, gate_id: int, delivery_id: str | None) -> Locked:
    """The ballot (its gate row locked), then its answers and any earlier delivery of this one; from
    the group's memo when it holds them (`prefetch`). On
    PostgreSQL the first statement also locks the engagement's chain head (after the gate row, as every
    answer does) and draws the decision's id: the head is not read again (one statement fewer per
    answer) and the decision's INSERT reads nothing back. The answers are read by a statement of their
    own, begun once the gate's lock is held: under READ COMMITTED a statement that waited for the lock
    would still read the answers as they were when it began (an answer committed meanwhile by another
    replica would be left out of the quorum)."""
    known = _from_memo(conn, gate_id, delivery_id)
    if known is not None:
        return known
    row = conn.execute(READ_FOR_ANSWER, {"gate_id": gate_id}).first() if conn.dialect.name == "postgresql" else None
    if row is None:  # SQLite; or no gate, or a gate whose chain has no head yet: the general way says which
        ballot, head, drawn = read(conn, gate_id, lock=True), None, None
    else:
        ballot, head, drawn = _ballot(row), (int(row.head_seq), str(row.head_hash)), int(row.decision_id)
    return Locked(ballot, answers(conn, ballot.gate.id, delivery_id), head, drawn)


# PostgreSQL's: READ_LOCKED with the engagement's chain head (locked too) and the next decision id.
READ_FOR_ANSWER = (READ.add_columns(chain.HEADS.c.seq.label("head_seq"), chain.HEADS.c.hash.label("head_hash"),
                                    func.nextval(func.pg_get_serial_sequence("decisions", "id")).label("decision_id"))
                   .join(chain.HEADS, chain.HEADS.c.engagement_id == GATES.c.engagement_id)
                   .with_for_update(of=[GATES, chain.HEADS]))


# A group's (prefetch): its gates with their engagements' chain heads, locked in the order of the gate ids.
HOLD = _BALLOT.where(GATES.c.id.in_(bindparam("gate_ids", expanding=True))).order_by(GATES.c.id)
HOLD_PG = (HOLD.add_columns(chain.HEADS.c.seq.label("head_seq"), chain.HEADS.c.hash.label("head_hash"))
           .join(chain.HEADS, chain.HEADS.c.engagement_id == GATES.c.engagement_id)
           .with_for_update(of=[GATES, chain.HEADS]))
HEADS_OF = select(chain.HEADS).where(chain.HEADS.c.engagement_id.in_(bindparam("engagement_ids", expanding=True)))
DRAW = select(func.nextval(func.pg_get_serial_sequence("decisions", "id"))).select_from(
    func.generate_series(1, bindparam("n")))
NEXT_ID = select(func.coalesce(func.max(DECISIONS.c.id), 0) + 1)
ANSWERS_OF = (select(DECISIONS.c.gate_id, DECISIONS.c.approver, DECISIONS.c.outcome, DECISIONS.c.reason,
                     DECISIONS.c.delivery_id)
              .where(or_(DECISIONS.c.gate_id.in_(bindparam("gate_ids", expanding=True)),
                         DECISIONS.c.delivery_id.in_(bindparam("deliveries", expanding=True))))
              .order_by(DECISIONS.c.id))


def answers(conn: Connection, gate_id: int, delivery_id: str | None) -> list[Answer]:
    """The gate's answers, oldest first, and any answer recorded under `delivery_id` (at any gate)."""
    return [Answer(**row._asdict()) for row in conn.execute(ANSWERS, {"gate_id": gate_id, "delivery_id": delivery_id})]


def insert(conn: Connection, decision: dict[str, Any], drawn: int | None = None) -> int:
    """The decision row inserted; its id (`drawn` before, when given: nothing read back, and the
    INSERT deferred inside a group, phasegate.ledger.groups)."""
    if drawn is not None:
        groups.defer(conn, INSERT_WITH_ID, decision | {"id": drawn})
        return drawn
    return int(conn.execute(INSERT, decision).scalar_one())


def settle(conn: Connection, gate: Gate, outcome: Outcome, now: dt.datetime) -> tuple[Gate, chain.Link]:
    """The revision decided: the gate as it now stands and the event that says so and seals it."""
    gate.state.check_can_become(GateState.DECIDED, f"{gate.name} revision {gate.revision}")
    decided = dataclasses.replace(gate, state=GateState.DECIDED, outcome=outcome, decided_at=now)
    groups.defer(conn, SETTLE, {"gate_id": gate.id, "state": decided.state, "outcome": outcome, "decided_at": now})
    return decided, seals.link_of(AuditKind.GATE_DECIDED, gate.name,
                                  {"gate_id": gate.id, "outcome": outcome.value, "digest": gate.digest},
                                  "gates", dataclasses.asdict(decided))

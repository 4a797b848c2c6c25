"""What an answer to a gate is decided against, read and written through Core.

A click's transaction reads the gate revision and its engagement's standing in one query (both by
primary key; on PostgreSQL the gate row locked, on SQLite the whole file is the writer's already),
and the answers so far in one more (by the indexed gate id, or the unique delivery id of a
redelivery). The statements are built once per process: a click builds none. A group of clicks
(phasegate.ledger.groups) reads all of this once for all of them (phasegate.ledger.held), and each answer is then
decided from the group's memo without a statement of its own.

`Gate` holds exactly the columns a gate's seal hashes (phasegate.ledger.seals.SEALED), so when an
answer decides the gate the seal of the row it leaves is computed from what was read and what was
written, without reading the row back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import JSON, Connection, Select, bindparam, func, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

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
# A ballot's columns: READ takes one gate's by id, a group's read-ahead many (phasegate.ledger.held).
BALLOTS = (select(*(GATES.c[name] for name in FIELDS), ENGAGEMENTS.c.state.label("engagement_state"),
                  ENGAGEMENTS.c.closed_reason, ENGAGEMENTS.c.config_digest)
           .join_from(GATES, ENGAGEMENTS, GATES.c.engagement_id == ENGAGEMENTS.c.id))
READ = BALLOTS.where(GATES.c.id == bindparam("gate_id"))
READ_LOCKED = READ.with_for_update(of=GATES)  # SQLite renders no FOR UPDATE: BEGIN IMMEDIATE took the file
ANSWER_COLUMNS = select(DECISIONS.c.gate_id, DECISIONS.c.approver, DECISIONS.c.outcome, DECISIONS.c.reason,
                        DECISIONS.c.delivery_id).order_by(DECISIONS.c.id)  # an Answer's, oldest first
ANSWERS = ANSWER_COLUMNS.where(  # delivery_id = NULL matches no row: without one, the gate's answers only
    or_(DECISIONS.c.gate_id == bindparam("gate_id"), DECISIONS.c.delivery_id == bindparam("delivery_id")))
INSERT = DECISIONS.insert().returning(DECISIONS.c.id)
INSERT_WITH_ID = DECISIONS.insert().inline()  # its id drawn before: nothing to read back
SETTLE = update(GATES).where(GATES.c.id == bindparam("gate_id"))
CONFIG = select(ENGAGEMENTS.c.config).where(ENGAGEMENTS.c.id == bindparam("engagement_id"))


class StoredGatePolicy(FunctionElement[Any]):
    """`stored_gate_policy(config, phase)`: the gate policy of a phase in a stored engagement file, taken
    out by the database in one pass over the file, so that the process decodes one gate's policy
    instead of the whole file (many times its size)."""

    type = JSON()
    inherit_cache = True
    name = "stored_gate_policy"


@compiles(StoredGatePolicy, "postgresql")
def _stored_gate_policy_pg(element: StoredGatePolicy, compiler: Any, **kw: Any) -> str:
    config, phase = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"json_extract_path({config}, 'phases', {phase}, 'gate')"


@compiles(StoredGatePolicy)
def _stored_gate_policy(element: StoredGatePolicy, compiler: Any, **kw: Any) -> str:  # SQLite's JSON1
    config, phase = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"json_extract({config}, '$.phases.' || {phase} || '.gate')"


GATE_POLICY = StoredGatePolicy(ENGAGEMENTS.c.config, GATES.c.phase)  # of a BALLOTS row's gate
POLICY_OF = BALLOTS.with_only_columns(GATE_POLICY).where(GATES.c.id == bindparam("gate_id"))


def read(conn: Connection, gate_id: int, *, lock: bool = False) -> Ballot:
    """The gate revision and its engagement's standing, in one query; NotFound if there is no such gate."""
    row = conn.execute(READ_LOCKED if lock else READ, {"gate_id": gate_id}).first()
    if row is None:
        raise NotFound(f"no gate {gate_id}")
    return ballot_of(row)


def ballot_of(row: Any) -> Ballot:
    """The ballot in a row of BALLOTS' columns."""
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
        stored: object = conn.execute(POLICY_OF, {"gate_id": ballot.gate.id}).scalar_one()
        found = policy_of(ballot, stored)
        if found is None:  # no such gate in the file: the whole file says why, as it always has
            return config(conn, ballot).phases.of(ballot.gate.phase).gate
    return found


def policy_of(ballot: Ballot, stored: object) -> GatePolicy | None:
    """The ballot's gate policy decoded from its stored form (GATE_POLICY), and kept; None if the
    engagement file has none for the ballot's phase."""
    if stored is None:
        return None
    found = GatePolicy.model_validate(stored, context=checks.STORED)  # checked when stored
    if len(POLICIES) >= POLICIES_MAX:
        POLICIES.clear()
    POLICIES[(ballot.config_digest, ballot.gate.phase)] = found
    return found


@dataclass(frozen=True)
class Locked:
    """What an answer is decided and recorded against, read under the locks it is recorded under."""

    ballot: Ballot
    answers: list[Answer]
    head: tuple[int, str] | None  # the engagement's chain head (seq, hash), locked; None: to be locked
    decision_id: int | None  # the id the decision will have; None: given by its INSERT
    held: Ahead | None = None  # the group's memo entry, when read from it: told what the answer left


HELD = "ballots"  # the group memo's entry: what the group read ahead (phasegate.ledger.held)


class Ahead(Protocol):
    """A group's memo entry (phasegate.ledger.held.Held)."""

    def take(self, gate_id: int, delivery_id: str | None) -> Locked | None: ...

    def recorded(self, answer: Answer, gate: Gate, head: tuple[int, str]) -> None: ...


def for_answer(conn: Connection, gate_id: int, delivery_id: str | None) -> Locked:
    """The ballot (its gate row locked), then its answers and any earlier delivery of this one; from
    the group's memo when it holds them (phasegate.ledger.held). On PostgreSQL the first statement
    also locks the engagement's chain head (after the gate row, as every answer does) and draws the
    decision's id: the head is not read again (one statement fewer per answer) and the decision's
    INSERT reads nothing back. The answers are read by a statement of their
    own, begun once the gate's lock is held: under READ COMMITTED a statement that waited for the lock
    would still read the answers as they were when it began (an answer committed meanwhile by another
    replica would be left out of the quorum)."""
    memo = groups.memo(conn)
    held: Ahead | None = memo.get(HELD) if memo else None
    if held is not None and (known := held.take(gate_id, delivery_id)) is not None:
        return known
    row = conn.execute(READ_FOR_ANSWER, {"gate_id": gate_id}).first() if conn.dialect.name == "postgresql" else None
    if row is None:  # SQLite; or no gate, or a gate whose chain has no head yet: the general way says which
        ballot, head, drawn = read(conn, gate_id, lock=True), None, None
    else:
        ballot, head, drawn = ballot_of(row), (int(row.head_seq), str(row.head_hash)), int(row.decision_id)
    return Locked(ballot, answers(conn, ballot.gate.id, delivery_id), head, drawn)


def with_head(query: Select[Any]) -> Select[Any]:
    """PostgreSQL's: a query of BALLOTS' columns with each gate's chain head (head_seq, head_hash),
    the gate rows and their heads locked."""
    return (query.add_columns(chain.HEADS.c.seq.label("head_seq"), chain.HEADS.c.hash.label("head_hash"))
            .join(chain.HEADS, chain.HEADS.c.engagement_id == GATES.c.engagement_id)
            .with_for_update(of=[GATES, chain.HEADS]))


# PostgreSQL's: READ_LOCKED with the engagement's chain head (locked too) and the next decision id.
READ_FOR_ANSWER = with_head(READ).add_columns(
    func.nextval(func.pg_get_serial_sequence("decisions", "id")).label("decision_id"))


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
                                  "gates", vars(decided))  # its columns as they are (asdict deep-copies each)

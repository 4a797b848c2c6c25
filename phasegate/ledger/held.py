"""What a group of answers is decided against, read once for all of them (issue 23).

A group of clicks (phasegate.ledger.groups) reads at its start, under the locks its answers are
recorded under, what each answer would read for itself (phasegate.ledger.ballots.for_answer): its
gates (locked in the order of their ids on PostgreSQL, with their engagements' chain heads), the
answers so far and any earlier delivery of each click, a decision id for each, and the gate policies
this process has not decoded yet. Every answer of the group is then decided from that memo, which
each recorded answer brings up to date (the next click on the same gate counts it in its quorum,
and the next event on the same chain links to it). Any other statement on the group's connection
ends the memo (phasegate.ledger.groups), and the answers after it read for themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, func, or_, select

from phasegate.ledger import chain, engagements, groups
from phasegate.ledger.ballots import (
    ANSWER_COLUMNS,
    BALLOTS,
    DECISIONS,
    GATE_POLICY,
    GATES,
    HELD,
    POLICIES,
    Answer,
    Ballot,
    Gate,
    Locked,
    ballot_of,
    policy_of,
    with_head,
)

# Its gates with their engagements' chain heads, locked in the order of the gate ids.
HOLD = BALLOTS.where(GATES.c.id.in_(bindparam("gate_ids", expanding=True))).order_by(GATES.c.id)
HOLD_PG = with_head(HOLD)
HEADS_OF = select(chain.HEADS).where(chain.HEADS.c.engagement_id.in_(bindparam("engagement_ids", expanding=True)))
DRAW = select(func.nextval(func.pg_get_serial_sequence("decisions", "id"))).select_from(
    func.generate_series(1, bindparam("n")))
NEXT_ID = select(func.coalesce(func.max(DECISIONS.c.id), 0) + 1)
ANSWERS_OF = ANSWER_COLUMNS.where(or_(DECISIONS.c.gate_id.in_(bindparam("gate_ids", expanding=True)),
                                     DECISIONS.c.delivery_id.in_(bindparam("deliveries", expanding=True))))
POLICIES_OF = BALLOTS.with_only_columns(GATES.c.id, GATE_POLICY).where(GATES.c.id.in_(bindparam("gate_ids", expanding=True)))


@dataclass
class Held:
    """The group's memo entry: read by `prefetch`, kept as each recorded answer leaves it."""

    ballots: dict[int, Ballot]  # by gate id: the gates whose chain heads are held too
    answers: dict[int, list[Answer]]  # by gate id, oldest first
    asked: frozenset[str]  # the delivery ids the group carries: an earlier delivery of each is in `deliveries`
    deliveries: dict[str, Answer]
    heads: dict[str, tuple[int, str]]  # by engagement id: (seq, hash)
    ids: list[int] = field(default_factory=list)  # decision ids drawn for the group, given out in turn

    def take(self, gate_id: int, delivery_id: str | None) -> Locked | None:
        """What `for_answer` would read for this answer; None if the memo does not hold all of it."""
        if gate_id not in self.ballots or not self.ids or (delivery_id is not None and delivery_id not in self.asked):
            return None
        ballot = self.ballots[gate_id]
        answers = list(self.answers.get(gate_id, ()))
        earlier = self.deliveries.get(delivery_id) if delivery_id is not None else None
        if earlier is not None and earlier.gate_id != gate_id:
            answers.append(earlier)
        return Locked(ballot, answers, self.heads[ballot.gate.engagement_id], self.ids.pop(0), self)

    def recorded(self, answer: Answer, gate: Gate, head: tuple[int, str]) -> None:
        """An answer taken from the memo was recorded: the gate, its answers and its chain as it left them."""
        self.answers.setdefault(gate.id, []).append(answer)
        if answer.delivery_id is not None:
            self.deliveries[answer.delivery_id] = answer
        self.ballots[gate.id] = dataclasses.replace(self.ballots[gate.id], gate=gate)
        self.heads[gate.engagement_id] = head


def prefetch(conn: Connection, wanted: Sequence[tuple[int, str | None]]) -> None:
    """For a group of answers, each (gate id, delivery id), on the group's connection: its memo entry,
    in three statements for the whole group (four on SQLite; one more when a policy is not decoded yet)
    instead of two or more for each answer. A gate whose chain has no head yet is left out: its answer
    reads for itself."""
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
    held = Held({row.id: ballot_of(row) for row in rows if row.engagement_id in heads}, {},
                frozenset(d for _, d in wanted if d is not None), {}, heads, drawn)
    # begun after the locks above were granted: under READ COMMITTED it sees what their holders committed
    for row in conn.execute(ANSWERS_OF, {"gate_ids": list(held.ballots), "deliveries": sorted(held.asked)}):
        answer = Answer(**row._asdict())
        held.answers.setdefault(answer.gate_id, []).append(answer)
        if answer.delivery_id is not None:
            held.deliveries[answer.delivery_id] = answer
    unknown = {b.gate.id: b for b in held.ballots.values()
               if b.config_digest not in engagements.DECODED and (b.config_digest, b.gate.phase) not in POLICIES}
    if unknown:  # the policies a check would read one gate at a time
        for gate_id, stored in conn.execute(POLICIES_OF, {"gate_ids": sorted(unknown)}).tuples():
            policy_of(unknown[gate_id], stored)
    memo[HELD] = held

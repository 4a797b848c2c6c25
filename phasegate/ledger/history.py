"""An engagement's history as plain records, read from the ledger for the exports
(phasegate.reports.audit and phasegate.reports.change_log render them):

- `decision_history`: each gate revision with its evidence digest, whether that digest still matches
  the frozen evidence, and every answer given at it; and whether the audit chain verifies.
  Decisions are read by database column name, as `audit verify` reads them.
- `change_log`: every change request, as filed and as decided (R-CR-5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Phase
from phasegate.ledger import change_requests, engagements, gates
from phasegate.ledger.chain import plain
from phasegate.ledger.models import Base, GateRow
from phasegate.ledger.verify import ChainReport, evidence_mismatch, verify_one
from phasegate.states import ChangeRequestState, ChangeSource, GateState, Outcome


@dataclass(frozen=True)
class Answer:
    when: dt.datetime
    approver: str
    side: str
    role: str
    outcome: Outcome
    reason: str
    channel: str  # how the answer came in: slack, cli, ui


@dataclass(frozen=True)
class GateRecord:
    """One gate revision, as the ledger holds it."""

    id: int
    phase: Phase
    timebox: int
    revision: int
    state: GateState
    outcome: Outcome | None
    opened_at: dt.datetime
    decided_at: dt.datetime | None
    digest: str
    reopened_because: str

    @classmethod
    def of(cls, gate: GateRow) -> GateRecord:
        return cls(id=gate.id, phase=gate.phase, timebox=gate.timebox, revision=gate.revision, state=gate.state,
                   outcome=gate.outcome, opened_at=gate.opened_at, decided_at=gate.decided_at, digest=gate.digest,
                   reopened_because=gate.reopened_because)


@dataclass
class GateHistory:
    gate: GateRecord
    evidence_warning: str | None  # why the digest no longer matches the frozen evidence; None if it does
    answers: list[Answer] = field(default_factory=list)


@dataclass
class History:
    engagement_id: str
    name: str
    chain: ChainReport
    gates: list[GateHistory]


def decision_history(session: Session, engagement_id: str) -> History:
    row = engagements.get(session, engagement_id)
    decisions = Base.metadata.tables["decisions"]
    found = []
    for gate in gates.all_gates(session, engagement_id):
        entry = GateHistory(GateRecord.of(gate), evidence_mismatch(session, gate))
        for d in session.execute(select(decisions).where(decisions.c.gate_id == gate.id)
                                 .order_by(decisions.c.id)).mappings():
            entry.answers.append(Answer(when=d["created_at"], approver=d["approver"], side=d["side"], role=d["role"],
                                        outcome=Outcome(d["outcome"]), reason=d["reason"],
                                        channel=str(plain(d["channel"]))))
        found.append(entry)
    return History(row.id, row.name, verify_one(session, engagement_id), found)


@dataclass(frozen=True)
class ChangeLogEntry:
    number: int
    title: str
    phase: Phase
    state: ChangeRequestState
    requested_by: str
    source: ChangeSource
    filed: dt.datetime
    decided: dt.datetime | None
    effort_days: float
    schedule_days: int
    cost: float
    added: tuple[str, ...]
    removed: tuple[str, ...]
    baseline_version: int | None
    reason: str  # why it was closed: the rejection's or the withdrawal's reason
    not_estimated: tuple[str, ...] = ()  # effort_days, schedule_days, cost: figures nobody gave


@dataclass
class ChangeLog:
    engagement_id: str
    name: str
    entries: list[ChangeLogEntry]


def change_log(session: Session, engagement_id: str) -> ChangeLog:
    """Every change request of the engagement, by number. NotFound for an unknown engagement."""
    row = engagements.get(session, engagement_id)
    entries = [ChangeLogEntry(
        number=cr.number, title=cr.title, phase=cr.phase, state=cr.state, requested_by=cr.requested_by,
        source=cr.source, filed=cr.created_at, decided=cr.decided_at, effort_days=cr.effort_days,
        schedule_days=cr.schedule_days, cost=cr.cost, added=tuple(cr.scope_added["items"]),
        removed=tuple(cr.scope_removed["items"]), baseline_version=cr.baseline_version, reason=cr.closed_reason,
        not_estimated=tuple(change_requests.not_estimated(cr)))
        for cr in change_requests.all_for(session, engagement_id)]
    return ChangeLog(row.id, row.name, entries)

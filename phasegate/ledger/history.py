"""An engagement's history as plain records, read from the ledger for the exports
(phasegate.reports.audit and phasegate.reports.change_log render them):

- `decision_history`: for a steering committee, each gate revision with its evidence digest, whether
  that digest still matches the frozen evidence, the exit criteria a GO waived, and every answer given
  at it; every change request with its answers and what it did to the baseline; spend against the
  budget; the names the engagement file gives beside the Slack ids; and whether the audit chain
  verifies. Gate decisions are read by database column name, as `audit verify` reads them.
- `change_log`: every change request, as filed and as decided (R-CR-5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Phase
from phasegate.ledger import change_requests, engagements, gates, spend
from phasegate.ledger.chain import plain
from phasegate.ledger.models import Base, GateRow, SnapshotRow
from phasegate.ledger.verify import ChainReport, evidence_mismatch, verify_one
from phasegate.rules.budget import BudgetStatus
from phasegate.rules.change_requests import Assessment
from phasegate.rules.evidence import Snapshot
from phasegate.rules.policy import is_waiver, outcome_label
from phasegate.states import ChangeRequestState, ChangeSource, GateState, Outcome


@dataclass(frozen=True)
class Answer:
    when: dt.datetime
    approver: str
    side: str
    role: str
    outcome: Outcome
    reason: str  # for a waiver, the waiver's text
    channel: str  # how the answer came in: slack, cli, ui
    waiver: bool = False  # a GO or ACCEPT past unmet exit criteria, `reason` its text
    operator: str | None = None  # user@host who recorded it from the CLI

    @property
    def answer(self) -> str:
        return outcome_label(self.outcome, self.waiver)


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
    unmet: tuple[str, ...] = ()  # the exit criteria the frozen evidence does not pass: what a GO waives

    @property
    def waived(self) -> bool:
        """Decided GO or ACCEPT past unmet exit criteria: a "GO with waiver"."""
        return self.gate.outcome is not None and is_waiver(self.gate.outcome, self.unmet)


@dataclass(frozen=True)
class SpendEntry:
    when: dt.datetime
    phase: Phase
    amount: float
    by: str
    note: str
    operator: str | None


@dataclass
class ChangeRecord:
    """A change request as filed and decided, its assessment against the baseline, and every answer."""

    entry: ChangeLogEntry
    revision: int
    assessment: Assessment | None
    answers: list[Answer] = field(default_factory=list)


@dataclass
class History:
    engagement_id: str
    name: str
    chain: ChainReport
    gates: list[GateHistory]
    changes: list[ChangeRecord] = field(default_factory=list)
    budget: BudgetStatus | None = None
    spend: list[SpendEntry] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # Slack user id -> the name the file gives


def _unmet(session: Session, gate: GateRow) -> tuple[str, ...]:
    """The frozen evidence's unmet exit criteria; none when the snapshot is gone or edited past reading
    (`evidence_warning` says so)."""
    frozen = session.get(SnapshotRow, gate.snapshot_id)
    try:
        return tuple(Snapshot.model_validate(frozen.body).unmet) if frozen is not None else ()
    except ValidationError:
        return ()


def decision_history(session: Session, engagement_id: str) -> History:
    row = engagements.get(session, engagement_id)
    config = engagements.config_of(row)
    decisions = Base.metadata.tables["decisions"]
    found = []
    for gate in gates.all_gates(session, engagement_id):
        entry = GateHistory(GateRecord.of(gate), evidence_mismatch(session, gate), unmet=_unmet(session, gate))
        for d in session.execute(select(decisions).where(decisions.c.gate_id == gate.id)
                                 .order_by(decisions.c.id)).mappings():
            outcome = Outcome(d["outcome"])
            entry.answers.append(Answer(when=d["created_at"], approver=d["approver"], side=d["side"], role=d["role"],
                                        outcome=outcome, reason=d["reason"], channel=str(plain(d["channel"])),
                                        waiver=is_waiver(outcome, entry.unmet, d["reason"]),
                                        operator=d["operator"]))
        found.append(entry)
    spent = [SpendEntry(when=r.created_at, phase=r.phase, amount=r.amount, by=r.recorded_by, note=r.note,
                        operator=r.operator) for r in spend.entries(session, engagement_id)]
    return History(row.id, row.name, verify_one(session, engagement_id), found, changes=_changes(session, engagement_id),
                   budget=spend.status_of(session, engagement_id, engagement=config), spend=spent,
                   names=config.names())


def _changes(session: Session, engagement_id: str) -> list[ChangeRecord]:
    """Every change request by number, with the answers to each of its revisions."""
    found = []
    for cr, entry in zip(change_requests.all_for(session, engagement_id), change_log(session, engagement_id).entries,
                         strict=True):
        answers = [Answer(when=d.created_at, approver=d.approver, side=d.side, role=d.role, outcome=d.outcome,
                          reason=d.reason, channel=d.via.value, operator=d.operator)
                   for d in change_requests.decisions(session, cr.id, every_revision=True)]
        found.append(ChangeRecord(entry, cr.revision, change_requests.assessment_of(cr), answers))
    return found


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

"""Spend in the ledger: recorded per phase by the PM or an approver, and read back as budget lines.

Spend entries are append-only (triggers, as for decisions) and sealed by the audit chain; a
mistaken entry is answered by a note on the next one, never by an edit.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import PolicyError
from phasegate.ledger import audit
from phasegate.ledger.engagements import config_of, get, typed_value
from phasegate.ledger.models import ChangeRequestRow, SpendRow, TimeboxRow
from phasegate.rules import budget
from phasegate.states import AuditKind, ChangeRequestState
from phasegate.text import checked

MAX_AMOUNT = 1e12


def record(session: Session, engagement: Engagement, phase: Phase, raw: str, *, by: str, note: str = "",
           operator: str | None = None) -> SpendRow:
    """Record money spent in `phase`, exactly as typed (a positive, finite decimal). Only the PM or
    an approver of the engagement may, as for hand-typed metrics."""
    approvers = {a.slack_user for p in engagement.phases.present() for a in engagement.phases.of(p).gate.approvers}
    if by != engagement.pm_slack_user and by not in approvers:
        raise PolicyError(f"{by} is neither the PM nor an approver of {engagement.id} and so cannot record spend")
    amount = typed_value(raw)
    if amount <= 0:
        raise PolicyError(f"spend must be a positive amount, not {raw.strip()}")
    if amount > MAX_AMOUNT:
        raise PolicyError(f"{raw.strip()} is implausibly large for spend")
    checked("note", note)
    row = SpendRow(engagement_id=engagement.id, phase=phase, amount=amount, raw_amount=raw, note=note,
                   recorded_by=by, operator=operator)
    session.add(row)
    session.flush()
    audit.record(session, engagement.id, AuditKind.SPEND_RECORDED, phase.value, covers=row, amount=amount,
                 raw=raw, note=note, by=by, operator=operator)
    return row


def entries(session: Session, engagement_id: str) -> list[SpendRow]:
    return list(session.scalars(select(SpendRow).where(SpendRow.engagement_id == engagement_id)
                                .order_by(SpendRow.id)))


def status_of(session: Session, engagement_id: str, *, engagement: Engagement | None = None) -> budget.BudgetStatus:
    """The engagement's budget lines from the ledger: three queries whatever its size."""
    engagement = engagement or config_of(get(session, engagement_id))
    spent: dict[Phase, float] = defaultdict(float)
    for phase, total in session.execute(select(SpendRow.phase, func.sum(SpendRow.amount))
                                        .where(SpendRow.engagement_id == engagement_id).group_by(SpendRow.phase)):
        spent[phase] = float(total or 0.0)
    approved = session.scalar(select(func.sum(ChangeRequestRow.cost)).where(
        ChangeRequestRow.engagement_id == engagement_id, ChangeRequestRow.state == ChangeRequestState.APPROVED))
    boxes = session.scalars(select(TimeboxRow).where(TimeboxRow.engagement_id == engagement_id, TimeboxRow.number > 1)
                            .order_by(TimeboxRow.id))
    extensions = [budget.Extension(phase=b.phase, number=b.number, weeks=b.weeks) for b in boxes]
    return budget.status(engagement, spent=dict(spent), approved_changes=float(approved or 0.0),
                         extensions=extensions)

"""Gates and the approvers' decisions at them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.configs import limits
from phasegate.configs.schema import Phase
from phasegate.ledger.models.base import Base, enum_column, utcnow
from phasegate.states import GateState, Outcome, Via


class GateRow(Base):
    """One revision of one gate. A stale approval reopens the gate as a new revision."""

    __tablename__ = "gates"
    __table_args__ = (UniqueConstraint("engagement_id", "phase", "timebox", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(enum_column(Phase))
    timebox: Mapped[int]
    revision: Mapped[int]
    state: Mapped[GateState] = mapped_column(enum_column(GateState), default=GateState.OPEN)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("evidence_snapshots.id"))
    digest: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    flow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    channel: Mapped[str] = mapped_column(String(limits.SLACK_CHANNEL))
    message_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    outcome: Mapped[Outcome | None] = mapped_column(enum_column(Outcome), default=None)
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reopened_because: Mapped[str] = mapped_column(Text, default="")
    reminders_sent: Mapped[int] = mapped_column(default=0)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    overdue_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    @property
    def name(self) -> str:
        return f"{self.engagement_id}/{self.phase.gate}"


class DecisionRow(Base):
    """One approver's answer at one gate revision. Never updated; a changed mind is a new row."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gate_id: Mapped[int] = mapped_column(ForeignKey("gates.id"), index=True)
    outcome: Mapped[Outcome] = mapped_column(enum_column(Outcome))
    approver: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    side: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(limits.ROLE))
    reason: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(64))
    via: Mapped[Via] = mapped_column("channel", enum_column(Via, name="channel"))  # column named before `via`
    delivery_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    operator: Mapped[str | None] = mapped_column(String(limits.OPERATOR), default=None)  # user@host, CLI only
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

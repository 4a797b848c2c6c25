"""What is recorded about the work a gate judges: evidence snapshots, milestone attestations,
submitted metric values and money spent. Only ever inserted."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.configs import limits
from phasegate.configs.schema import Phase
from phasegate.ledger.models.base import Base, enum_column, utcnow
from phasegate.states import Via


class SnapshotRow(Base):
    __tablename__ = "evidence_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(enum_column(Phase))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AttestationRow(Base):
    __tablename__ = "attestations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(enum_column(Phase))
    milestone: Mapped[str] = mapped_column(String(limits.MILESTONE_KEY))
    attested_by: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    via: Mapped[Via] = mapped_column("channel", enum_column(Via, name="channel"))  # column named before `via`
    note: Mapped[str] = mapped_column(Text, default="")
    operator: Mapped[str | None] = mapped_column(String(limits.OPERATOR), default=None)  # user@host, CLI only
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MetricSubmissionRow(Base):
    __tablename__ = "metric_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    metric: Mapped[str] = mapped_column(String(limits.METRIC_NAME))
    value: Mapped[float]
    raw_value: Mapped[str | None] = mapped_column(String(limits.METRIC_VALUE), default=None)  # as typed
    submitted_by: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    operator: Mapped[str | None] = mapped_column(String(limits.OPERATOR), default=None)  # user@host
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SpendRow(Base):
    """Money spent in one phase, as recorded by the PM or an approver. Never updated; a correction
    is a new entry with a note (a negative correction is not taken: spend is only ever added)."""

    __tablename__ = "spend_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    phase: Mapped[Phase] = mapped_column(enum_column(Phase))
    amount: Mapped[float] = mapped_column(Float)
    raw_amount: Mapped[str] = mapped_column(String(limits.METRIC_VALUE))  # as typed
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    operator: Mapped[str | None] = mapped_column(String(limits.OPERATOR), default=None)  # user@host, CLI only
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

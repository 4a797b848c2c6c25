"""An engagement and its plan: the engagement file, its phase runs and timeboxes, the Jira issues
its milestones are linked to, and its scope baselines."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.configs import limits
from phasegate.configs.schema import Phase
from phasegate.ledger.models.base import Base, enum_column, utcnow
from phasegate.states import EngagementState


class EngagementRow(Base):
    __tablename__ = "engagements"

    id: Mapped[str] = mapped_column(String(limits.ENGAGEMENT_ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(limits.ENGAGEMENT_NAME))
    config: Mapped[dict[str, Any]]
    config_digest: Mapped[str] = mapped_column(String(64))
    state: Mapped[EngagementState] = mapped_column(enum_column(EngagementState), default=EngagementState.REGISTERED)
    current_phase: Mapped[Phase | None] = mapped_column(enum_column(Phase), default=None)
    closed_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PhaseRunRow(Base):
    __tablename__ = "phase_runs"
    __table_args__ = (UniqueConstraint("engagement_id", "phase"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(enum_column(Phase))
    requested_by: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    flow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    kickoff_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    advance_requested: Mapped[bool] = mapped_column(default=False)  # the PM started the next phase
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TimeboxRow(Base):
    __tablename__ = "timeboxes"
    __table_args__ = (UniqueConstraint("engagement_id", "phase", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(enum_column(Phase))
    number: Mapped[int]
    weeks: Mapped[int]
    ends_on: Mapped[dt.date]
    reason: Mapped[str] = mapped_column(Text, default="")
    review_requested: Mapped[bool] = mapped_column(default=False)  # the PM asked for the gate early
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def due(self, today: dt.date) -> bool:
        """Whether the timebox's gate should open: it has ended, or the PM asked for the review."""
        return self.review_requested or today >= self.ends_on


class MilestoneLinkRow(Base):
    __tablename__ = "milestone_links"
    __table_args__ = (UniqueConstraint("engagement_id", "phase", "milestone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(enum_column(Phase))
    milestone: Mapped[str] = mapped_column(String(limits.MILESTONE_KEY))
    issue_key: Mapped[str] = mapped_column(String(limits.ISSUE_KEY))


class BaselineRow(Base):
    __tablename__ = "baselines"
    __table_args__ = (UniqueConstraint("engagement_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    version: Mapped[int]
    scope: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

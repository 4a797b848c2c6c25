"""The status projection: what `phasegate status` shows of an engagement, kept as columns.

A read-side projection, derived from the engagement file and the ledger's rows and rewritten in the
same transaction as the change it reflects (phasegate.ledger.projection). It decides nothing: no
rule, gate or flow reads it, and it can be rebuilt from the ledger at any time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.configs import limits
from phasegate.ledger.models.base import Base, enum_column, utcnow
from phasegate.states import Rag


class EngagementStatusRow(Base):
    __tablename__ = "engagement_status"

    engagement_id: Mapped[str] = mapped_column(String(limits.ENGAGEMENT_ID), ForeignKey("engagements.id"),
                                               primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    phase_started: Mapped[dt.date | None] = mapped_column(default=None)
    planned_weeks: Mapped[int | None] = mapped_column(default=None)
    booked_weeks: Mapped[int] = mapped_column(default=0)
    timebox_ends_on: Mapped[dt.date | None] = mapped_column(default=None)
    over_budget: Mapped[bool] = mapped_column(default=False)
    near_cap: Mapped[bool] = mapped_column(default=False)  # PoC spend past 80 % of its T&M cap
    deletion_deadline: Mapped[dt.date | None] = mapped_column(default=None)  # the file's data_handling
    last_report_week: Mapped[str | None] = mapped_column(String(10), default=None)
    last_report_rag: Mapped[Rag | None] = mapped_column(enum_column(Rag), default=None)
    # Per phase: the gate's approvers in the file's order as [slack_user, name] pairs, its escalation
    # after business days and its reminder hour (who blocks an open gate, and when it is overdue).
    gates: Mapped[dict[str, Any]]
    refreshed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

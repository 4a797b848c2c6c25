"""Weekly reports, as posted: one per engagement, or the portfolio digest, per ISO week."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.ledger.models.base import Base, enum_column, utcnow
from phasegate.states import Rag, ReportKind


class WeeklyReportRow(Base):
    """One weekly report per engagement (or the portfolio digest) per ISO week, e.g. "2026-W33".

    The row is written before posting and `message_ts` right after, so a retried run finds the
    post and does not repeat it. A row without `message_ts` is a week not reported yet: the next
    hourly run posts it. `body` is the report as JSON: next week's trends read it. `due_at` is
    when the week's report was due (None for rows older than migration 0007, and the portfolio).
    """

    __tablename__ = "weekly_reports"
    __table_args__ = (UniqueConstraint("kind", "subject", "week"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[ReportKind] = mapped_column(enum_column(ReportKind))
    subject: Mapped[str] = mapped_column(String(64))  # the engagement id; "" for the portfolio
    week: Mapped[str] = mapped_column(String(10))
    rag: Mapped[Rag] = mapped_column(enum_column(Rag))
    body: Mapped[dict[str, Any]]
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    message_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    chart_path: Mapped[str | None] = mapped_column(Text, default=None)
    chart_file_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    posted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    due_at: Mapped[dt.datetime | None] = mapped_column(default=None)

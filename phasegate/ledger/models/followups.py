"""The work after an answer, queued in the ledger (phasegate.ledger.followups): one row per prompt that
must be redrawn, written in the answer's own transaction and deleted once the refresher has done it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.configs import limits
from phasegate.ledger.models.base import Base, enum_column, utcnow
from phasegate.states import Prompt


class FollowUpRow(Base):
    """A gate's (or change request's) Slack prompt to redraw from the ledger and, with `wake`, its run to
    wake. Not part of the audit trail: it records no decision, only work still to do about one."""

    __tablename__ = "follow_ups"
    __table_args__ = (Index("ix_follow_ups_due_at", "due_at"),)

    prompt: Mapped[Prompt] = mapped_column(enum_column(Prompt), primary_key=True)
    target: Mapped[int] = mapped_column(primary_key=True)  # the gate's or the change request's id
    wake: Mapped[bool] = mapped_column(default=False)  # an answer decided: wake the run too
    tell: Mapped[str | None] = mapped_column(String(limits.SLACK_USER), default=None)  # who decided, in Slack
    seq: Mapped[int] = mapped_column(default=1)  # one more for each mark: done only if none came meanwhile
    marked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # the first mark still pending
    due_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # not tried before (after a failure)
    leased_until: Mapped[dt.datetime | None] = mapped_column(default=None)  # a refresher is on it until then
    tries: Mapped[int] = mapped_column(default=0)
    problem: Mapped[str | None] = mapped_column(Text, default=None)  # the last failure, for operators

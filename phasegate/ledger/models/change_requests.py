"""Change requests and the approvers' decisions on them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.configs import limits
from phasegate.configs.schema import Phase
from phasegate.ledger.models.base import Base, enum_column, utcnow
from phasegate.states import ChangeRequestState, ChangeSource, Outcome, Via


class ChangeRequestRow(Base):
    """One change request. Its fields are as filed; `state`, the assessment, the prompt's ts and the
    outcome describe where it stands, and each change to them is also an audit event."""

    __tablename__ = "change_requests"
    __table_args__ = (UniqueConstraint("engagement_id", "number"), UniqueConstraint("engagement_id", "jira_issue"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    number: Mapped[int]  # CR-1, CR-2, ... per engagement
    title: Mapped[str] = mapped_column(String(200))
    rationale: Mapped[str] = mapped_column(Text, default="")
    phase: Mapped[Phase] = mapped_column(enum_column(Phase))
    requested_by: Mapped[str] = mapped_column(String(64))
    source: Mapped[ChangeSource] = mapped_column(enum_column(ChangeSource))
    operator: Mapped[str | None] = mapped_column(String(limits.OPERATOR), default=None)  # user@host, CLI only
    jira_issue: Mapped[str | None] = mapped_column(String(64), default=None)
    scope_added: Mapped[dict[str, Any]]  # {"items": [...]}: JSON lists as a mapping on every backend
    scope_removed: Mapped[dict[str, Any]]
    effort_days: Mapped[float] = mapped_column(Float, default=0.0)
    schedule_days: Mapped[int] = mapped_column(default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    not_estimated: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # {"items": [field, ...]}
    revision: Mapped[int] = mapped_column(default=1, server_default="1")  # a Jira edit makes a new one
    amendment: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # a whole new engagement file
    base_digest: Mapped[str] = mapped_column(String(64))  # the engagement file it was filed against
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    state: Mapped[ChangeRequestState] = mapped_column(enum_column(ChangeRequestState), default=ChangeRequestState.SUBMITTED)
    delivery_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    channel: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    announced: Mapped[bool] = mapped_column(default=False)
    baseline_version: Mapped[int | None] = mapped_column(default=None)  # the version an approval created
    closed_reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def name(self) -> str:
        return f"{self.engagement_id}/CR-{self.number}"


class ChangeDecisionRow(Base):
    """One approver's answer to one change request. Never updated; a changed mind is a new row."""

    __tablename__ = "change_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    change_request_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id"), index=True)
    outcome: Mapped[Outcome] = mapped_column(enum_column(Outcome))
    approver: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(default=1, server_default="1")  # of the request, as it was answered
    via: Mapped[Via] = mapped_column("channel", enum_column(Via, name="channel"))  # how the answer came in
    delivery_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    operator: Mapped[str | None] = mapped_column(String(limits.OPERATOR), default=None)  # user@host, CLI only
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

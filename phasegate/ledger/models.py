"""Typed SQLAlchemy 2 models of the ledger.

Decisions, evidence snapshots, attestations and audit events are only ever inserted; on decisions,
snapshots and audit events triggers refuse UPDATE and DELETE, and the audit events form one hash
chain per engagement (see phasegate/ledger/chain.py). The few mutable columns (a gate's state and
prompt timestamp, reminder bookkeeping, a chain's head) describe where a process stands, and every
change to them is also written as an audit event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Enum, Float, ForeignKey, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from phasegate.configs import limits
from phasegate.configs.schema import Phase
from phasegate.states import (
    AuditKind,
    ChangeRequestState,
    ChangeSource,
    EngagementState,
    GateState,
    Outcome,
    Rag,
    ReportKind,
    Via,
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _enum(cls: type[Any], name: str | None = None) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class EngagementRow(Base):
    __tablename__ = "engagements"

    id: Mapped[str] = mapped_column(String(limits.ENGAGEMENT_ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(limits.ENGAGEMENT_NAME))
    config: Mapped[dict[str, Any]]
    config_digest: Mapped[str] = mapped_column(String(64))
    state: Mapped[EngagementState] = mapped_column(_enum(EngagementState), default=EngagementState.REGISTERED)
    current_phase: Mapped[Phase | None] = mapped_column(_enum(Phase), default=None)
    closed_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PhaseRunRow(Base):
    __tablename__ = "phase_runs"
    __table_args__ = (UniqueConstraint("engagement_id", "phase"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(_enum(Phase))
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
    phase: Mapped[Phase] = mapped_column(_enum(Phase))
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
    phase: Mapped[Phase] = mapped_column(_enum(Phase))
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


class SnapshotRow(Base):
    __tablename__ = "evidence_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(_enum(Phase))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GateRow(Base):
    """One revision of one gate. A stale approval reopens the gate as a new revision."""

    __tablename__ = "gates"
    __table_args__ = (UniqueConstraint("engagement_id", "phase", "timebox", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(_enum(Phase))
    timebox: Mapped[int]
    revision: Mapped[int]
    state: Mapped[GateState] = mapped_column(_enum(GateState), default=GateState.OPEN)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("evidence_snapshots.id"))
    digest: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    flow_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    channel: Mapped[str] = mapped_column(String(limits.SLACK_CHANNEL))
    message_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome), default=None)
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
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome))
    approver: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    side: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(limits.ROLE))
    reason: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(64))
    via: Mapped[Via] = mapped_column("channel", _enum(Via, name="channel"))  # column named before `via`
    delivery_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    operator: Mapped[str | None] = mapped_column(String(limits.OPERATOR), default=None)  # user@host, CLI only
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AttestationRow(Base):
    __tablename__ = "attestations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"))
    phase: Mapped[Phase] = mapped_column(_enum(Phase))
    milestone: Mapped[str] = mapped_column(String(limits.MILESTONE_KEY))
    attested_by: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    via: Mapped[Via] = mapped_column("channel", _enum(Via, name="channel"))  # column named before `via`
    note: Mapped[str] = mapped_column(Text, default="")
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
    phase: Mapped[Phase] = mapped_column(_enum(Phase))
    amount: Mapped[float] = mapped_column(Float)
    raw_amount: Mapped[str] = mapped_column(String(limits.METRIC_VALUE))  # as typed
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(limits.SLACK_USER))
    operator: Mapped[str | None] = mapped_column(String(limits.OPERATOR), default=None)  # user@host, CLI only
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


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
    phase: Mapped[Phase] = mapped_column(_enum(Phase))
    requested_by: Mapped[str] = mapped_column(String(64))
    source: Mapped[ChangeSource] = mapped_column(_enum(ChangeSource))
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
    state: Mapped[ChangeRequestState] = mapped_column(_enum(ChangeRequestState), default=ChangeRequestState.SUBMITTED)
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
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome))
    approver: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(default=1, server_default="1")  # of the request, as it was answered
    via: Mapped[Via] = mapped_column("channel", _enum(Via, name="channel"))  # how the answer came in
    delivery_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEventRow(Base):
    """One link of an engagement's audit chain. A decision or snapshot is named by row_table/row_id,
    with the SHA-256 of its content in row_hash, by the event written in the same transaction."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("engagement_id", "seq", name="uq_audit_events_seq"),
                      UniqueConstraint("engagement_id", "prev_hash", name="uq_audit_events_prev_hash"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(String(limits.ENGAGEMENT_ID), index=True)
    kind: Mapped[AuditKind] = mapped_column(_enum(AuditKind))
    subject: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    seq: Mapped[int]  # 1, 2, ... within the engagement's chain
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    row_table: Mapped[str | None] = mapped_column(String(32), default=None)
    row_id: Mapped[int | None] = mapped_column(default=None)
    row_hash: Mapped[str | None] = mapped_column(String(64), default=None)


class AuditHeadRow(Base):
    """Where an engagement's audit chain ends. Appends lock this row, one writer per chain at a time,
    and `audit verify` compares it with the last event, so deleting the newest events shows."""

    __tablename__ = "audit_heads"

    engagement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))


class WeeklyReportRow(Base):
    """One weekly report per engagement (or the portfolio digest) per ISO week, e.g. "2026-W33".

    The row is written before posting and `message_ts` right after, so a retried run finds the
    post and does not repeat it. `body` is the report as JSON: next week's trends read it.
    """

    __tablename__ = "weekly_reports"
    __table_args__ = (UniqueConstraint("kind", "subject", "week"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[ReportKind] = mapped_column(_enum(ReportKind))
    subject: Mapped[str] = mapped_column(String(64))  # the engagement id; "" for the portfolio
    week: Mapped[str] = mapped_column(String(10))
    rag: Mapped[Rag] = mapped_column(_enum(Rag))
    body: Mapped[dict[str, Any]]
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    message_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    chart_path: Mapped[str | None] = mapped_column(Text, default=None)
    chart_file_id: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    posted_at: Mapped[dt.datetime | None] = mapped_column(default=None)

"""Core tables for the read commands (`gate list`, `status`): the columns they read, without the ORM.

Importing phasegate.ledger.models loads sqlalchemy.orm and every model; these few Table objects load
neither. They describe the same tables as the models (tests/test_read_commands.py checks that every
column here is the model's, with the same type).
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Date, Integer, MetaData, String, Table

from phasegate.configs.enums import Phase
from phasegate.ledger.types import UTCDateTime, enum_column
from phasegate.states import AuditKind, EngagementState, GateState, Outcome, Rag

metadata = MetaData()

engagements = Table(
    "engagements", metadata,
    Column("id", String, primary_key=True),
    Column("name", String),
    Column("state", enum_column(EngagementState)),
    Column("current_phase", enum_column(Phase)),
)

gates = Table(
    "gates", metadata,
    Column("id", Integer, primary_key=True),
    Column("engagement_id", String),
    Column("phase", enum_column(Phase)),
    Column("timebox", Integer),
    Column("revision", Integer),
    Column("state", enum_column(GateState)),
    Column("digest", String),
    Column("requested_by", String),
    Column("outcome", enum_column(Outcome)),
    Column("opened_at", UTCDateTime()),
    Column("overdue_at", UTCDateTime()),
)

audit_events = Table(
    "audit_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("engagement_id", String),
    Column("kind", enum_column(AuditKind)),
    Column("subject", String),
    Column("payload", JSON),
    Column("seq", Integer),
)

decisions = Table(
    "decisions", metadata,
    Column("id", Integer, primary_key=True),
    Column("gate_id", Integer),
    Column("approver", String),
    Column("outcome", enum_column(Outcome)),
)

engagement_status = Table(
    "engagement_status", metadata,
    Column("engagement_id", String, primary_key=True),
    Column("timezone", String),
    Column("phase_started", Date),
    Column("planned_weeks", Integer),
    Column("booked_weeks", Integer),
    Column("timebox_ends_on", Date),
    Column("over_budget", Boolean),
    Column("near_cap", Boolean),
    Column("deletion_deadline", Date),
    Column("last_report_week", String),
    Column("last_report_rag", enum_column(Rag)),
    Column("gates", JSON),
)

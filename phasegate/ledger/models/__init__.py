"""Typed SQLAlchemy 2 models of the ledger, one module per concern; every table is importable from here.

Decisions, evidence snapshots, attestations and audit events are only ever inserted; on decisions,
snapshots and audit events triggers refuse UPDATE and DELETE, and the audit events form one hash
chain per engagement (see phasegate/ledger/chain.py). The few mutable columns (a gate's state and
prompt timestamp, reminder bookkeeping, a chain's head) describe where a process stands, and every
change to them is also written as an audit event.
"""

from phasegate.ledger.models.audit import AuditEventRow, AuditHeadRow
from phasegate.ledger.models.base import Base, UTCDateTime, utcnow
from phasegate.ledger.models.change_requests import ChangeDecisionRow, ChangeRequestRow
from phasegate.ledger.models.engagements import BaselineRow, EngagementRow, MilestoneLinkRow, PhaseRunRow, TimeboxRow
from phasegate.ledger.models.evidence import AttestationRow, MetricSubmissionRow, SnapshotRow, SpendRow
from phasegate.ledger.models.followups import FollowUpRow
from phasegate.ledger.models.gates import DecisionRow, GateRow
from phasegate.ledger.models.heartbeat import HeartbeatRow
from phasegate.ledger.models.jira import JiraRevisionRow
from phasegate.ledger.models.reports import WeeklyReportRow
from phasegate.ledger.models.status import EngagementStatusRow

__all__ = [
    "AttestationRow", "AuditEventRow", "AuditHeadRow", "Base", "BaselineRow", "ChangeDecisionRow", "ChangeRequestRow",
    "DecisionRow", "EngagementRow", "EngagementStatusRow", "FollowUpRow", "GateRow", "HeartbeatRow", "JiraRevisionRow",
    "MetricSubmissionRow", "MilestoneLinkRow", "PhaseRunRow", "SnapshotRow",
    "SpendRow", "TimeboxRow", "UTCDateTime", "WeeklyReportRow", "utcnow",
]

"""Every state and outcome phasegate records, with the allowed transitions in one place."""

from __future__ import annotations

import enum


class Outcome(str, enum.Enum):
    GO = "go"
    NO_GO = "no_go"
    EXTEND = "extend"
    ACCEPT = "accept"
    NOT_YET = "not_yet"

    @property
    def label(self) -> str:
        return self.value.replace("_", "-").upper().replace("NOT-YET", "NOT YET")

    @property
    def needs_reason(self) -> bool:
        return self in (Outcome.NO_GO, Outcome.EXTEND, Outcome.NOT_YET)

    @property
    def passes(self) -> bool:
        """GO and ACCEPT move the engagement on; the rest keep it or close it."""
        return self in (Outcome.GO, Outcome.ACCEPT)


class Channel(str, enum.Enum):
    SLACK = "slack"
    CLI = "cli"
    PREFECT_UI = "prefect_ui"
    TIMEOUT = "timeout"


class GateState(str, enum.Enum):
    OPEN = "open"
    DECIDED = "decided"
    STALE = "stale"  # decided, then the evidence changed before the next phase started

    def can_become(self, other: GateState) -> bool:
        return other in _GATE_TRANSITIONS[self]


_GATE_TRANSITIONS: dict[GateState, set[GateState]] = {
    GateState.OPEN: {GateState.DECIDED},
    GateState.DECIDED: {GateState.STALE},
    GateState.STALE: set(),
}


class EngagementState(str, enum.Enum):
    REGISTERED = "registered"
    ACTIVE = "active"
    CLOSED = "closed"  # NO-GO: ended with a recorded reason
    COMPLETED = "completed"  # handover accepted


class AuditKind(str, enum.Enum):
    ENGAGEMENT_REGISTERED = "engagement_registered"
    PHASE_STARTED = "phase_started"
    KICKOFF_POSTED = "kickoff_posted"
    MILESTONE_LINKED = "milestone_linked"
    BASELINE_RECORDED = "baseline_recorded"
    TIMEBOX_OPENED = "timebox_opened"
    EVIDENCE_FROZEN = "evidence_frozen"
    GATE_OPENED = "gate_opened"
    DECISION_RECORDED = "decision_recorded"
    GATE_DECIDED = "gate_decided"
    GATE_STALE = "gate_stale"
    GATE_RECHECKED = "gate_rechecked"  # re-checked before the next phase; still-missing evidence named
    ATTESTATION_RECORDED = "attestation_recorded"
    METRIC_SUBMITTED = "metric_submitted"
    REMINDER_SENT = "reminder_sent"
    GATE_ESCALATED = "gate_escalated"
    GATE_OVERDUE = "gate_overdue"
    ENGAGEMENT_CLOSED = "engagement_closed"

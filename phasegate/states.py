"""Every state and outcome phasegate records, with the allowed transitions in one place."""

from __future__ import annotations

import enum

from phasegate.errors import InvalidTransition


class Outcome(str, enum.Enum):
    GO = "go"
    NO_GO = "no_go"
    EXTEND = "extend"
    ACCEPT = "accept"
    NOT_YET = "not_yet"
    APPROVE = "approve"  # a change request's answers
    REJECT = "reject"

    @property
    def label(self) -> str:
        return self.value.replace("_", "-").upper().replace("NOT-YET", "NOT YET")

    @property
    def needs_reason(self) -> bool:
        return self in (Outcome.NO_GO, Outcome.EXTEND, Outcome.NOT_YET, Outcome.REJECT)

    @property
    def passes(self) -> bool:
        """GO and ACCEPT move the engagement on; the rest keep it or close it."""
        return self in (Outcome.GO, Outcome.ACCEPT)

    @property
    def extends_timebox(self) -> bool:
        """EXTEND and NOT YET (the handover's extension of supervised operation) both keep the phase
        going for another timebox, so both are held to the phase's maximum when answered and both
        open the next timebox in the flow."""
        return self in (Outcome.EXTEND, Outcome.NOT_YET)

    @property
    def ends_engagement(self) -> bool:
        """NO-GO ends the engagement at any gate, with the approvers' reasons recorded."""
        return self is Outcome.NO_GO


class Via(str, enum.Enum):
    """How an answer or an attestation came in (not to be confused with a gate's Slack channel)."""

    SLACK = "slack"
    CLI = "cli"
    PREFECT_UI = "prefect_ui"
    TIMEOUT = "timeout"


class Prompt(str, enum.Enum):
    """Whose Slack prompt a follow-up redraws (phasegate.ledger.followups): a gate's or a change request's."""

    GATE = "gate"
    CHANGE_REQUEST = "change_request"


class GateState(str, enum.Enum):
    OPEN = "open"
    DECIDED = "decided"
    STALE = "stale"  # decided, then the evidence changed before the next phase started

    def can_become(self, other: GateState) -> bool:
        return other in _GATE_TRANSITIONS[self]

    def check_can_become(self, other: GateState, subject: str) -> None:
        """InvalidTransition unless the table allows it; a raise, so `python -O` keeps the check."""
        if not self.can_become(other):
            raise InvalidTransition(f"{subject} is {self.value} and cannot become {other.value}")


_GATE_TRANSITIONS: dict[GateState, set[GateState]] = {
    GateState.OPEN: {GateState.DECIDED},
    GateState.DECIDED: {GateState.STALE},
    GateState.STALE: set(),
}


class ChangeRequestState(str, enum.Enum):
    """A change request is filed (SUBMITTED), assessed against the current baseline (ASSESSED, the
    only state that takes answers), and ends APPROVED, REJECTED or WITHDRAWN. A new revision (its
    Jira issue edited while it is open) takes it back to SUBMITTED, to be assessed and asked again."""

    SUBMITTED = "submitted"
    ASSESSED = "assessed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"

    def can_become(self, other: ChangeRequestState) -> bool:
        return other in _CR_TRANSITIONS[self]

    @property
    def final(self) -> bool:
        return not _CR_TRANSITIONS[self]


_CR_TRANSITIONS: dict[ChangeRequestState, set[ChangeRequestState]] = {
    ChangeRequestState.SUBMITTED: {ChangeRequestState.ASSESSED, ChangeRequestState.WITHDRAWN},
    ChangeRequestState.ASSESSED: {ChangeRequestState.APPROVED, ChangeRequestState.REJECTED,
                                  ChangeRequestState.WITHDRAWN, ChangeRequestState.SUBMITTED},
    ChangeRequestState.APPROVED: set(),
    ChangeRequestState.REJECTED: set(),
    ChangeRequestState.WITHDRAWN: set(),
}


class ChangeSource(str, enum.Enum):
    CLI = "cli"
    SLACK = "slack"
    JIRA = "jira"
    FILE = "file"  # `phasegate engagement apply` on a running engagement


class EngagementState(str, enum.Enum):
    REGISTERED = "registered"
    ACTIVE = "active"
    CLOSED = "closed"  # NO-GO: ended with a recorded reason
    COMPLETED = "completed"  # handover accepted
    CANCELLED = "cancelled"  # stopped from the CLI (`engagement cancel`), with who and why recorded

    @property
    def ended(self) -> bool:
        return not _ENGAGEMENT_TRANSITIONS[self]

    def can_become(self, other: EngagementState) -> bool:
        return other in _ENGAGEMENT_TRANSITIONS[self]

    def check_can_become(self, other: EngagementState, subject: str) -> None:
        """InvalidTransition unless the table allows it; a raise, so `python -O` keeps the check."""
        if not self.can_become(other):
            raise InvalidTransition(f"{subject} is {self.value} and cannot become {other.value}")


# ACTIVE -> ACTIVE: the next phase starts in an engagement already under way.
_ENGAGEMENT_TRANSITIONS: dict[EngagementState, set[EngagementState]] = {
    EngagementState.REGISTERED: {EngagementState.ACTIVE, EngagementState.CANCELLED},
    EngagementState.ACTIVE: {EngagementState.ACTIVE, EngagementState.CLOSED, EngagementState.COMPLETED,
                             EngagementState.CANCELLED},
    EngagementState.CLOSED: set(),
    EngagementState.COMPLETED: set(),
    EngagementState.CANCELLED: set(),
}


class RunHealth(str, enum.Enum):
    """What Prefect says of the flow run the ledger expects to carry a phase. ALIVE covers every
    state a run can still move on from (scheduled, pending, running, paused, suspended)."""

    ALIVE = "alive"
    COMPLETED = "completed"
    FAILED = "failed"
    CRASHED = "crashed"
    CANCELLED = "cancelled"
    MISSING = "missing"  # deleted from Prefect, or never known to this Prefect server

    @property
    def dead(self) -> bool:
        """Nothing will act on the ledger's decisions for this phase unless a new run is started."""
        return self not in (RunHealth.ALIVE, RunHealth.COMPLETED)


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
    ROW_SEALED = "row_sealed"  # a row older than its seal (migrations 0003, 0011), hashed when it was added
    CR_SUBMITTED = "cr_submitted"
    CR_ASSESSED = "cr_assessed"
    CR_PROMPT_POSTED = "cr_prompt_posted"
    CR_DECISION_RECORDED = "cr_decision_recorded"
    CR_APPROVED = "cr_approved"
    CR_REJECTED = "cr_rejected"
    CR_WITHDRAWN = "cr_withdrawn"
    CR_ANNOUNCED = "cr_announced"
    CR_REVISED = "cr_revised"  # its Jira issue changed while it was open: a new revision, asked again
    CR_JIRA_CHANGED = "cr_jira_changed"  # its Jira issue changed after the decision: reported, not applied
    CR_JIRA_GONE = "cr_jira_gone"  # its Jira issue was deleted (or is no longer visible)
    CR_JIRA_MOVED = "cr_jira_moved"  # its Jira issue moved: to another project, or back under a new key
    TIMEBOX_MOVED = "timebox_moved"
    CONFIG_AMENDED = "config_amended"
    RUN_LOST = "run_lost"  # the phase's flow run was found cancelled, crashed, failed or deleted
    RUN_RESTARTED = "run_restarted"  # a new flow run took the phase over from the ledger
    SPEND_RECORDED = "spend_recorded"
    PHASE_START_REQUESTED = "phase_start_requested"  # `phase start`: who asked, before the run is started
    REVIEW_REQUESTED = "review_requested"  # `phase review`: the gate is to open before the timebox ends
    WEEKLY_REPORT_POSTED = "weekly_report_posted"  # the ledger learnt the week's post's ts (posted or found)
    WEEKLY_CHART_UPLOADED = "weekly_chart_uploaded"  # the week's burn-up chart, in the post's thread
    ROSTER_CHANGED = "roster_changed"  # a named individual of the vendor's team joined or left
    CHECK_ATTESTED = "check_attested"  # a running knowledge-transfer check, or the data deletion, vouched for


class Rag(str, enum.Enum):
    """A weekly report's status for a sponsor; ordered so the worst finding wins."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"

    @property
    def rank(self) -> int:
        return list(Rag).index(self)

    @property
    def icon(self) -> str:
        return {"green": ":large_green_circle:", "amber": ":large_orange_circle:", "red": ":red_circle:"}[self.value]


class ReportKind(str, enum.Enum):
    ENGAGEMENT = "engagement"
    PORTFOLIO = "portfolio"


class ExportFormat(str, enum.Enum):
    """The formats of `phasegate audit export`."""

    MD = "md"
    CSV = "csv"

"""The engagement file: one YAML document per engagement under `configs/engagements/`.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored
setting. `load_engagement` reports every problem in the file at once, each as
`file: field.path: reason`. Credentials never live here; they come from the environment.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator, model_validator

from phasegate.configs import checks, limits
from phasegate.configs.errors import ConfigError
from phasegate.configs.evidence_schema import (
    ExitCriterion,
    JiraQuery,
    Metric,
    MetricSource,
    Milestone,
    number,
)
from phasegate.configs.gate_schema import (
    Approver,
    GatePolicy,
    Quorum,
    TimeoutOutcome,
)
from phasegate.configs.schema_base import (
    IDENT,
    PROJECT_KEY,
    SLACK_CHANNEL_ID,
    SLACK_USER_ID,
    Comparator,
    Phase,
    Side,
    Strict,
)
from phasegate.configs.selection_schema import DueDiligence, IpTerms, Sourcing
from phasegate.configs.sponsor_schema import DataHandling, TeamMember
from phasegate.configs.weekly import WeeklyStatus

# The schema is read from here; its parts live in schema_base, gate_schema and evidence_schema.
__all__ = [
    "Approver", "Budget", "Comparator", "Engagement", "ExitCriterion", "GatePolicy", "IDENT",
    "JiraChangeRequests", "JiraQuery", "JiraSite", "Metric", "MetricSource", "Milestone", "PROJECT_KEY", "Phase",
    "PhaseConfig", "Phases", "PlanningRules", "Quorum", "SelectionPhase", "SLACK_CHANNEL_ID", "SLACK_USER_ID", "Side", "Strict",
    "TimeoutOutcome", "number"
]

class PhaseConfig(Strict):
    planned_weeks: int = Field(ge=1, le=104)
    max_weeks: int | None = Field(default=None, ge=1)
    extension_weeks: int = Field(default=2, ge=1)
    milestones: list[Milestone] = []
    exit_criteria: list[ExitCriterion] = []
    gate: GatePolicy

    @model_validator(mode="after")
    def _milestone_keys_unique(self, info: ValidationInfo) -> PhaseConfig:
        if not checks.rechecks(info.context):
            return self
        checks.raise_if(checks.phase_problems(self.model_dump(mode="json")))
        return self


class SelectionPhase(PhaseConfig):
    """Phase 0, "Should we sign, and with whom?": the client's own checks before the contract (data
    readiness among its milestones), with the vendor's due diligence, the sourcing decision and the
    IP terms shown on the G0 prompt. The vendor's named individuals are the file's `vendor_team`."""

    due_diligence: DueDiligence
    sourcing: Sourcing
    ip: IpTerms


class Phases(Strict):
    selection: SelectionPhase | None = Field(default=None, exclude_if=lambda v: v is None)  # optional Phase 0
    poc: PhaseConfig
    development: PhaseConfig
    handover: PhaseConfig

    def of(self, phase: Phase) -> PhaseConfig:
        config: PhaseConfig | None = getattr(self, phase.value)
        if config is None:
            raise ConfigError([f"the engagement file has no {phase.value} phase"])
        return config

    def present(self) -> list[Phase]:
        """The phases this engagement goes through, in order (Phase 0 only when the file has it)."""
        return [phase for phase in Phase if getattr(self, phase.value) is not None]

    def first(self) -> Phase:
        return self.present()[0]

    def before(self, phase: Phase) -> Phase | None:
        """The phase whose gate must have passed before `phase` starts, if any."""
        present = self.present()
        index = present.index(phase) if phase in present else 0
        return present[index - 1] if index > 0 else None


class Budget(Strict):
    currency: str = "USD"
    poc_cap: float = Field(ge=0)  # time-and-materials cap for the PoC
    development_team_cost: float = Field(ge=0)
    change_budget: float = Field(ge=0)
    # The estimated first-year cost of running what is built (compute, storage, monitoring, people):
    # the report's total cost of ownership is build plus this (the guide: the build is 30-40 % of it).
    first_year_run_cost: float | None = Field(default=None, ge=0, exclude_if=lambda v: v is None)


class JiraChangeRequests(Strict):
    """Jira issues in the engagement's project that phasegate imports as change requests: those
    carrying `label`, and those of issue type `issue_type` (either or both)."""

    label: str | None = Field(default=None, min_length=1, max_length=255)
    issue_type: str | None = Field(default=None, min_length=1, max_length=60)
    # The site's time tracking: how many hours a "1d" estimate is (Jira's default 8 when not given).
    hours_per_day: float | None = Field(default=None, gt=0, le=24, exclude_if=lambda v: v is None)

    @property
    def day_hours(self) -> float:
        return self.hours_per_day or 8.0

    @model_validator(mode="after")
    def _one(self) -> JiraChangeRequests:
        if self.label is None and self.issue_type is None:
            raise ValueError("name a label, an issue_type or both")
        if self.label is not None and any(c.isspace() for c in self.label):
            raise ValueError("a Jira label has no spaces")
        return self


DONE_RESOLUTIONS = ("Done", "Fixed")


class JiraSite(Strict):
    """The engagement's Jira project. `done_resolutions`: an issue counts as done for a gate only in
    a "done" status resolved as one of these (Jira names, any case): one closed as "Won't Do" or
    "Duplicate" is not work delivered. Left out of the stored file while it is the default, so that
    files registered before it existed keep their digest."""

    url: str
    project: str
    deployment: Literal["cloud", "datacenter"] = "cloud"
    change_requests: JiraChangeRequests | None = None  # import such issues as change requests
    done_resolutions: tuple[str, ...] = Field(default=DONE_RESOLUTIONS, min_length=1, max_length=20,
                                              exclude_if=lambda value: tuple(value) == DONE_RESOLUTIONS)

    @field_validator("done_resolutions")
    @classmethod
    def _resolutions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(name.strip() for name in value))
        if not all(names) or any(len(name) > 60 for name in names):
            raise ValueError("each resolution is a Jira resolution name such as Done (1 to 60 characters)")
        return names

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not PROJECT_KEY.match(value):
            raise ValueError("must be a Jira project key such as ACME")
        return value


class PlanningRules(str, enum.Enum):
    """What `engagement create` does with a plan the guide warns against (configs/practices.py)."""

    WARN = "warn"
    STRICT = "strict"  # the warnings are errors


class Engagement(Strict):
    id: str = Field(max_length=limits.ENGAGEMENT_ID)
    name: str = Field(max_length=limits.ENGAGEMENT_NAME)
    vendor: str
    client_sponsor: str
    pm_slack_user: str = Field(max_length=limits.SLACK_USER)
    timezone: str = "UTC"
    start_date: dt.date
    slack_channel: str = Field(max_length=limits.SLACK_CHANNEL)
    jira: JiraSite
    metrics: list[Metric] = []
    phases: Phases
    budget: Budget
    auto_advance: bool = True  # a GO starts the next phase by itself
    change_requests: GatePolicy | None = None  # who approves change requests; default: the phase's gate
    weekly_status: WeeklyStatus = WeeklyStatus()  # when the weekly report is due, in `timezone`
    # The vendor's named individuals; a change is recorded (`phasegate team change`, Slack) and reported.
    vendor_team: list[TeamMember] = Field(default=[], exclude_if=lambda v: not v)
    data_handling: DataHandling | None = Field(default=None, exclude_if=lambda v: v is None)
    # A check at registration only, so not part of the stored file (nor of its digest).
    planning_rules: PlanningRules = Field(default=PlanningRules.WARN, exclude=True)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not IDENT.match(value):
            raise ValueError("must be lowercase letters, digits and dashes")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("slack_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not SLACK_CHANNEL_ID.match(value):
            raise ValueError("must be a Slack channel id such as C012ABCDEF")
        return value

    @field_validator("pm_slack_user")
    @classmethod
    def _pm(cls, value: str) -> str:
        if not SLACK_USER_ID.match(value):
            raise ValueError("must be a Slack user id such as U012ABCDEF")
        return value

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Engagement:
        if not checks.rechecks(info.context):
            return self
        data = self.model_dump(mode="json")
        checks.raise_if(checks.metric_reference_problems(data) + checks.issue_project_problems(data)
                        + checks.jira_people_problems(data) + checks.selection_problems(data))
        return self

    def names(self) -> dict[str, str]:
        """Slack user id -> the name the file gives, for everyone it names with an id: the vendor's
        team, the approvers of change requests and of every gate. Shown beside the ids (never ids alone)."""
        policies = [self.phases.of(p).gate for p in self.phases.present()] + ([self.change_requests] if self.change_requests else [])
        return {**{m.slack_user: m.name for m in self.vendor_team if m.slack_user},
                **{a.slack_user: a.name for policy in policies for a in policy.approvers}}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

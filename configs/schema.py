"""The engagement file: one YAML document per engagement under `configs/engagements/`.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored
setting. `load_engagement` reports every problem in the file at once, each as
`file: field.path: reason`. Credentials never live here; they come from the environment.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator, model_validator

from configs import checks, limits
from configs.weekly import WeeklyStatus

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")
IDENT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(str, enum.Enum):
    POC = "poc"
    DEVELOPMENT = "development"
    HANDOVER = "handover"

    @property
    def gate(self) -> str:
        return {"poc": "G1", "development": "G2", "handover": "G3"}[self.value]

    @property
    def heading(self) -> str:
        return {
            "poc": "Phase 1: Discovery and PoC",
            "development": "Phase 2: Development and iteration",
            "handover": "Phase 3: Transition and handover",
        }[self.value]

    @property
    def question(self) -> str:
        return {
            "poc": "Should we continue?",
            "development": "Ready for handover?",
            "handover": "Accept handover and close",
        }[self.value]

    def next(self) -> Phase | None:
        order = list(Phase)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None


class Side(str, enum.Enum):
    CLIENT = "client"
    VENDOR = "vendor"


class Comparator(str, enum.Enum):
    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"
    EQ = "=="

    def holds(self, value: float, threshold: float) -> bool:
        return {
            ">=": value >= threshold,
            ">": value > threshold,
            "<=": value <= threshold,
            "<": value < threshold,
            "==": value == threshold,
        }[self.value]


class Approver(Strict):
    slack_user: str = Field(max_length=limits.SLACK_USER)
    name: str
    side: Side
    role: str = Field(default="approver", max_length=limits.ROLE)

    @field_validator("slack_user")
    @classmethod
    def _slack_user(cls, value: str) -> str:
        if not SLACK_USER_ID.match(value):
            raise ValueError("must be a Slack user id such as U012ABCDEF")
        return value


class Quorum(Strict):
    """How many approvers must agree on one outcome: `all`, `any`, or a number.

    `quorum: 2` is shorthand for `quorum: {count: 2}`; so people write it, and a bare number
    read as a type error hid what was really wrong with it (more than the approvers)."""

    count: Literal["all", "any"] | Annotated[int, Field(ge=1)] = "all"
    one_from_each_side: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        return {"count": data} if isinstance(data, int | str) else data


class TimeoutOutcome(str, enum.Enum):
    STAY_OPEN = "stay_open"  # reported overdue; never a silent approval
    NO_GO = "no_go"


class GatePolicy(Strict):
    approvers: list[Approver] = Field(min_length=1)
    quorum: Quorum = Quorum()
    reminder_every_business_days: int = Field(default=1, ge=1)
    reminder_hour: int = Field(default=9, ge=0, le=23)
    escalate_after_business_days: int = Field(default=3, ge=1)
    escalation_contacts: list[str] = []
    timeout_business_days: int | None = Field(default=None, ge=1)
    timeout_outcome: TimeoutOutcome = TimeoutOutcome.STAY_OPEN
    cli_answers: bool = True  # false: `gate decide` is refused, answers come from Slack (or the Prefect UI)
    allow_waivers: bool = True  # false: no GO/ACCEPT while an exit criterion fails or is missing

    @model_validator(mode="after")
    def _quorum_fits(self) -> GatePolicy:
        checks.raise_if(checks.gate_problems(self.model_dump(mode="json")))
        for contact in self.escalation_contacts:
            if not SLACK_USER_ID.match(contact):
                raise ValueError(f"escalation contact {contact!r} is not a Slack user id")
        return self


class JiraQuery(Strict):
    """The safe parts a JQL filter is built from; never a raw JQL string."""

    epic: str | None = None
    labels: list[str] = []
    fix_version: str | None = None
    component: str | None = None


class MetricSource(Strict):
    """Where a metric's value is read: a JSON document over HTTP, a Jira field, or the CLI."""

    kind: Literal["http_json", "jira_field", "manual"]
    url: str | None = None  # http_json
    path: str | None = None  # http_json: dotted path into the document, e.g. "metrics.f1"
    issue: str | None = None  # jira_field: issue key
    field: str | None = None  # jira_field: field id, e.g. customfield_10050

    @model_validator(mode="after")
    def _complete(self) -> MetricSource:
        needed = {"http_json": ("url", "path"), "jira_field": ("issue", "field"), "manual": ()}[self.kind]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} source needs {', '.join(missing)}")
        return self


class Metric(Strict):
    """A named metric; `range: [min, max]` (inclusive) declares the values it can take, such as
    [0, 1] for an F1 score. Only a declared range is checked; none is assumed from the name."""

    name: str = Field(max_length=limits.METRIC_NAME)
    source: MetricSource
    range: tuple[FiniteFloat, FiniteFloat] | None = None

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError("the range's minimum is above its maximum")
        return value

    def refusal(self, value: float) -> str | None:
        """Why `value` cannot be this metric's value, or None: infinity would pass any `>=`
        criterion and NaN fail every one without a word."""
        if not math.isfinite(value):
            return f"{value} is not a finite number"
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            low, high = self.range
            return f"{number(value)} is outside {self.name}'s declared range [{number(low)}, {number(high)}]"
        return None


def number(value: float) -> str:
    """`0.93`, `93`, `1.0000001`: short, but never rounded into a different number."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


class Milestone(Strict):
    """A deliverable whose evidence is one Jira issue (created or linked) or a Jira filter."""

    key: str = Field(max_length=limits.MILESTONE_KEY)
    title: str
    required: bool = True
    jira_issue: str | None = Field(default=None, max_length=limits.ISSUE_KEY)  # an existing issue or epic key to link instead of creating one
    jql: JiraQuery | None = None  # done when every matching issue is done
    attestation: bool = False  # evidence may also be an attestation recorded with who and when
    attesting_side: Literal["client", "vendor", "either"] = "either"  # whose approvers may attest it

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not IDENT.match(value):
            raise ValueError("must be lowercase letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def _side_needs_attestation(self) -> Milestone:
        if self.attesting_side != "either" and not self.attestation:
            raise ValueError(f"milestone {self.key}: attesting_side needs attestation: true")
        return self

    @field_validator("jira_issue")
    @classmethod
    def _issue(cls, value: str | None) -> str | None:
        if value is not None and not checks.ISSUE_KEY.match(value):
            raise ValueError("must be a Jira issue key such as ACME-12")
        return value


class ExitCriterion(Strict):
    """`metric comparator threshold`, or `all_required_milestones_done: true`.

    Written either as a mapping (`{metric: f1, op: ">=", threshold: 0.8}`) or, as people write it
    first, as the string `f1 >= 0.8` (or `all_required_milestones_done`)."""

    metric: str | None = None
    op: Comparator | None = None
    threshold: float | None = None
    all_required_milestones_done: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: object) -> object:
        data = checks.criterion_mapping(data)
        if isinstance(data, str):
            raise ValueError(f"{data!r} is not a criterion: write `metric op threshold` such as `f1 >= 0.8` "
                             "(op is one of >= > <= < ==), or all_required_milestones_done")
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> ExitCriterion:
        metric_form = (self.metric, self.op, self.threshold)
        if self.all_required_milestones_done:
            if any(part is not None for part in metric_form):
                raise ValueError("give either a metric criterion or all_required_milestones_done, not both")
        elif any(part is None for part in metric_form):
            raise ValueError("a metric criterion needs metric, op and threshold")
        return self

    @property
    def label(self) -> str:
        if self.all_required_milestones_done:
            return "all required milestones done"
        if self.op is None:  # configs sit below phasegate, so a plain ValueError rather than its errors
            raise ValueError("a metric criterion without op passed validation")
        return f"{self.metric} {self.op.value} {self.threshold:g}"


class PhaseConfig(Strict):
    planned_weeks: int = Field(ge=1, le=104)
    max_weeks: int | None = Field(default=None, ge=1)
    extension_weeks: int = Field(default=2, ge=1)
    milestones: list[Milestone] = []
    exit_criteria: list[ExitCriterion] = []
    gate: GatePolicy

    @model_validator(mode="after")
    def _milestone_keys_unique(self) -> PhaseConfig:
        checks.raise_if(checks.phase_problems(self.model_dump(mode="json")))
        return self


class Phases(Strict):
    poc: PhaseConfig
    development: PhaseConfig
    handover: PhaseConfig

    def of(self, phase: Phase) -> PhaseConfig:
        config: PhaseConfig = getattr(self, phase.value)
        return config


class Budget(Strict):
    currency: str = "USD"
    poc_cap: float = Field(ge=0)  # time-and-materials cap for the PoC
    development_team_cost: float = Field(ge=0)
    change_budget: float = Field(ge=0)


class JiraChangeRequests(Strict):
    """Jira issues in the engagement's project that phasegate imports as change requests: those
    carrying `label`, and those of issue type `issue_type` (either or both)."""

    label: str | None = Field(default=None, min_length=1, max_length=255)
    issue_type: str | None = Field(default=None, min_length=1, max_length=60)

    @model_validator(mode="after")
    def _one(self) -> JiraChangeRequests:
        if self.label is None and self.issue_type is None:
            raise ValueError("name a label, an issue_type or both")
        if self.label is not None and any(c.isspace() for c in self.label):
            raise ValueError("a Jira label has no spaces")
        return self


class JiraSite(Strict):
    url: str
    project: str
    deployment: Literal["cloud", "datacenter"] = "cloud"
    change_requests: JiraChangeRequests | None = None  # import such issues as change requests

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
    def _cross_checks(self) -> Engagement:
        data = self.model_dump(mode="json")
        checks.raise_if(checks.metric_reference_problems(data) + checks.issue_project_problems(data))
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

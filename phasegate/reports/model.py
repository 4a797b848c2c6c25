"""The weekly report as data. Stored as JSON in the ledger, so next week's trends can read it."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from phasegate.configs.schema import Phase
from phasegate.states import Rag


class Missing(BaseModel):
    """A source that could not be read: shown in the report, never silently skipped."""

    source: str
    reason: str


class Counts(BaseModel):
    done: int = 0
    in_progress: int = 0
    to_do: int = 0
    points_done: float = 0.0
    points_total: float = 0.0

    @property
    def total(self) -> int:
        return self.done + self.in_progress + self.to_do

    def add(self, other: Counts) -> Counts:
        return Counts(done=self.done + other.done, in_progress=self.in_progress + other.in_progress,
                      to_do=self.to_do + other.to_do, points_done=self.points_done + other.points_done,
                      points_total=self.points_total + other.points_total)


class IssueLink(BaseModel):
    key: str
    status: str
    url: str


class MilestoneProgress(BaseModel):
    key: str
    title: str
    required: bool
    owner: str | None = None  # "client" or "vendor": whose work it is (the file's `owner`)
    counts: Counts = Counts()
    issues: list[IssueLink] = []  # the first few, as links
    error: str | None = None
    not_done: list[str] = []  # why it is not done, as at its gate: "ACME-7 Closed as Won't Do", "ACME-9 left the scope"


class MetricTrend(BaseModel):
    name: str
    value: float | None
    previous: float | None = None  # last week's report
    criterion: str | None = None  # "f1 >= 0.85"
    passes: bool | None = None
    better_when_higher: bool = True
    error: str | None = None
    meaning: str | None = None  # the value in business terms (the file's `meaning`), beside the raw figure

    @property
    def delta(self) -> float | None:
        return None if self.value is None or self.previous is None else self.value - self.previous

    @property
    def worsening(self) -> bool:
        delta = self.delta
        return delta is not None and (delta < 0 if self.better_when_higher else delta > 0)


class OpenGate(BaseModel):
    gate_id: int
    name: str
    opened_at: dt.datetime
    age_days: int
    quorum: str
    answered: list[str]  # "Dana Whitfield (GO)"
    pending: list[str]  # names of approvers who have not answered
    overdue: bool


class DriftIssue(BaseModel):
    """One issue found as scope drift, kept so the report's "Draft change request" button can
    pre-fill a request without asking Jira again."""

    key: str
    summary: str = ""
    milestone: str


class ChangeRequests(BaseModel):
    items: list[str] = []  # one line per change request
    note: str = "none"
    growth_percent: float | None = None  # cumulative scope growth against the first baseline
    drift: list[str] = []  # scope drift findings, one line each (R-CR-4)
    drift_count: int = 0
    drift_issues: list[DriftIssue] = []  # the first 25 (what one change request can cover)
    drift_left: list[DriftIssue] = []  # the first 25 of the baseline's issues that left the scope
    jira: list[str] = []  # requests' Jira issues changed after the decision, deleted or moved (found this time)


class Budget(BaseModel):
    currency: str
    poc_cap: float
    change_budget: float
    spent: float | None = None  # recorded spend, all phases
    note: str = "no spend recorded"
    lines: list[str] = []  # each limit with what is used and left (phasegate.rules.budget)
    over: list[str] = []  # the lines over their limit
    near: list[str] = []  # the PoC's time-and-materials spend past the warning share of its cap
    tco: str | None = None  # first-year cost of ownership: build plus the file's run estimate


class HandoverItem(BaseModel):
    key: str
    title: str
    done: bool | None
    attested_by: str | None = None
    attested_on: dt.date | None = None


class CheckItem(BaseModel):
    """A running knowledge-transfer check: what the client side last said and when."""

    key: str
    title: str
    holds: bool | None = None  # None: not attested in the last week
    attested_by: str | None = None
    attested_on: dt.date | None = None


class Sponsor(BaseModel):
    """Beside the build: the vendor's named team, the running checks, the data-handling deadline."""

    team: list[str] = []  # "Priya Natarajan (vendor lead)"
    team_changes: list[str] = []  # one line per recorded change, oldest first
    checks: list[CheckItem] | None = None  # from the PoC through development (rules.handoff.KT_PHASES)
    data: list[str] = []  # encryption, deadline, reminder or attestation
    deletion: str | None = None  # phasegate.rules.handoff.deletion_state


class BurnUp(BaseModel):
    """The data behind the chart: scope and done at each date, the baselines, the timebox end."""

    unit: str  # "issues" or "story points"
    dates: list[dt.date]
    scope: list[float]
    done: list[float]
    baselines: list[tuple[dt.date, int]] = []  # (recorded on, version)
    changes: list[tuple[dt.date, str]] = []  # approved change requests: (decided on, "CR-2")
    timebox_end: dt.date | None = None
    forecast_on: dt.date | None = None  # phasegate.reports.forecast's date, drawn on the chart


class Forecast(BaseModel):
    """When the scope left is likely done (phasegate.reports.forecast), or why that cannot be said."""

    confidence: float
    done_by: dt.date | None = None  # `confidence` of the simulated futures are done by this day
    remaining: float = 0.0  # in the burn-up's unit
    unit: str = "issues"
    weeks_sampled: int = 0
    reason: str | None = None  # why there is no date, said instead of one


class Finding(BaseModel):
    rule: str
    rag: Rag
    reason: str


class WeeklyReport(BaseModel):
    engagement_id: str
    name: str
    week: str  # ISO week in the engagement's timezone, e.g. "2026-W33"
    generated_at: dt.datetime
    today: dt.date  # in the engagement's timezone
    timezone: str = "UTC"  # the engagement's
    due_at: dt.datetime | None = None  # when the week's report was due (phasegate.reports.schedule)
    late: bool = False  # built more than schedule.LATE_AFTER after due_at: said in the report
    state: str
    phase: Phase | None
    week_of_phase: int | None = None
    planned_weeks: int | None = None
    booked_weeks: int | None = None
    timebox_ends_on: dt.date | None = None
    milestones: list[MilestoneProgress] = []
    metrics: list[MetricTrend] = []
    gates: list[OpenGate] = []
    change_requests: ChangeRequests = ChangeRequests()
    budget: Budget
    handover: list[HandoverItem] | None = None
    time_to_value_weeks: float | None = None
    sponsor: Sponsor = Sponsor()
    missing: list[Missing] = []
    burnup: BurnUp | None = None
    forecast: Forecast | None = None
    rag: Rag = Rag.GREEN
    findings: list[Finding] = []
    chart_path: str | None = None

    @property
    def totals(self) -> Counts:
        total = Counts()
        for m in self.milestones:
            total = total.add(m.counts)
        return total

    @property
    def phase_label(self) -> str:
        return self.phase.heading if self.phase else "not started"

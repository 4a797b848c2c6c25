"""Evidence for a gate: what each milestone and metric showed, where it came from and when.

A source that cannot be read shows as missing evidence with the reason, never as a crash and
never as a pass. The snapshot is frozen as canonical JSON and identified by its SHA-256 digest,
which every decision made on it records.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from phasegate.configs.schema import Engagement, ExitCriterion, Metric, Milestone, Phase
from phasegate.errors import EvidenceUnavailable, IntegrationError, InternalError
from phasegate.integrations.jql import build_jql


class Result(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    MISSING = "missing"


class MilestoneEvidence(BaseModel):
    key: str
    title: str
    required: bool
    source: str  # "jira", "attestation" or "none"
    query: str
    read_at: dt.datetime
    done: bool | None  # None: the evidence is missing
    issues: list[dict[str, Any]] = []
    attested_by: str | None = None
    error: str | None = None


class MetricEvidence(BaseModel):
    name: str
    source: str
    query: str
    read_at: dt.datetime
    value: float | None
    raw: Any = None
    error: str | None = None


class CriterionEvidence(BaseModel):
    label: str
    result: Result
    seen: str


class Snapshot(BaseModel):
    engagement_id: str
    phase: Phase
    timebox: int
    collected_at: dt.datetime
    milestones: list[MilestoneEvidence]
    metrics: list[MetricEvidence]
    criteria: list[CriterionEvidence]
    warnings: list[str] = []

    def canonical(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json")
        return data

    def digest(self) -> str:
        body = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def all_pass(self) -> bool:
        return all(c.result is Result.PASS for c in self.criteria)

    @property
    def unmet(self) -> list[str]:
        """The exit criteria that fail or are missing, as an approver reads them."""
        return [f"{c.label}: {c.result.value} (seen {c.seen})" for c in self.criteria if c.result is not Result.PASS]


class Tracker(Protocol):
    def get(self, key: str) -> Any: ...
    def search(self, jql: str) -> list[Any]: ...
    def field_value(self, key: str, field: str) -> object: ...


@dataclass
class LedgerFacts:
    """What the ledger already knows that counts as evidence."""

    links: Mapping[str, str] = field(default_factory=dict)  # milestone key -> Jira issue key
    attestations: Mapping[str, tuple[str, dt.datetime]] = field(default_factory=dict)  # key -> (who, when)
    submitted: Mapping[str, float] = field(default_factory=dict)  # metric -> latest CLI value


MetricReader = Callable[[str, str], tuple[float, Any]]  # (url, path) -> (value, raw document)


def _issue_summary(record: Any) -> dict[str, Any]:
    resolved = record.resolved_at.isoformat() if record.resolved_at else None
    return {"key": record.key, "status": record.status, "done": record.done, "resolved_at": resolved,
            "story_points": record.story_points}


NO_TRACKER = "Jira is not configured"


def milestone_evidence(
    engagement: Engagement, milestone: Milestone, tracker: Tracker | None, facts: LedgerFacts, now: dt.datetime,
    no_tracker: str = NO_TRACKER,
) -> MilestoneEvidence:
    base: dict[str, Any] = {"key": milestone.key, "title": milestone.title, "required": milestone.required, "read_at": now}
    attested = facts.attestations.get(milestone.key)
    if milestone.attestation and attested is not None:
        who, when = attested
        return MilestoneEvidence(**base, source="attestation", query=f"attested at {when.isoformat()}",
                                 done=True, attested_by=who)
    if milestone.jql is not None:
        query = build_jql(engagement.jira.project, milestone.jql, deployment=engagement.jira.deployment)
    else:
        key = milestone.jira_issue or facts.links.get(milestone.key)
        if key is None:
            return MilestoneEvidence(**base, source="none", query="", done=None, error="no Jira issue linked")
        query = f"issue {key}"
    if tracker is None:
        return MilestoneEvidence(**base, source="jira", query=query, done=None, error=no_tracker)
    try:
        records = tracker.search(query) if milestone.jql is not None else [tracker.get(query.split()[-1])]
    except IntegrationError as exc:
        return MilestoneEvidence(**base, source="jira", query=query, done=None, error=str(exc))
    if not records:
        return MilestoneEvidence(**base, source="jira", query=query, done=None, error="no matching issues")
    issues = [_issue_summary(r) for r in records]
    return MilestoneEvidence(**base, source="jira", query=query, done=all(r.done for r in records), issues=issues)


def _acceptable(metric: Metric, value: float) -> float:
    """The value, or EvidenceUnavailable when it is NaN, infinite or outside the declared range:
    such a value is no evidence either way, so the criterion shows as missing, never as passed."""
    refusal = metric.refusal(value)
    if refusal is not None:
        raise EvidenceUnavailable(refusal)
    return value


def metric_evidence(
    engagement: Engagement, name: str, tracker: Tracker | None, read_json: MetricReader,
    facts: LedgerFacts, now: dt.datetime, metrics_base_url: str | None = None, no_tracker: str = NO_TRACKER,
) -> MetricEvidence:
    metric = next(m for m in engagement.metrics if m.name == name)
    source = metric.source
    if source.kind == "manual":
        value = facts.submitted.get(name)
        error = None if value is not None else "no value submitted"
        refusal = metric.refusal(value) if value is not None else None
        if refusal is not None:  # submitted while the file declared another range
            value, error = None, refusal
        return MetricEvidence(name=name, source="manual", query="phasegate metric submit", read_at=now,
                              value=value, error=error)
    try:
        if source.kind == "http_json":
            if source.url is None or source.path is None:
                raise InternalError(f"metric {name}: an http_json source without url or path passed validation")
            url = source.url
            if url.startswith("/") and metrics_base_url:
                url = metrics_base_url.rstrip("/") + url
            query = f"GET {url} -> {source.path}"
            value, raw = read_json(url, source.path)
            return MetricEvidence(name=name, source="http_json", query=query, read_at=now,
                                  value=_acceptable(metric, value), raw=raw)
        if source.issue is None or source.field is None:
            raise InternalError(f"metric {name}: a jira_field source without issue or field passed validation")
        query = f"issue {source.issue} field {source.field}"
        if tracker is None:
            raise EvidenceUnavailable(no_tracker)
        raw_value = tracker.field_value(source.issue, source.field)
        if isinstance(raw_value, bool) or not isinstance(raw_value, int | float):
            raise EvidenceUnavailable(f"{source.field} of {source.issue} is {raw_value!r}, not a number")
        return MetricEvidence(name=name, source="jira_field", query=query, read_at=now,
                              value=_acceptable(metric, float(raw_value)), raw=raw_value)
    except IntegrationError as exc:
        return MetricEvidence(name=name, source=source.kind, query=query, read_at=now, value=None, error=str(exc))


def evaluate(
    criterion: ExitCriterion, milestones: list[MilestoneEvidence], metrics: dict[str, MetricEvidence]
) -> CriterionEvidence:
    if criterion.all_required_milestones_done:
        required = [m for m in milestones if m.required]
        open_ = [m.key for m in required if m.done is False]
        unknown = [m.key for m in required if m.done is None]
        done = len(required) - len(open_) - len(unknown)
        seen = f"{done}/{len(required)} done"
        if open_:
            return CriterionEvidence(label=criterion.label, result=Result.FAIL, seen=f"{seen}; open: {', '.join(open_)}")
        if unknown:
            return CriterionEvidence(label=criterion.label, result=Result.MISSING,
                                     seen=f"{seen}; no evidence: {', '.join(unknown)}")
        return CriterionEvidence(label=criterion.label, result=Result.PASS, seen=seen)
    if criterion.metric is None or criterion.op is None or criterion.threshold is None:
        raise InternalError(f"exit criterion {criterion.label!r} passed validation without metric, op or threshold")
    reading = metrics.get(criterion.metric)
    if reading is None or reading.value is None:
        why = reading.error if reading is not None else "not read"
        return CriterionEvidence(label=criterion.label, result=Result.MISSING, seen=f"missing ({why})")
    result = Result.PASS if criterion.op.holds(reading.value, criterion.threshold) else Result.FAIL
    return CriterionEvidence(label=criterion.label, result=result, seen=f"{reading.value:g}")


def phase_warnings(engagement: Engagement, phase: Phase, milestones: list[MilestoneEvidence]) -> list[str]:
    """The guide's pitfalls, checked against this phase's evidence."""
    warnings: list[str] = []
    if phase is Phase.POC:
        readiness = next((m for m in milestones if m.key == "data-readiness"), None)
        modelling = [m for m in milestones if m.key != "data-readiness" and m.done]
        if readiness is not None and not readiness.done and modelling:
            warnings.append("data readiness assessment is not passed, yet modelling milestones were marked done: "
                            + ", ".join(m.key for m in modelling))
    if phase is Phase.DEVELOPMENT and not any("production-hardening" in m.key for m in milestones):
        warnings.append("no production-hardening milestone: the PoC's shortcuts would go to production")
    return warnings


def collect(
    engagement: Engagement, phase: Phase, timebox: int, *, tracker: Tracker | None, read_json: MetricReader,
    facts: LedgerFacts, now: dt.datetime, metrics_base_url: str | None = None, no_tracker: str = NO_TRACKER,
) -> Snapshot:
    """`no_tracker` says why `tracker` is None (the reason shown on every Jira item as missing evidence)."""
    config = engagement.phases.of(phase)
    milestones = [milestone_evidence(engagement, m, tracker, facts, now, no_tracker) for m in config.milestones]
    names = list(dict.fromkeys(c.metric for c in config.exit_criteria if c.metric is not None))
    metrics = {n: metric_evidence(engagement, n, tracker, read_json, facts, now, metrics_base_url, no_tracker)
               for n in names}
    criteria = [evaluate(c, milestones, metrics) for c in config.exit_criteria]
    return Snapshot(engagement_id=engagement.id, phase=phase, timebox=timebox, collected_at=now,
                    milestones=milestones, metrics=list(metrics.values()), criteria=criteria,
                    warnings=phase_warnings(engagement, phase, milestones))


def staleness(approved: Snapshot, fresh: Snapshot) -> list[str]:
    """Why an approval made on `approved` no longer holds on `fresh` evidence (empty: it holds).

    Every required milestone and every criterion is compared, whatever it showed at approval:
    worse than then (done or missing, now open; pass or missing, now fail) is a reason. Known at
    approval but unreadable now is a reason too, worded "unknown: <why>" (not "no longer
    done"): the approval cannot be confirmed, so it must not carry the next phase; the re-read
    has already had its retry budget. What was open or failing at approval was waived then
    (a written waiver, see `policy`), so unknown now is not worse. Missing then and still
    missing now is not a reason either, since nothing new is known and a reopened gate would
    show the same; `unconfirmed` lists those so the re-check says so instead of passing silently.
    """
    reasons: list[str] = []
    now = {m.key: m for m in fresh.milestones}
    for m in approved.milestones:
        later = now.get(m.key)
        if not m.required or m.done is False:
            continue
        if later is None or later.done is None:
            if m.done:
                reasons.append(f"required milestone {m.key}: unknown: {_why(later)}")
        elif later.done is False:
            reasons.append(f"required milestone {m.key} is no longer done" if m.done else
                           f"required milestone {m.key} is open; it was missing at approval ({m.error})")
    now_result = {c.label: c for c in fresh.criteria}
    for c in approved.criteria:
        after = now_result.get(c.label)
        if c.result is Result.FAIL or after is None:
            continue
        if after.result is Result.FAIL:
            reasons.append(f"{c.label} now fail (seen {after.seen}, was {c.seen})")
        elif after.result is Result.MISSING and c.result is Result.PASS:
            reasons.append(f"{c.label}: unknown: {after.seen}")
    return reasons


def unconfirmed(approved: Snapshot, fresh: Snapshot) -> list[str]:
    """What was missing at approval and is still missing now, with today's reason."""
    now = {m.key: m for m in fresh.milestones}
    lines = [f"required milestone {m.key}: unknown: {_why(now.get(m.key))}" for m in approved.milestones
             if m.required and m.done is None and (now.get(m.key) is None or now[m.key].done is None)]
    now_result = {c.label: c for c in fresh.criteria}
    return lines + [f"{c.label}: unknown: {now_result[c.label].seen}" for c in approved.criteria
                    if c.result is Result.MISSING and c.label in now_result
                    and now_result[c.label].result is Result.MISSING]


def _why(milestone: MilestoneEvidence | None) -> str:
    return (milestone.error if milestone is not None else None) or "not in the fresh evidence"

"""Evidence for a gate: what each milestone and metric showed, where it came from and when.

A source that cannot be read shows as missing evidence with the reason, never as a crash and
never as a pass. The snapshot is frozen as canonical JSON and identified by its SHA-256 digest,
which every decision made on it records. What a milestone's Jira issues are and which count as
done is `phasegate.rules.jira_scope`; the scope drift read with them is `phasegate.rules.drift`.

The snapshot's models live in `phasegate.rules.snapshot`; Phase 0's part in `phasegate.rules.selection`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from phasegate.configs.schema import Engagement, ExitCriterion, Metric, Milestone, Phase
from phasegate.errors import EvidenceUnavailable, IntegrationError, InternalError
from phasegate.rules import drift, jira_scope
from phasegate.rules.selection import selection_evidence
from phasegate.rules.snapshot import (
    CriterionEvidence,
    MetricEvidence,
    MilestoneEvidence,
    Result,
    ScopeDrift,
    Snapshot,
)

# The snapshot's models are read from here too (phasegate.rules.snapshot holds them).
__all__ = ["CriterionEvidence", "MetricEvidence", "MilestoneEvidence", "Result", "ScopeDrift", "Snapshot"]


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
    baseline: drift.Baseline | None = None  # the phase's scope as recorded; None: drift is not tracked


MetricReader = Callable[[str, str], tuple[float, Any]]  # (url, path) -> (value, raw document)


def _issue_summary(record: Any, accepted: tuple[str, ...]) -> dict[str, Any]:
    resolved = record.resolved_at.isoformat() if record.resolved_at else None
    return {"key": record.key, "status": record.status, "resolution": record.resolution,
            "done": jira_scope.counts_as_done(record, accepted), "resolved_at": resolved,
            "story_points": record.story_points}


NO_TRACKER = "Jira is not configured"


def milestone_evidence(engagement: Engagement, milestone: Milestone, read: jira_scope.MilestoneRead,
                       facts: LedgerFacts, now: dt.datetime, left: list[drift.DriftItem] | None = None,
                       ) -> MilestoneEvidence:
    """The milestone's evidence from what Jira showed (`read`) and the baseline issues that `left`
    its scope: done only when every issue read counts as done and none left."""
    base: dict[str, Any] = {"key": milestone.key, "title": milestone.title, "required": milestone.required, "read_at": now}
    attested = facts.attestations.get(milestone.key)
    if milestone.attestation and attested is not None:
        who, when = attested
        return MilestoneEvidence(**base, source="attestation", query=f"attested at {when.isoformat()}",
                                 done=True, attested_by=who)
    if not read.query:
        return MilestoneEvidence(**base, source="none", query="", done=None, error=read.error)
    if read.error is not None:
        return MilestoneEvidence(**base, source="jira", query=read.query, done=None, error=read.error)
    if read.issue is not None and (refused := jira_scope.foreign(engagement, read.asked or "", read.issue)):
        return MilestoneEvidence(**base, source="jira", query=read.query, done=None, error=refused)
    records = ([read.issue] if read.issue is not None else []) + read.scope
    if not records:
        return MilestoneEvidence(**base, source="jira", query=read.query, done=None, error="no matching issues")
    accepted = engagement.jira.done_resolutions
    open_ = [why for r in records if (why := jira_scope.open_reason(r, accepted)) is not None]
    open_ += [f"{i.key} left the scope" for i in left or ()]
    issues = [_issue_summary(r, accepted) for r in records]
    return MilestoneEvidence(**base, source="jira", query=read.query, done=not open_, issues=issues, not_done=open_)


def scope_drift(engagement: Engagement, phase: Phase, reads: Mapping[str, jira_scope.MilestoneRead],
                facts: LedgerFacts, no_tracker: str | None) -> drift.Drift | None:
    """The phase's drift from the milestones' reads; None when the phase has no baseline issue list."""
    if facts.baseline is None:
        return None
    if no_tracker is not None:
        return drift.Drift(engagement.id, phase, error=no_tracker)
    failed = next((r.error for r in reads.values() if r.query and r.error), None)
    if failed is not None:
        return drift.Drift(engagement.id, phase, error=failed)
    found = {key: r.scope for key, r in reads.items() if r.query}
    return drift.find(engagement.id, phase, found, facts.baseline, reads.keys())


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
    criterion: ExitCriterion, milestones: list[MilestoneEvidence], metrics: dict[str, MetricEvidence],
    unplaced: list[str] | None = None,
) -> CriterionEvidence:
    """`unplaced`: issues that left the phase's scope under no milestone the baseline names (a
    baseline recorded before milestones were kept with it); they keep every milestone criterion open."""
    if criterion.all_required_milestones_done:
        required = [m for m in milestones if m.required]
        open_ = [m.key for m in required if m.done is False]
        unknown = [m.key for m in required if m.done is None]
        done = len(required) - len(open_) - len(unknown)
        seen = f"{done}/{len(required)} done"
        if open_ or unplaced:
            left = f"left the scope: {', '.join(unplaced)}" if unplaced else ""
            return CriterionEvidence(label=criterion.label, result=Result.FAIL,
                                     seen="; ".join([seen] + ([f"open: {', '.join(open_)}"] if open_ else []) +
                                                    ([left] if left else [])))
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
    clock: Callable[[], dt.datetime] | None = None,
) -> Snapshot:
    """`no_tracker` says why `tracker` is None (the reason shown on every Jira item as missing evidence).
    Each milestone's issues are read once, for its evidence and for the scope drift. `clock` gives
    each source's `read_at` (when its read began; default `now` for all): a prompt says how old each
    piece of evidence is, not only when the set was collected."""
    config = engagement.phases.of(phase)
    clock = clock or (lambda: now)
    reads, began = {}, {}
    for m in config.milestones:
        began[m.key] = clock()
        reads[m.key] = jira_scope.read(engagement, m, m.jira_issue or facts.links.get(m.key), tracker, no_tracker)
    found = scope_drift(engagement, phase, reads, facts, None if tracker is not None else no_tracker)
    left = [] if found is None else found.left
    milestones = [milestone_evidence(engagement, m, reads[m.key], facts, began[m.key],
                                     [i for i in left if i.milestone == m.key])
                  for m in config.milestones]
    names = list(dict.fromkeys(c.metric for c in config.exit_criteria if c.metric is not None))
    metrics = {n: metric_evidence(engagement, n, tracker, read_json, facts, clock(), metrics_base_url, no_tracker)
               for n in names}
    unplaced = [i.key for i in left if not i.milestone]
    criteria = [evaluate(c, milestones, metrics, unplaced) for c in config.exit_criteria]
    return Snapshot(engagement_id=engagement.id, phase=phase, timebox=timebox, collected_at=now,
                    milestones=milestones, metrics=list(metrics.values()), criteria=criteria,
                    warnings=phase_warnings(engagement, phase, milestones) + (found.lines() if found else []),
                    drift=None if found is None else ScopeDrift(entered=found.items, left=found.left, error=found.error),
                    selection=selection_evidence(engagement, phase))

"""Evidence rules that need no server: metric paths, criteria, the guide's pitfalls, staleness."""

from __future__ import annotations

import datetime as dt

import pytest

from phasegate.configs.schema import Comparator, Engagement, ExitCriterion, Phase
from phasegate.integrations.metric_sources import dig
from phasegate.rules.drift import Baseline, DriftItem, find
from phasegate.rules.evidence import (
    CriterionEvidence,
    LedgerFacts,
    MetricEvidence,
    MilestoneEvidence,
    Result,
    ScopeDrift,
    Snapshot,
    evaluate,
    metric_evidence,
    phase_warnings,
)
from phasegate.rules.staleness import staleness, unconfirmed

NOW = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)


def milestone(key: str, done: bool | None, required: bool = True) -> MilestoneEvidence:
    return MilestoneEvidence(key=key, title=key, required=required, source="jira", query=f"issue {key}",
                             read_at=NOW, done=done, error=None if done is not None else "unreachable")


def metric(name: str, value: float | None) -> MetricEvidence:
    return MetricEvidence(name=name, source="http_json", query="GET x", read_at=NOW, value=value,
                          error=None if value is not None else "HTTP 503")


def test_dig_follows_paths_and_selectors() -> None:
    doc = {"run": {"data": {"metrics": [{"key": "f1", "value": 0.8}, {"key": "f1", "value": 0.9}]}}, "l": [1, 2]}
    assert dig(doc, "run.data.metrics[key=f1].value") == 0.9  # the latest entry wins
    assert dig(doc, "l[1]") == 2
    for bad in ("run.nope", "run.data.metrics[key=f2].value", "l[5]"):
        with pytest.raises((KeyError, IndexError)):
            dig(doc, bad)


@pytest.mark.parametrize(("value", "result", "seen"), [
    (0.85, Result.PASS, "0.85"), (0.849, Result.FAIL, "0.849"), (None, Result.MISSING, "missing (HTTP 503)")])
def test_metric_criterion(value: float | None, result: Result, seen: str) -> None:
    criterion = ExitCriterion(metric="f1", op=Comparator.GE, threshold=0.85)
    assert evaluate(criterion, [], {"f1": metric("f1", value)}) == CriterionEvidence(label="f1 >= 0.85",
                                                                                    result=result, seen=seen)


def test_milestone_criterion_fails_on_open_and_is_missing_on_unknown() -> None:
    criterion = ExitCriterion(all_required_milestones_done=True)
    assert evaluate(criterion, [milestone("a", True), milestone("b", None)], {}).result is Result.MISSING
    failed = evaluate(criterion, [milestone("a", False), milestone("b", None), milestone("c", False, False)], {})
    assert (failed.result, failed.seen) == (Result.FAIL, "0/2 done; open: a")
    assert evaluate(criterion, [milestone("a", True), milestone("c", False, False)], {}).result is Result.PASS


def test_pitfalls_from_the_guide(acme: Engagement) -> None:
    poc = [milestone("data-readiness", False), milestone("baseline-model", True)]
    assert "data readiness assessment is not passed" in phase_warnings(acme, Phase.POC, poc)[0]
    dev = [milestone("staging-pipeline", True)]
    assert "no production-hardening milestone" in phase_warnings(acme, Phase.DEVELOPMENT, dev)[0]
    assert phase_warnings(acme, Phase.DEVELOPMENT, [milestone("production-hardening", False)]) == []


def test_staleness_names_what_changed() -> None:
    def snap(done: bool, f1: float) -> Snapshot:
        crit = evaluate(ExitCriterion(metric="f1", op=Comparator.GE, threshold=0.85), [], {"f1": metric("f1", f1)})
        return Snapshot(engagement_id="e", phase=Phase.POC, timebox=1, collected_at=NOW,
                        milestones=[milestone("baseline-model", done)], metrics=[metric("f1", f1)], criteria=[crit])
    assert staleness(snap(True, 0.9), snap(True, 0.88)) == []
    assert staleness(snap(True, 0.9), snap(False, 0.8)) == [
        "required milestone baseline-model is no longer done", "f1 >= 0.85 now fail (seen 0.8, was 0.9)"]


def test_the_digest_covers_every_value() -> None:
    base = Snapshot(engagement_id="e", phase=Phase.POC, timebox=1, collected_at=NOW,
                    milestones=[milestone("a", True)], metrics=[metric("f1", 0.9)], criteria=[])
    changed = base.model_copy(update={"metrics": [metric("f1", 0.90001)]})
    assert base.digest() == Snapshot.model_validate(base.canonical()).digest()
    assert base.digest() != changed.digest()


@pytest.mark.parametrize(("read", "error"), [
    (93.0, "93 is outside f1's declared range [0, 1]"),
    (float("inf"), "inf is not a finite number"),
    (float("nan"), "nan is not a finite number"),
], ids=["out-of-range", "infinity", "nan"])
def test_a_metric_read_outside_its_declared_range_is_missing_not_passed(acme: Engagement, read: float,
                                                                         error: str) -> None:
    """Infinity passes any `>=`; a percentage sent for a 0-1 score passes `f1 >= 0.85` as well."""
    seen = metric_evidence(acme, "f1", None, lambda url, path: (read, {"f1": read}), LedgerFacts(), NOW)
    assert seen.value is None and seen.error is not None and seen.error.endswith(error)
    criterion = ExitCriterion(metric="f1", op=Comparator.GE, threshold=0.85)
    assert evaluate(criterion, [], {"f1": seen}).result is Result.MISSING


def test_an_approval_on_missing_evidence_is_checked_again() -> None:
    """Only what passed at approval used to be re-checked: a milestone missing then and open now slipped by."""
    f1 = ExitCriterion(metric="f1", op=Comparator.GE, threshold=0.85)
    done = ExitCriterion(all_required_milestones_done=True)

    def snap(state: bool | None, f1_value: float | None) -> Snapshot:
        milestones = [milestone("baseline-model", state)]
        metrics = {"f1": metric("f1", f1_value)}
        return Snapshot(engagement_id="e", phase=Phase.POC, timebox=1, collected_at=NOW, milestones=milestones,
                        metrics=list(metrics.values()),
                        criteria=[evaluate(c, milestones, metrics) for c in (done, f1)])
    missing = snap(None, None)
    assert staleness(missing, snap(False, 0.8)) == [
        "required milestone baseline-model is open; it was missing at approval (unreachable)",
        "all required milestones done now fail (seen 0/1 done; open: baseline-model, was 0/1 done; no evidence: "
        "baseline-model)",
        "f1 >= 0.85 now fail (seen 0.8, was missing (HTTP 503))"]
    assert staleness(missing, snap(True, 0.9)) == []  # it came back as it should be
    assert staleness(snap(True, 0.9), missing) == [  # unreadable now is unknown, not "no longer done"
        "required milestone baseline-model: unknown: unreachable",
        "all required milestones done: unknown: 0/1 done; no evidence: baseline-model",
        "f1 >= 0.85: unknown: missing (HTTP 503)"]
    assert staleness(missing, missing) == []  # nothing new is known; said by `unconfirmed`, not hidden
    assert unconfirmed(missing, missing) == [
        "required milestone baseline-model: unknown: unreachable",
        "all required milestones done: unknown: 0/1 done; no evidence: baseline-model",
        "f1 >= 0.85: unknown: missing (HTTP 503)"]
    assert unconfirmed(missing, snap(True, 0.9)) == []
    assert staleness(snap(False, 0.8), missing) == []  # a failure waived at approval is not made worse by unknown


def test_fields_added_later_leave_the_digest_of_older_snapshots_alone() -> None:
    """A snapshot frozen before `not_done` and `drift` existed must still hash to its digest."""
    base = Snapshot(engagement_id="e", phase=Phase.POC, timebox=1, collected_at=NOW,
                    milestones=[milestone("a", True)], metrics=[metric("f1", 0.9)], criteria=[])
    body = base.canonical()
    assert "drift" not in body and "not_done" not in body["milestones"][0]
    assert Snapshot.model_validate(body).digest() == base.digest()
    drifted = base.model_copy(update={"drift": ScopeDrift(entered=[DriftItem("ACME-9", "Second model", "a")])})
    assert drifted.canonical()["drift"]["entered"] == [{"key": "ACME-9", "summary": "Second model", "milestone": "a"}]
    assert Snapshot.model_validate(drifted.canonical()).digest() == drifted.digest() != base.digest()


def test_drift_that_appeared_after_the_freeze_makes_the_approval_stale() -> None:
    def snap(drift: ScopeDrift | None) -> Snapshot:
        return Snapshot(engagement_id="e", phase=Phase.POC, timebox=1, collected_at=NOW,
                        milestones=[milestone("a", True)], metrics=[], criteria=[], drift=drift)
    seen = ScopeDrift(entered=[DriftItem("ACME-9", "Second model", "a")])
    more = ScopeDrift(entered=[*seen.entered, DriftItem("ACME-10", "Third model", "a")],
                      left=[DriftItem("ACME-4", "", "a")])
    down = ScopeDrift(error="Jira at x: searching issues failed: server error (HTTP 503)")
    assert staleness(snap(seen), snap(seen)) == []  # shown at approval: seen, not a reason again
    assert staleness(snap(seen), snap(more)) == [
        "ACME-10 (under a) entered the poc scope after approval, with no approved change request",
        "ACME-4 (under a) left the poc scope after approval, with no approved change request removing it"]
    assert staleness(snap(seen), snap(down)) == [f"scope drift: unknown: {down.error}"]
    assert staleness(snap(down), snap(seen)) == [
        f"ACME-9 (under a) entered the poc scope, with no approved change request (scope drift was not checked at "
        f"approval: {down.error})"]
    assert staleness(snap(down), snap(down)) == [] and unconfirmed(snap(down), snap(down)) == [
        f"scope drift: unknown: {down.error}"]
    assert staleness(snap(None), snap(more)) == [] == staleness(snap(seen), snap(None))  # not tracked: not compared


def test_an_issue_that_left_under_no_milestone_the_baseline_names_keeps_the_criterion_open() -> None:
    """A baseline recorded before keys were kept per milestone cannot say where the issue was."""
    class Issue:
        def __init__(self, key: str) -> None:
            self.key, self.summary = key, ""
    old = Baseline(keys=frozenset({"ACME-4", "ACME-7"}))
    drift = find("e", Phase.POC, {"a": [Issue("ACME-4")]}, old, ["a"])
    assert drift.items == [] and drift.left == [DriftItem("ACME-7", "", "")]
    assert drift.lines() == ["ACME-7 left the poc scope after the baseline, with no approved change request removing it"]
    criterion = ExitCriterion(all_required_milestones_done=True)
    assert evaluate(criterion, [milestone("a", True)], {}, ["ACME-7"]) == CriterionEvidence(
        label="all required milestones done", result=Result.FAIL, seen="1/1 done; left the scope: ACME-7")
    removed = Baseline(keys=old.keys, removed=frozenset({"ACME-7"}))
    assert find("e", Phase.POC, {"a": [Issue("ACME-4")]}, removed, ["a"]).left == []

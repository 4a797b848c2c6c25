"""The weekly status is never falsely green, and counts a milestone as its gate does (issue 19, items
8 and 9), against the Jira stand-in (Cloud and Data Center, through the real jira client) and ledgers
on SQLite and PostgreSQL:

- a search that fails once, wherever it falls in the week's reads (milestones, children, the drift),
  never leaves a report green while drift exists;
- a milestone is done in the report exactly when the gate's evidence says it is done: children,
  resolutions, an issue moved to another project, an issue of the baseline that left the scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from helpers import register
from jira_setup import jira_running, tracked_by_filter

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import links
from phasegate.ledger.models import utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect, render
from phasegate.reports.model import WeeklyReport
from phasegate.rules.evidence import Snapshot
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.states import Rag
from phasegate.tasks.gates import collect_evidence
from phasegate.tasks.kickoff import begin_phase, link_milestones, post_kickoff, record_baseline

PM = "U0PMACME01"


@pytest.fixture(params=["cloud", "datacenter"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraStandin]:
    """Both Jira flavours, paging 2 issues at a time so every read has several pages; GLOBEX is
    another client's project on the same site."""
    with jira_running(request.param, "ACME", "GLOBEX", page_size=2) as standin:
        yield standin


@pytest.fixture
def engagement(acme: Engagement, jira: JiraStandin) -> Engagement:
    """acme-churn on this Jira flavour, its baseline model tracked by a filter (label `baseline-model`)."""
    return tracked_by_filter(acme, jira, start_date=dt.date.today().isoformat())


def running(rt: Runtime, engagement: Engagement) -> dict[str, str]:
    """Registered, PoC begun, kickoff posted, milestone issues in Jira; their keys by milestone."""
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, PM, None)
    post_kickoff.fn(rt, engagement, Phase.POC)
    assert link_milestones.fn(rt, engagement, Phase.POC) == []
    with transaction(rt.sessions) as session:
        return links(session, engagement.id, Phase.POC)


def weekly(rt: Runtime, engagement: Engagement) -> WeeklyReport:
    (report,) = collect.collect(rt, [engagement.id], utcnow()).reports
    return report


def on_track_but_drifted(rt: Runtime, jira: JiraStandin, engagement: Engagement) -> str:
    """Every milestone done, the metrics passing, and one issue that entered the baseline model's
    filter after the baseline: the only thing wrong this week is the drift. Its key."""
    issues = running(rt, engagement)
    for n in range(3):
        jira.add_issue("ACME", f"Baseline step {n}", labels=["baseline-model"], done=True)
    jira.add_issue("ACME", "Data profile", epic=issues["data-readiness"], done=True)
    record_baseline.fn(rt, engagement, Phase.POC)
    for key in issues.values():
        jira.set_status(key, "Done", done=True)
    return jira.add_issue("ACME", "A second model nobody approved", labels=["baseline-model"], done=True)


# -- 8. a source that could not be read never leaves the report green ------------------------------

def test_a_search_failing_once_anywhere_never_leaves_a_drifted_week_green(
        rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    extra = on_track_but_drifted(rt, jira, engagement)
    pages = len(jira.requests)
    clean = weekly(rt, engagement)
    assert clean.rag is Rag.AMBER and [f.rule for f in clean.findings] == ["scope-drift"], clean.findings
    assert clean.change_requests.drift_count == 1 and extra in clean.change_requests.drift[0]
    searches = [p for _, p in jira.requests[pages:] if "/search" in p]
    assert len(searches) >= 4  # several pages and several searches: each one is failed in turn below
    for failing in range(1, len(searches) + 1):
        served = 0

        def fail_after(number: int, failing: int = failing) -> None:
            nonlocal served
            served += 1
            if served == failing - 1:  # the next search request answers 503 without Retry-After
                jira.fail_next("/search", status=503, retry_after=None)

        jira.after_page = fail_after
        if failing == 1:
            jira.fail_next("/search", status=503, retry_after=None)
        report = weekly(rt, engagement)
        jira.after_page = None
        rules = [f.rule for f in report.findings]
        assert report.rag is not Rag.GREEN, (failing, report.findings)
        assert "scope-drift" in rules or "evidence-missing" in rules, (failing, rules)
        if "scope-drift" not in rules:  # drift not found: the report says it was not checked, and why
            assert any(m.source == "scope drift" for m in report.missing), (failing, report.missing)
            assert any("scope drift not checked" in line for line in report.change_requests.drift)


# -- 8. the weekly report counts a milestone as its gate does --------------------------------------

def done_in(report: WeeklyReport, key: str) -> bool | None:
    row = next(m for m in report.milestones if m.key == key)
    return None if row.error else (row.counts.total > 0 and row.counts.done == row.counts.total)


def done_at_gate(snapshot: Snapshot, key: str) -> bool | None:
    return next(m for m in snapshot.milestones if m.key == key).done


@pytest.mark.parametrize("case", ["open children", "won't do", "moved", "left the filter"])
def test_a_milestone_is_done_in_the_weekly_report_exactly_when_it_is_at_its_gate(
        rt: Runtime, jira: JiraStandin, engagement: Engagement, case: str) -> None:
    issues = running(rt, engagement)
    jira.add_issue("ACME", "Train the baseline", labels=["baseline-model"], done=True)
    planned = jira.add_issue("ACME", "Tune the baseline", labels=["baseline-model"], done=True)
    children = [jira.add_issue("ACME", f"Chapter {n}", epic=issues["poc-report"]) for n in range(2)]
    record_baseline.fn(rt, engagement, Phase.POC)
    for key in issues.values():
        jira.set_status(key, "Done", done=True)
    for key in children:
        jira.set_status(key, "Done", done=True)
    before = weekly(rt, engagement)
    assert [done_in(before, m) for m in ("data-readiness", "baseline-model", "poc-report")] == [True] * 3
    key = {"open children": "poc-report", "won't do": "data-readiness", "moved": "poc-report",
           "left the filter": "baseline-model"}[case]
    if case == "open children":
        jira.set_status(children[1], "In Progress", done=False)
    elif case == "won't do":
        jira.set_status(issues["data-readiness"], "Closed", done=True, resolution="Won't Do")
    elif case == "moved":
        jira.move_issue(issues["poc-report"], "GLOBEX")
    else:
        rt.tracker(engagement).client.issue(planned).update(fields={"labels": ["later"]})
    report, snapshot = weekly(rt, engagement), collect_evidence(rt, engagement, Phase.POC, 1)
    assert done_at_gate(snapshot, key) is not True
    assert done_in(report, key) is done_at_gate(snapshot, key), (case, report.milestones)
    row = next(m for m in report.milestones if m.key == key)
    gate_row = next(m for m in snapshot.milestones if m.key == key)
    assert row.not_done == gate_row.not_done and row.error == gate_row.error
    for other in {"data-readiness", "baseline-model", "poc-report"} - {key}:
        assert done_in(report, other) is done_at_gate(snapshot, other) is True


# -- 9. one bad minute does not decide the week ----------------------------------------------------

def test_one_503_while_the_week_is_read_is_read_again_as_the_gate_does(
        rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    extra = on_track_but_drifted(rt, jira, engagement)
    jira.fail_next("/search", status=503, retry_after=None)  # the first milestone search of the week
    report = weekly(rt, engagement)
    assert report.missing == [] and [f.rule for f in report.findings] == ["scope-drift"], report.missing
    assert report.change_requests.drift_count == 1 and extra in report.change_requests.drift[0]
    assert all(m.error is None and m.counts.total > 0 for m in report.milestones), report.milestones
    assert "incomplete" not in render.headline(report)


def test_a_source_down_for_the_whole_budget_leaves_the_week_incomplete(
        rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    on_track_but_drifted(rt, jira, engagement)
    seen = len(jira.requests)
    jira.fail_next("/search", status=503, retry_after=None, times=1_000)
    report = weekly(rt, engagement)
    attempts = rt.settings.evidence_attempts
    assert any(m.source == "scope drift" for m in report.missing)
    assert all("503" in m.reason for m in report.missing), report.missing
    assert report.rag is not Rag.GREEN and "evidence-missing" in [f.rule for f in report.findings]
    # each read of the week stops at one failing search per milestone (3): read `attempts` times in all
    assert len([p for _, p in jira.requests[seen:] if "/search" in p]) >= attempts * len(report.milestones)
    assert render.headline(report).endswith(" · incomplete")

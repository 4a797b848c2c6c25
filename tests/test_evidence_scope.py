"""What a gate counts as done, against the Jira stand-in (Cloud and Data Center, through the real
jira client) and ledgers on SQLite and PostgreSQL (issue 19, the gate side):

- an issue of the baseline that leaves a milestone's scope (relabelled out of its filter, moved to
  another project) is drift, and keeps the milestone open until an approved change request removes it;
- a milestone's own issue counts its children (issues in its epic, its sub-tasks), and an issue is done
  only with a resolution the engagement file accepts (default Done, Fixed);
- a milestone issue moved to another project is refused as evidence;
- a drift search that fails is read again with the rest of the evidence, and still failing, said;
- drift that appears between the freeze and the quorum makes the approval stale.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import closed_port_url, form_opened_by, register, with_changes
from jira_setup import jira_running, tracked_by_filter
from typer.testing import CliRunner

from phasegate.changes import operations as cr_operations
from phasegate.cli.main import app
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import change_decisions, gates
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import links
from phasegate.ledger.models import utcnow
from phasegate.messages.gates import evidence_blocks
from phasegate.ops.local import prefect_api
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect
from phasegate.rules.change_requests import Draft
from phasegate.rules.evidence import MilestoneEvidence, Result, Snapshot
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.settings import Settings
from phasegate.states import ChangeSource, Outcome, Via
from phasegate.tasks.gates import collect_evidence, open_gate, recheck_evidence
from phasegate.tasks.kickoff import begin_phase, link_milestones, post_kickoff, record_baseline

PM, SPONSOR, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0VENDLEAD"
DONE = "all required milestones done"


@pytest.fixture(params=["cloud", "datacenter"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraStandin]:
    """Both Jira flavours; GLOBEX is another client's project on the same site."""
    with jira_running(request.param, "ACME", "GLOBEX") as standin:
        yield standin


@pytest.fixture
def engagement(acme: Engagement, jira: JiraStandin) -> Engagement:
    """acme-churn on this Jira flavour, its baseline model tracked by a filter (label `baseline-model`)."""
    return tracked_by_filter(acme, jira)


@pytest.fixture
def linked(acme: Engagement, jira: JiraStandin) -> Engagement:
    """acme-churn on this Jira flavour as it is: every milestone one issue, created at kickoff."""
    return with_changes(acme, jira__deployment=jira.deployment)


def running(rt: Runtime, engagement: Engagement) -> dict[str, str]:
    """Registered, PoC begun, kickoff posted, milestone issues in Jira; their keys by milestone."""
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, PM, None)
    post_kickoff.fn(rt, engagement, Phase.POC)
    assert link_milestones.fn(rt, engagement, Phase.POC) == []
    with transaction(rt.sessions) as session:
        return links(session, engagement.id, Phase.POC)


def criterion(snapshot: Snapshot, label: str = DONE) -> tuple[Result, str]:
    found = next(c for c in snapshot.criteria if c.label == label)
    return found.result, found.seen


def milestone(snapshot: Snapshot, key: str) -> MilestoneEvidence:
    return next(m for m in snapshot.milestones if m.key == key)


def shown(snapshot: Snapshot) -> str:
    """The evidence as the gate prompt shows it (its blocks' text)."""
    return json.dumps(evidence_blocks(snapshot))


def approve_request(rt: Runtime, engagement: Engagement, draft: Draft) -> None:
    with prefect_api(closed_port_url()):
        filed = cr_operations.file(rt.sessions, engagement.id, draft, requested_by=PM, source=ChangeSource.CLI)
    for approver in (SPONSOR, VENDOR_LEAD):
        with transaction(rt.sessions) as session:
            change_decisions.answer(session, filed.cr_id, approver=approver, outcome=Outcome.APPROVE, reason="",
                                    via=Via.CLI)


# -- 1. descoping is not a pass ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["relabelled", "moved"])
def test_an_issue_that_leaves_a_filter_is_drift_and_keeps_its_milestone_open(
        rt: Runtime, jira: JiraStandin, engagement: Engagement, how: str) -> None:
    issues = running(rt, engagement)
    jira.add_issue("ACME", "Train the baseline", labels=["baseline-model"], done=True)
    planned = jira.add_issue("ACME", "Tune the baseline", labels=["baseline-model"])
    record_baseline.fn(rt, engagement, Phase.POC)
    for key in issues.values():
        jira.set_status(key, "Done", done=True)
    assert criterion(collect_evidence(rt, engagement, Phase.POC, 1)) == (
        Result.FAIL, "2/3 done; open: baseline-model")

    if how == "relabelled":  # through the real client, as someone editing the issue would
        rt.tracker(engagement).client.issue(planned).update(fields={"labels": ["later"]})
    else:
        jira.move_issue(planned, "GLOBEX")
    snapshot = collect_evidence(rt, engagement, Phase.POC, 1)
    assert criterion(snapshot) == (Result.FAIL, "2/3 done; open: baseline-model")
    assert milestone(snapshot, "baseline-model").done is False
    left = [w for w in snapshot.warnings if planned in w]
    assert left and "left the poc scope" in left[0] and "no approved change request" in left[0], snapshot.warnings
    assert f"not done: {planned} left the scope" in shown(snapshot) and "left the poc scope" in shown(snapshot)
    found = cr_operations.drift_of(rt, engagement.id)
    assert [(i.key, i.milestone) for i in found.left] == [(planned, "baseline-model")]
    (report,) = collect.collect(rt, [engagement.id], utcnow()).reports
    assert report.change_requests.drift_count == 1 and "left the poc scope" in report.change_requests.drift[0]

    approve_request(rt, engagement, Draft(title="Tuning moves to development",
                                          scope_removed=(f"{planned} Tune the baseline",)))
    snapshot = collect_evidence(rt, engagement, Phase.POC, 1)
    assert criterion(snapshot) == (Result.PASS, "3/3 done") and snapshot.warnings == []
    assert cr_operations.drift_of(rt, engagement.id).left == []


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)  # what Slack is sent is the point here
def test_the_weekly_reports_draft_button_drafts_the_removal_of_what_left(
        rt: Runtime, jira: JiraStandin, engagement: Engagement, slack: SlackStandin) -> None:
    """A week whose only drift is an issue that left the scope still offers "Draft change request",
    and the form it opens removes that issue (it used to offer nothing, and drafted only additions)."""
    running(rt, engagement)
    planned = jira.add_issue("ACME", "Tune the baseline", labels=["baseline-model"])
    record_baseline.fn(rt, engagement, Phase.POC)
    rt.tracker(engagement).client.issue(planned).update(fields={"labels": ["later"]})
    collect.deliver_all(rt, collect.collect(rt, [engagement.id], utcnow()).reports, post=True)
    (posted,) = [m for m in slack.messages(engagement.slack_channel) if m.text.startswith("Weekly status")]
    (button,) = [e for b in posted.blocks if b["type"] == "actions" for e in b["elements"]]
    assert (button["text"]["text"], button["value"]) == ("Draft change request", engagement.id)

    form = form_opened_by(rt, slack, button, SPONSOR, engagement.slack_channel)
    filled = {b["block_id"]: b["element"].get("initial_value") for b in form["blocks"]}
    assert filled["title"] == f"Scope drift in poc: {planned}"
    assert filled["scope_removed"] == planned and not filled.get("scope_added")


# -- 2. a milestone issue is done when its work is -------------------------------------------------

def test_a_milestone_issue_counts_its_children(rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    issues = running(rt, engagement)
    report = issues["poc-report"]
    children = [jira.add_issue("ACME", f"Chapter {n}", epic=report) for n in range(3)]
    children += [jira.add_issue("ACME", f"Review {n}", epic=report, issuetype="Sub-task") for n in range(2)]
    record_baseline.fn(rt, engagement, Phase.POC)
    jira.set_status(report, "Done", done=True)
    snapshot = collect_evidence(rt, engagement, Phase.POC, 1)
    seen = milestone(snapshot, "poc-report")
    assert seen.done is False, seen
    assert {i["key"] for i in seen.issues} == {report, *children}
    assert seen.not_done == [f"{child} To Do" for child in children]
    assert f"not done: {children[0]} To Do, {children[1]} To Do, {children[2]} To Do and 2 more" in shown(snapshot)
    for child in children:
        jira.set_status(child, "Done", done=True)
    assert milestone(collect_evidence(rt, engagement, Phase.POC, 1), "poc-report").done is True


@pytest.mark.parametrize(("resolution", "done"), [("Won't Do", False), ("Duplicate", False), ("Fixed", True),
                                                  ("Done", True)])
def test_only_the_resolutions_the_file_accepts_count_as_done(
        rt: Runtime, jira: JiraStandin, engagement: Engagement, resolution: str, done: bool) -> None:
    issues = running(rt, engagement)
    jira.set_status(issues["poc-report"], "Closed", done=True, resolution=resolution)
    seen = milestone(collect_evidence(rt, engagement, Phase.POC, 1), "poc-report")
    assert seen.done is done, seen
    assert seen.issues[0]["resolution"] == resolution
    assert seen.not_done == ([] if done else [f"{issues['poc-report']} Closed as {resolution}"])


def test_the_file_names_the_resolutions_that_count(rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    engagement = with_changes(engagement, jira__done_resolutions=["Done", "Won't Do"])
    issues = running(rt, engagement)
    jira.set_status(issues["poc-report"], "Closed", done=True, resolution="Won't Do")
    jira.set_status(issues["data-readiness"], "Closed", done=True, resolution="Fixed")
    snapshot = collect_evidence(rt, engagement, Phase.POC, 1)
    assert milestone(snapshot, "poc-report").done is True and milestone(snapshot, "data-readiness").done is False


# -- 3. evidence only from the engagement's project -------------------------------------------------

def test_a_milestone_issue_moved_to_another_project_is_refused_as_evidence(
        rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    issues = running(rt, engagement)
    report = issues["poc-report"]
    moved = jira.move_issue(report, "GLOBEX")
    jira.set_status(moved, "Done", done=True)
    seen = milestone(collect_evidence(rt, engagement, Phase.POC, 1), "poc-report")
    assert seen.done is None and seen.error is not None, seen
    assert report in seen.error and moved in seen.error and "GLOBEX" in seen.error
    assert "not the engagement's project ACME" in seen.error


# -- 4. a drift check that fails says so --------------------------------------------------------------

def test_one_503_on_the_drift_search_is_read_again(rt: Runtime, jira: JiraStandin, linked: Engagement) -> None:
    """Every milestone is one issue, so the only search is the one for what lies under them."""
    issues = running(rt, linked)
    record_baseline.fn(rt, linked, Phase.POC)
    extra = jira.add_issue("ACME", "Second model", epic=issues["poc-report"])
    jira.fail_next("/search", status=503, retry_after=None)
    snapshot = collect_evidence(rt, linked, Phase.POC, 1)
    assert any(extra in w and "entered the poc scope" in w for w in snapshot.warnings), snapshot.warnings


def test_a_drift_search_that_hangs_once_is_read_again(rt: Runtime, jira: JiraStandin, linked: Engagement) -> None:
    issues = running(rt, linked)
    record_baseline.fn(rt, linked, Phase.POC)
    extra = jira.add_issue("ACME", "Second model", epic=issues["poc-report"])
    hung: list[int] = []

    def hang(page: int) -> None:  # the first search page after this answers only after the client gave up
        if not hung:
            hung.append(page)
            time.sleep(1.5)
    jira.after_page = hang
    impatient = Runtime(rt.settings.model_copy(update={"jira_timeout": 0.5}))
    try:
        snapshot = collect_evidence(impatient, linked, Phase.POC, 1)
    finally:
        impatient.close()
    assert hung and any(extra in w and "entered the poc scope" in w for w in snapshot.warnings), snapshot.warnings


def test_a_drift_search_that_keeps_failing_is_said_on_the_prompt(
        rt: Runtime, jira: JiraStandin, linked: Engagement) -> None:
    running(rt, linked)
    record_baseline.fn(rt, linked, Phase.POC)
    jira.fail_next("/search", status=503, retry_after=None, times=1000)
    snapshot = collect_evidence(rt, linked, Phase.POC, 1)
    said = [w for w in snapshot.warnings if w.startswith("scope drift not checked: ")]
    assert said and "HTTP 503" in said[0], snapshot.warnings
    assert "scope drift not checked: Jira at" in shown(snapshot)
    assert snapshot.drift is not None and snapshot.drift.error == said[0].removeprefix("scope drift not checked: ")


# -- 5. drift after the freeze -------------------------------------------------------------------------

def test_drift_between_the_freeze_and_the_quorum_makes_the_approval_stale(
        rt: Runtime, jira: JiraStandin, engagement: Engagement) -> None:
    issues = running(rt, engagement)
    jira.add_issue("ACME", "Train the baseline", labels=["baseline-model"], done=True)
    record_baseline.fn(rt, engagement, Phase.POC)
    for key in issues.values():
        jira.set_status(key, "Done", done=True)
    gate_id = open_gate.fn(rt, engagement, Phase.POC, 1, PM, None)
    extra = jira.add_issue("ACME", "Second model, done on the quiet", labels=["baseline-model"], done=True)
    for approver in (SPONSOR, VENDOR_LEAD):
        with transaction(rt.sessions) as session:
            gates.answer(session, gate_id, approver=approver, outcome=Outcome.GO, reason="", via=Via.CLI)
    reopened = recheck_evidence.fn(rt, engagement, gate_id)
    assert reopened is not None
    with transaction(rt.sessions) as session:
        because = gates.by_id(session, reopened).reopened_because
    assert extra in because and "entered the poc scope" in because


# -- `cr drift` and `cr draft-drift` -------------------------------------------------------------------

def test_cr_drift_lists_what_left_and_drafts_its_removal(home: Path, jira: JiraStandin, acme: Engagement) -> None:
    engagement = with_changes(acme, jira__deployment=jira.deployment)
    settings = Settings(home=home, database_url="", jira_email=jira.email, jira_api_token=jira.api_token,
                        jira_pat=jira.pat, jira_sites={"https://acme.atlassian.net": jira.url})
    rt = Runtime(settings)  # on the home's ledger, migrated
    try:
        register(rt, engagement)
        begin_phase.fn(rt, engagement, Phase.POC, PM, None)
        link_milestones.fn(rt, engagement, Phase.POC)
        with transaction(rt.sessions) as session:
            report = links(session, engagement.id, Phase.POC)["poc-report"]
        chapter = jira.add_issue("ACME", "Chapter 1", epic=report)
        record_baseline.fn(rt, engagement, Phase.POC)
    finally:
        rt.close()
    jira.move_issue(chapter, "GLOBEX")
    runner = CliRunner(env={
        "PHASEGATE_HOME": str(home), "PHASEGATE_DATABASE_URL": None, "PREFECT_API_URL": closed_port_url(),
        "COLUMNS": "200", "PHASEGATE_JIRA_SITES": json.dumps({"https://acme.atlassian.net": jira.url}),
        "PHASEGATE_JIRA_EMAIL": jira.email, "PHASEGATE_JIRA_API_TOKEN": jira.api_token, "PHASEGATE_JIRA_PAT": jira.pat})
    listed = runner.invoke(app, ["cr", "drift", engagement.id])
    assert listed.exit_code == 1, listed.output
    assert "1 issues of the baseline left the scope" in listed.stdout and f"{chapter}  (under poc-report)" in listed.stdout
    drafted = runner.invoke(app, ["cr", "draft-drift", engagement.id])
    assert drafted.exit_code == 0, drafted.stderr
    assert yaml.safe_load(drafted.stdout)["scope_removed"] == [chapter]

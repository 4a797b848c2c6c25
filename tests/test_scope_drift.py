"""Scope drift and Jira import against the Jira stand-in through the real jira client, on SQLite
and PostgreSQL: an issue added under a milestone after the baseline is flagged (in `cr drift`'s
function, the gate evidence and the weekly report) until an approved change request covers it;
a Jira issue labelled as a change request is filed once (what an edit in Jira does to it is in
test_jira_change_requests.py)."""

from __future__ import annotations

from helpers import form_opened_by, no_prefect, register, with_changes
from sqlalchemy import func, select

from phasegate.changes import jira_import as cr_import
from phasegate.changes import operations as cr_operations
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import change_decisions
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import ChangeRequestRow, utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect
from phasegate.rules import drift
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import ChangeRequestState, ChangeSource, Outcome, Via
from phasegate.tasks.gates import collect_evidence
from phasegate.tasks.kickoff import begin_phase, link_milestones, record_baseline

PM, SPONSOR, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0VENDLEAD"


def running(rt: Runtime, engagement: Engagement) -> None:
    """As the phase flow starts: registered, PoC begun, milestone issues in Jira, baseline recorded."""
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, PM, None)
    link_milestones.fn(rt, engagement, Phase.POC)


def milestone_issue(rt: Runtime, key: str) -> str:
    with transaction(rt.sessions) as session:
        from phasegate.ledger.engagements import links
        return links(session, "acme-churn", Phase.POC)[key]


def approve(rt: Runtime, cr_id: int) -> None:
    for approver in (SPONSOR, VENDOR_LEAD):
        with transaction(rt.sessions) as session:
            change_decisions.answer(session, cr_id, approver=approver, outcome=Outcome.APPROVE, reason="",
                                    via=Via.CLI)


def test_an_issue_added_after_the_baseline_is_drift_until_a_change_request_covers_it(
        rt: Runtime, acme: Engagement, jira: JiraStandin) -> None:
    running(rt, acme)
    model = milestone_issue(rt, "baseline-model")
    planned = jira.add_issue("ACME", "Feature engineering", epic=model)
    record_baseline.fn(rt, acme, Phase.POC)
    with transaction(rt.sessions) as session:
        baseline = crs.baseline(session, "acme-churn")
        assert baseline is not None and baseline.scope["issues"] == {"poc": [planned]}
    assert cr_operations.drift_of(rt, "acme-churn").items == []

    extra = jira.add_issue("ACME", "Second model: gradient boosting", epic=model)
    found = cr_operations.drift_of(rt, "acme-churn")
    assert [(i.key, i.summary, i.milestone) for i in found.items] == [
        (extra, "Second model: gradient boosting", "baseline-model")]
    snapshot = collect_evidence(rt, acme, Phase.POC, 1)
    assert any(extra in w and "no approved change request" in w for w in snapshot.warnings)
    (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports
    assert report.change_requests.drift_count == 1 and extra in report.change_requests.drift[0]
    assert "scope-drift" in {f.rule for f in report.findings}

    draft = drift.draft(found)
    assert draft.scope_added == (f"{extra} Second model: gradient boosting",)
    with no_prefect():
        filed = cr_operations.file(rt.sessions, "acme-churn", draft, requested_by=PM, source=ChangeSource.CLI)
    assert len(cr_operations.drift_of(rt, "acme-churn").items) == 1  # filed is not approved
    approve(rt, filed.cr_id)
    with transaction(rt.sessions) as session:
        assert crs.by_id(session, filed.cr_id).state is ChangeRequestState.APPROVED
    assert cr_operations.drift_of(rt, "acme-churn").items == []
    assert collect_evidence(rt, acme, Phase.POC, 1).warnings == []
    (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports
    assert report.change_requests.drift == [] and report.change_requests.growth_percent == round(100 / 14, 1)  # one item added to a baseline of 14
    assert report.change_requests.items[0].startswith("CR-1 Scope drift in poc")


def test_a_baseline_without_an_issue_list_says_drift_was_not_checked(rt: Runtime, acme: Engagement,
                                                                     jira: JiraStandin) -> None:
    running(rt, acme)
    jira.outage = True
    record_baseline.fn(rt, acme, Phase.POC)  # Jira down: the baseline waits for the keys
    found = cr_operations.drift_of(rt, "acme-churn")
    assert found.items == [] and found.error == "the poc baseline holds no Jira issue list"
    jira.outage = False
    record_baseline.fn(rt, acme, Phase.POC)  # the next run of the step records them, as a new version
    with transaction(rt.sessions) as session:
        baseline = crs.baseline(session, "acme-churn")
        assert baseline is not None and baseline.version == 2 and baseline.scope["issues"] == {"poc": []}
    assert cr_operations.drift_of(rt, "acme-churn").error is None


def test_a_jira_issue_labelled_change_request_is_filed_once(rt: Runtime, acme: Engagement,
                                                           jira: JiraStandin) -> None:
    engagement = with_changes(acme, jira__change_requests={"label": "change-request"})
    assert cr_import.queries(engagement) == ['project = "ACME" AND labels = "change-request" ORDER BY key ASC']
    running(rt, engagement)
    record_baseline.fn(rt, engagement, Phase.POC)
    key = jira.add_issue("ACME", "Add a churn-reason classifier", labels=["change-request"],
                         fields={"description": "Support asks why customers leave."})
    jira.add_issue("ACME", "Unrelated task", labels=["other"])
    tracker = rt.tracker(engagement)
    with no_prefect():
        first = cr_import.import_requests(rt.sessions, engagement, tracker)
        assert first.filed == [(key, 1)]
        assert first.problems and "approval flow did not start" in first.problems[0]
        tracker.client.issue(key).update(fields={"summary": "Add a churn-reason classifier (v2)"})
        again = cr_import.import_requests(rt.sessions, engagement, tracker)  # an edit: a new revision, not a CR
        assert (again.filed, again.revised) == ([], [(key, 1)])
        collect_evidence(rt, engagement, Phase.POC, 1)  # evidence collection imports too: still once
    with transaction(rt.sessions) as session:
        assert session.scalar(select(func.count()).select_from(ChangeRequestRow)) == 1
        cr = crs.by_number(session, "acme-churn", 1)
        assert (cr.title, cr.jira_issue, cr.source) == ("Add a churn-reason classifier (v2)", key, ChangeSource.JIRA)
        assert cr.revision == 2
        assert cr.rationale == "Support asks why customers leave." and cr.state is ChangeRequestState.ASSESSED


def test_a_jira_issue_no_ledger_can_store_is_reported_not_filed(rt: Runtime, acme: Engagement,
                                                                 jira: JiraStandin) -> None:
    """Jira's drafts pass the same validation as the CLI's and Slack's (rules.change_requests.validate):
    a summary or description with NUL (which PostgreSQL cannot store) is a problem of that issue, and
    the collection that imports goes on with the others."""
    engagement = with_changes(acme, jira__change_requests={"label": "change-request"})
    running(rt, engagement)
    record_baseline.fn(rt, engagement, Phase.POC)
    nul = jira.add_issue("ACME", "Add\x00a classifier", labels=["change-request"])
    described = jira.add_issue("ACME", "Explain churn", labels=["change-request"],
                               fields={"description": "why\x00 customers leave"})
    fine = jira.add_issue("ACME", "Add a churn-reason classifier", labels=["change-request"])
    with no_prefect():
        result = cr_import.import_requests(rt.sessions, engagement, rt.tracker(engagement))
    assert result.filed == [(fine, 1)]
    problems = " ".join(result.problems)
    assert f"{nul} not filed or followed as a change request: title: cannot be recorded: it contains a NUL" in problems
    assert f"{described} not filed or followed as a change request: rationale: cannot be recorded" in problems
    with transaction(rt.sessions) as session:
        assert [cr.jira_issue for cr in crs.all_for(session, "acme-churn")] == [fine]


def test_the_weekly_reports_draft_button_opens_the_form_filled_with_the_drift(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin) -> None:
    running(rt, acme)
    record_baseline.fn(rt, acme, Phase.POC)
    extra = jira.add_issue("ACME", "Second model: gradient boosting", epic=milestone_issue(rt, "baseline-model"))
    reports = collect.collect(rt, ["acme-churn"], utcnow()).reports
    collect.deliver_all(rt, reports, post=True)
    (posted,) = [m for m in slack.messages(acme.slack_channel) if m.text.startswith("Weekly status")]
    (button,) = [e for b in posted.blocks if b["type"] == "actions" for e in b["elements"]]
    assert (button["text"]["text"], button["value"]) == ("Draft change request", "acme-churn")

    form = form_opened_by(rt, slack, button, SPONSOR, acme.slack_channel)
    filled = {b["block_id"]: b["element"].get("initial_value") for b in form["blocks"]}
    assert form["callback_id"] == "cr_submit" and form["private_metadata"] == "acme-churn:C0ACMECHURN"
    assert filled["title"] == f"Scope drift in poc: {extra}"
    assert filled["scope_added"] == f"{extra} Second model: gradient boosting"

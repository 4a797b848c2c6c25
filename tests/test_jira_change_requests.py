"""Change requests filed in Jira, against the Jira stand-in through the real jira client, on SQLite and
PostgreSQL: who filed one (a person of the engagement, or an outside requester), what was filed
(frozen under a digest: an edit before the decision is a new revision asked again, an edit after it
a reported difference), an issue without an estimate, and issues deleted or moved to another
project."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import no_prefect, register, wait_until
from sqlalchemy import func, select

from phasegate.changes import jira_import as cr_import
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import PolicyError
from phasegate.ledger import audit, change_decisions, history
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import ChangeRequestRow, utcnow
from phasegate.messages import changes as cr_messages
from phasegate.ops.servers import serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import change_log, collect, render
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import SlackDeps, create_app
from phasegate.states import AuditKind, ChangeRequestState, Outcome, Via
from phasegate.tasks import change_requests as cr_tasks
from phasegate.tasks.kickoff import begin_phase, record_baseline

PM, SPONSOR, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0VENDLEAD"
LABEL = "change-request"
PRIYA = {"accountId": "557058:priya", "displayName": "Priya Natarajan", "emailAddress": "priya@northwind.example"}
OUTSIDER = {"accountId": "557058:sam", "displayName": "Sam Outsider"}


def with_jira_people(acme: Engagement, **person: str) -> Engagement:
    """acme importing labelled issues, with the vendor lead's Jira account beside each of her entries."""
    data = json.loads(acme.model_dump_json())
    data["jira"]["change_requests"] = {"label": LABEL}
    for phase in data["phases"].values():
        for approver in phase["gate"]["approvers"]:
            if approver["slack_user"] == VENDOR_LEAD:
                approver.update(person)
    return Engagement.model_validate(data)


@pytest.fixture
def engagement(acme: Engagement) -> Engagement:
    return with_jira_people(acme, jira_account_id="557058:priya")


def running(rt: Runtime, engagement: Engagement) -> None:
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, PM, None)
    record_baseline.fn(rt, engagement, Phase.POC)


def issue(jira: JiraStandin, summary: str, *, reporter: dict[str, str] = OUTSIDER, estimate: str | None = None,
          description: str = "") -> str:
    fields: dict[str, object] = {"reporter": reporter, "description": description}
    if estimate is not None:
        fields["timetracking"] = {"originalEstimate": estimate}
    return jira.add_issue("ACME", summary, labels=[LABEL], fields=fields)


def run_import(rt: Runtime, engagement: Engagement) -> cr_import.Imported:
    with no_prefect():  # no Prefect: the flows do not start, which the result says
        return cr_import.import_requests(rt.sessions, engagement, rt.tracker(engagement))


def the_cr(rt: Runtime, number: int = 1) -> ChangeRequestRow:
    with transaction(rt.sessions) as session:
        cr = crs.by_number(session, "acme-churn", number)
        session.expunge(cr)
        return cr


def answer(rt: Runtime, cr_id: int, approver: str, outcome: Outcome = Outcome.APPROVE,
           reason: str = "") -> change_decisions.Answered:
    with transaction(rt.sessions) as session:
        return change_decisions.answer(session, cr_id, approver=approver, outcome=outcome, reason=reason,
                                       via=Via.CLI)


def prompt_text(rt: Runtime, cr_id: int) -> str:
    with transaction(rt.sessions) as session:
        _, blocks = cr_messages.render(session, crs.by_id(session, cr_id))
    return json.dumps(blocks, ensure_ascii=False)


def edit(rt: Runtime, engagement: Engagement, key: str, **fields: Any) -> None:
    """An edit made in Jira by a person, through the real client."""
    rt.tracker(engagement).client.issue(key).update(fields=fields)


def events(rt: Runtime, kind: AuditKind) -> list[dict[str, Any]]:
    with transaction(rt.sessions) as session:
        return [dict(e.payload) for e in audit.events(session, "acme-churn", kind)]


def count_crs(rt: Runtime) -> int:
    with transaction(rt.sessions) as session:
        return session.scalar(select(func.count()).select_from(ChangeRequestRow)) or 0


# -- who filed it --------------------------------------------------------------------------------

@pytest.mark.parametrize(("person", "reporter"), [
    ({"jira_account_id": "557058:priya"}, PRIYA),
    ({"jira_email": "Priya@Northwind.example"}, PRIYA),
    ({"jira_account_id": "pnatarajan"}, {"name": "pnatarajan", "key": "JIRAUSER10100", "displayName": "Priya N."}),
], ids=["account-id", "email", "datacenter-user-name"])
def test_a_person_who_filed_in_jira_cannot_approve_it(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                                      person: dict[str, str], reporter: dict[str, str]) -> None:
    engagement = with_jira_people(acme, **person)
    running(rt, engagement)
    issue(jira, "Add a churn-reason classifier", reporter=reporter, estimate="3d")
    assert run_import(rt, engagement).filed == [("ACME-1", 1)]
    cr = the_cr(rt)
    assert cr.requested_by == VENDOR_LEAD
    with pytest.raises(PolicyError, match="U0VENDLEAD requested acme-churn/CR-1 and so cannot approve it"):
        answer(rt, cr.id, VENDOR_LEAD)
    assert "filed by <@U0VENDLEAD> in Jira" in prompt_text(rt, cr.id)


def test_an_unknown_reporter_is_an_outside_requester(rt: Runtime, engagement: Engagement,
                                                     jira: JiraStandin) -> None:
    running(rt, engagement)
    issue(jira, "Add a churn-reason classifier", reporter=OUTSIDER, estimate="3d")
    run_import(rt, engagement)
    cr = the_cr(rt)
    assert cr.requested_by == "jira:Sam Outsider"
    text = prompt_text(rt, cr.id)
    assert "filed by Sam Outsider, an outside requester, in Jira (ACME-1)" in text
    assert "<@jira:" not in text
    answer(rt, cr.id, SPONSOR)
    assert answer(rt, cr.id, VENDOR_LEAD).decided is ChangeRequestState.APPROVED


def test_two_people_with_one_jira_account_is_a_file_error(acme: Engagement) -> None:
    data = json.loads(with_jira_people(acme, jira_account_id="557058:priya").model_dump_json())
    data["phases"]["poc"]["gate"]["approvers"][0]["jira_account_id"] = "557058:priya"
    with pytest.raises(ValueError, match="Jira account 557058:priya is given for both U0SPONSOR1 and U0VENDLEAD"):
        Engagement.model_validate(data)


def test_a_file_without_jira_accounts_is_stored_as_before(acme: Engagement) -> None:
    """Unset, the new keys stay out of the stored file, so a running engagement's digest is unchanged."""
    stored = json.dumps(acme.model_dump(mode="json"))
    assert "jira_account_id" not in stored and "jira_email" not in stored and "hours_per_day" not in stored
    assert "jira_account_id" in json.dumps(with_jira_people(acme, jira_account_id="a-1").model_dump(mode="json"))


# -- the estimate ----------------------------------------------------------------------------------

def test_an_issue_without_an_estimate_is_assessed_as_not_estimated(rt: Runtime, engagement: Engagement,
                                                                  jira: JiraStandin) -> None:
    running(rt, engagement)
    issue(jira, "Add a churn-reason classifier")
    issue(jira, "Score weekly instead of monthly", estimate="1w 2d")
    run_import(rt, engagement)
    unestimated, estimated = the_cr(rt, 1), the_cr(rt, 2)
    text = prompt_text(rt, unestimated.id)
    assert "*effort* not estimated" in text and "*cost* not estimated" in text
    assert "Cost: not estimated" in text and "Schedule: not estimated" in text
    assert "effort* 0 days" not in text and "Cost: 0 EUR" not in text
    assert (estimated.effort_days, estimated.cost) == (7.0, 0.0)
    text = prompt_text(rt, estimated.id)
    assert "*effort* 7 days" in text and "*cost* not estimated" in text and "Cost: not estimated" in text
    with transaction(rt.sessions) as session:  # `cr log`
        rows = change_log.rows(history.change_log(session, "acme-churn"))
    assert [row[8:11] for row in rows] == [["not estimated"] * 3, ["7", "not estimated", "not estimated"]]


# -- an edit in Jira -------------------------------------------------------------------------------

def test_an_edit_before_the_decision_is_a_new_revision_asked_again(rt: Runtime, engagement: Engagement,
                                                                  jira: JiraStandin, slack: SlackStandin) -> None:
    running(rt, engagement)
    key = issue(jira, "Add a churn-reason classifier", estimate="3d", description="Support asks why.")
    run_import(rt, engagement)
    cr = the_cr(rt)
    cr_tasks.post_prompt.fn(rt, cr.id)  # what the request's flow does first
    first_prompt = the_cr(rt).message_ts
    assert first_prompt is not None
    answer(rt, cr.id, SPONSOR)  # one of the two answers the quorum needs

    edit(rt, engagement, key, summary="Add a churn-reason classifier and a dashboard",
         timetracking={"originalEstimate": "80d"})
    result = run_import(rt, engagement)
    revised = the_cr(rt)
    assert (revised.revision, revised.title, revised.effort_days) == (
        2, "Add a churn-reason classifier and a dashboard", 80.0)
    assert revised.state is ChangeRequestState.ASSESSED and revised.message_ts is None
    assert result.filed == [] and result.revised == [(key, 1)]
    (change,) = events(rt, AuditKind.CR_REVISED)
    assert change["revision"] == 2 and "estimate: 3 → 80 days" in change["changes"]
    assert len(events(rt, AuditKind.CR_ASSESSED)) == 2

    # The sponsor's answer was to revision 1: the vendor lead's approval alone decides nothing.
    assert answer(rt, cr.id, VENDOR_LEAD).decided is None
    with transaction(rt.sessions) as session:
        assert [d.approver for d in crs.decisions(session, cr.id)] == [VENDOR_LEAD]

    cr_tasks.post_prompt.fn(rt, cr.id)  # the woken flow asks again
    prompts = [m for m in slack.messages(engagement.slack_channel) if "CR-1" in m.text]
    assert len(prompts) == 2 and the_cr(rt).message_ts not in (None, first_prompt)
    new_prompt = json.dumps(prompts[-1].blocks, ensure_ascii=False)
    assert "Revision 2: " in new_prompt and "estimate: 3 → 80 days" in new_prompt and "*effort* 80 days" in new_prompt
    assert "Answers to revision 1 no longer count" in new_prompt
    old_prompt = slack.message(engagement.slack_channel, str(first_prompt))
    assert "Superseded* by revision 2" in json.dumps(old_prompt.blocks)
    assert not [b for b in old_prompt.blocks if b["type"] == "actions"]  # no buttons left to click

    assert run_import(rt, engagement).revised == []  # unchanged since: nothing more
    assert answer(rt, cr.id, SPONSOR).decided is ChangeRequestState.APPROVED


def test_a_click_on_an_earlier_revisions_prompt_is_refused(rt: Runtime, engagement: Engagement,
                                                           jira: JiraStandin, slack: SlackStandin) -> None:
    running(rt, engagement)
    key = issue(jira, "Add a churn-reason classifier", estimate="3d")
    run_import(rt, engagement)
    cr = the_cr(rt)
    cr_tasks.post_prompt.fn(rt, cr.id)
    old = slack.message(engagement.slack_channel, str(the_cr(rt).message_ts))
    edit(rt, engagement, key, timetracking={"originalEstimate": "80d"})
    run_import(rt, engagement)  # revision 2: its prompt is not posted yet

    (approve,) = [e for b in old.blocks if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == "cr:approve"]
    deps = SlackDeps(signing_secret="test-secret", sessions=rt.sessions, chat=rt.chat, resume=lambda _run: None)
    handle = serve_in_thread(create_app(deps))
    try:
        for approver in (SPONSOR, VENDOR_LEAD):  # on the 3-day prompt, which no longer stands
            clicker = SlackUser(approver, endpoint=handle.url, signing_secret="test-secret", slack=slack)
            payload = {"type": "block_actions", "user": {"id": approver}, "trigger_id": slack.issue_trigger_id(),
                       "response_url": slack.response_url(), "channel": {"id": engagement.slack_channel},
                       "container": {"type": "message", "channel_id": engagement.slack_channel,
                                     "message_ts": old.ts},
                       "actions": [{"type": "button", "action_id": approve["action_id"], "value": approve["value"],
                                    "block_id": f"cr-{cr.id}", "action_ts": "1.0"}]}
            clicker.send(payload).raise_for_status()
            said = wait_until(lambda url=payload["response_url"]: slack.said_to(url), what="what the clicker is told")
            assert "earlier revision" in said[0], said
    finally:
        handle.stop()
    with transaction(rt.sessions) as session:
        assert crs.decisions(session, cr.id, every_revision=True) == []
        assert crs.by_id(session, cr.id).state is ChangeRequestState.ASSESSED


def test_the_filed_content_is_frozen_under_a_digest(rt: Runtime, engagement: Engagement,
                                                    jira: JiraStandin) -> None:
    running(rt, engagement)
    key = issue(jira, "Add a churn-reason classifier", estimate="3d", description="Support asks why.")
    run_import(rt, engagement)
    edit(rt, engagement, key, description="Support asks why, and marketing too.")
    run_import(rt, engagement)
    (submitted,) = events(rt, AuditKind.CR_SUBMITTED)
    (revised,) = events(rt, AuditKind.CR_REVISED)
    assert submitted["jira"]["content"] == {"title": "Add a churn-reason classifier",
                                            "rationale": "Support asks why.", "estimate_days": 3.0}
    assert revised["content"]["rationale"] == "Support asks why, and marketing too."
    assert len(submitted["jira"]["digest"]) == 64 and revised["digest"] not in (submitted["jira"]["digest"], "")
    assert revised["previous_digest"] == submitted["jira"]["digest"]


def test_a_description_in_atlassian_document_format_is_read_as_text(rt: Runtime, engagement: Engagement,
                                                                   jira: JiraStandin) -> None:
    """Jira Cloud's v3 search sends descriptions as a document tree; its edits must count like any other."""
    def doc(*paragraphs: str) -> dict[str, Any]:
        return {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs]}

    running(rt, engagement)
    key = jira.add_issue("ACME", "Add a churn-reason classifier", labels=[LABEL],
                         fields={"reporter": OUTSIDER, "description": doc("Support asks why.", "Soon.")})
    run_import(rt, engagement)
    assert the_cr(rt).rationale == "Support asks why.\nSoon."
    edit(rt, engagement, key, description=doc("Support asks why.", "By March."))
    assert run_import(rt, engagement).revised == [(key, 1)]
    assert the_cr(rt).rationale == "Support asks why.\nBy March."


def test_an_edit_after_approval_is_a_reported_difference(rt: Runtime, engagement: Engagement,
                                                         jira: JiraStandin) -> None:
    running(rt, engagement)
    key = issue(jira, "Add a churn-reason classifier", estimate="3d")
    run_import(rt, engagement)
    cr = the_cr(rt)
    answer(rt, cr.id, SPONSOR)
    answer(rt, cr.id, VENDOR_LEAD)

    edit(rt, engagement, key, timetracking={"originalEstimate": "80d"})
    result = run_import(rt, engagement)
    after = the_cr(rt)
    assert (after.state, after.revision, after.effort_days) == (ChangeRequestState.APPROVED, 1, 3.0)
    assert result.problems == [] and result.filed == []
    (line,) = result.reported
    assert "acme-churn/CR-1 is approved" in line and f"{key} changed in Jira since" in line
    assert "estimate: 3 → 80 days" in line and result.revised == []
    (difference,) = events(rt, AuditKind.CR_JIRA_CHANGED)
    assert difference["changes"] == ["estimate: 3 → 80 days"]
    assert run_import(rt, engagement).reported == []  # said once


# -- deleted and moved issues ----------------------------------------------------------------------

def test_a_deleted_issue_is_reported(rt: Runtime, engagement: Engagement, jira: JiraStandin) -> None:
    running(rt, engagement)
    key = issue(jira, "Add a churn-reason classifier", estimate="3d")
    run_import(rt, engagement)
    jira.delete_issue(key)
    result = run_import(rt, engagement)
    assert result.problems == [] and result.filed == []
    (line,) = result.reported
    assert f"{key} (acme-churn/CR-1) was deleted in Jira" in line
    assert [e["issue"] for e in events(rt, AuditKind.CR_JIRA_GONE)] == [key]
    assert run_import(rt, engagement).reported == []
    assert the_cr(rt).state is ChangeRequestState.ASSESSED  # still open: the approvers decide


def test_what_is_reported_reaches_the_prompts_thread_and_the_weekly_report(
        rt: Runtime, engagement: Engagement, jira: JiraStandin, slack: SlackStandin) -> None:
    running(rt, engagement)
    key = issue(jira, "Add a churn-reason classifier", estimate="3d")
    with no_prefect():
        (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports  # the weekly collection files it
    cr = the_cr(rt)
    cr_tasks.post_prompt.fn(rt, cr.id)
    answer(rt, cr.id, SPONSOR)
    answer(rt, cr.id, VENDOR_LEAD)
    edit(rt, engagement, key, timetracking={"originalEstimate": "80d"})
    with no_prefect():
        (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports
    (line,) = report.change_requests.jira
    assert "estimate: 3 → 80 days" in line
    assert any("estimate: 3 → 80 days" in text for _, lines in render.sections(report) for text in lines)
    (reply,) = slack.thread(engagement.slack_channel, str(the_cr(rt).message_ts))
    assert "acme-churn/CR-1 is approved" in reply.text and "estimate: 3 → 80 days" in reply.text
    with no_prefect():
        (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports
    assert report.change_requests.jira == []  # said once
    assert len(slack.thread(engagement.slack_channel, str(the_cr(rt).message_ts))) == 1


def test_a_moved_issue_is_never_filed_again_nor_labelled_in_another_project(
        rt: Runtime, engagement: Engagement, jira: JiraStandin) -> None:
    jira.add_project("GLOBEX")
    running(rt, engagement)
    key = issue(jira, "Add a churn-reason classifier", estimate="3d")
    run_import(rt, engagement)
    cr = the_cr(rt)

    away = jira.move_issue(key, "GLOBEX")
    moved_away = run_import(rt, engagement)
    assert moved_away.filed == []
    answer(rt, cr.id, SPONSOR)
    answer(rt, cr.id, VENDOR_LEAD)
    cr_tasks.update_jira.fn(rt, engagement, cr.id)  # the flow's step after the decision
    assert "phasegate-cr-approved" not in jira.issue(away)["fields"]["labels"]

    back = jira.move_issue(away, "ACME")
    assert back != key
    moved_back = run_import(rt, engagement)
    assert moved_back.filed == [] and count_crs(rt) == 1
    assert the_cr(rt).jira_issue == back
    (line,) = moved_away.reported
    assert f"{key} (acme-churn/CR-1) was moved to GLOBEX as {away}" in line
    (line,) = moved_back.reported
    assert f"{away} (acme-churn/CR-1) is back in ACME as {back}" in line
    assert [e["to"] for e in events(rt, AuditKind.CR_JIRA_MOVED)] == [away, back]

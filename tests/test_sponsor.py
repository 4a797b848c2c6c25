"""Issue 20 items 2-6 and 8: what stays in-house, the handoff trap, the vendor's named team, data
handling, ROI in the sponsor's terms and plain words; over the real ledger (SQLite and PostgreSQL),
the Slack and Jira stand-ins over HTTP and signed Slack requests."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from helpers import posted_gate, register, with_changes

from phasegate.configs.loader import parse_engagement
from phasegate.configs.practices import planning_warnings
from phasegate.configs.schema import Engagement, Phase
from phasegate.configs.template import engagement_template
from phasegate.errors import PolicyError
from phasegate.ledger import audit, change_decisions, engagements, gates, handoff, spend
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import utcnow
from phasegate.messages import changes as cr_messages
from phasegate.messages.prompts import render
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect
from phasegate.reports import render as report_render
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.standins.blockkit import validate_blocks
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import AuditKind, ChangeSource, Outcome, Rag, Via
from phasegate.tasks.kickoff import begin_phase, record_baseline

PM, SPONSOR, TECH_LEAD, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0TECHLEAD", "U0VENDLEAD"
SECRET = "test-secret"
TEMPLATE = engagement_template("new-thing", today=dt.date(2026, 11, 28))


def findings(rt: Runtime, engagement_id: str = "acme-churn", now: dt.datetime | None = None) -> tuple[object, set[str]]:
    (report,) = collect.collect(rt, [engagement_id], now or utcnow()).reports
    return report, {f.rule for f in report.findings}


def in_development(rt: Runtime, acme: Engagement, jira: JiraStandin) -> None:
    """G1 answered GO by one from each side, then development started (the real phase tasks)."""
    gate_id = posted_gate(rt, acme, jira=jira).id
    with transaction(rt.sessions) as session:
        for who in (SPONSOR, VENDOR_LEAD):
            gates.answer(session, gate_id, approver=who, outcome=Outcome.GO, reason="", via=Via.CLI)
    begin_phase.fn(rt, acme, Phase.DEVELOPMENT, PM, None)


# Item 2: what stays in-house ----------------------------------------------------------------------

def test_work_the_guide_keeps_in_house_is_warned_when_given_to_the_vendor() -> None:
    engagement = parse_engagement(TEMPLATE, "f.yaml")
    assert planning_warnings(engagement) == []
    development = {m.key: m for m in engagement.phases.development.milestones}
    assert development["api-interface"].owner is not None and development["api-interface"].owner.value == "client"
    vendor_does_it = parse_engagement(
        TEMPLATE.replace("title: Problem definition and KPIs agreed, owner: client",
                         "title: Problem definition and KPIs agreed, owner: vendor")
        .replace("title: Production integration into the product's backend, owner: client",
                 "title: Production integration into the product's backend, owner: vendor"), "f.yaml")
    found = {w.path: str(w) for w in planning_warnings(vendor_does_it)}
    assert set(found) == {"phases.poc.milestones[0].owner", "phases.development.milestones[4].owner"}
    assert "problem definition and KPIs (problem-kpis) is given to the vendor" in found["phases.poc.milestones[0].owner"]
    assert "the guide: keep production integration in-house" in found["phases.development.milestones[4].owner"]
    governance = with_changes(engagement, phases__poc__milestones=[
        {"key": "pii", "title": "PII anonymisation of the customer data", "owner": "vendor"}])
    assert any("data access and governance" in str(w) for w in planning_warnings(governance))


def test_the_api_interface_and_mlops_from_sprint_1_are_asked_of_the_development_plan() -> None:
    engagement = parse_engagement(TEMPLATE, "f.yaml")
    bare = with_changes(engagement, phases__development__milestones=[
        {"key": "staging-pipeline", "title": "End-to-end pipeline deployed in staging"},
        {"key": "hardening", "title": "Production hardening done"}])
    found = [str(w) for w in planning_warnings(bare)]
    assert found == [
        "phases.development.milestones: no milestone for the API interface between the product and the ML layer — "
        "the guide: the outsourced team builds the ML layer and the client's team the product; the key to success "
        "is a clean API interface between the two, agreed early",
        "phases.development.milestones: no development milestone for model versioning, retraining automation, "
        "drift monitoring — the guide: deployment, versioning, retraining automation and monitoring belong in the "
        "architecture from Sprint 1, not in the final week: models drift once they meet real data"]
    drift_only = with_changes(engagement, phases__development__milestones=[
        *[m.model_dump(mode="json") for m in engagement.phases.development.milestones
          if m.key != "monitoring-retraining"],
        {"key": "retrain", "title": "Weekly retraining automated"}])
    assert [w.problem for w in planning_warnings(drift_only)] == ["no development milestone for drift monitoring"]


def test_the_new_fields_are_optional_and_an_old_file_keeps_its_digest(acme: Engagement) -> None:
    old = acme.model_dump(mode="json")
    for key in ("vendor_team", "data_handling"):
        del old[key]
    del old["budget"]["first_year_run_cost"]
    del old["metrics"][0]["meaning"], old["metrics"][1]["meaning"]
    for phase in old["phases"].values():
        for m in phase["milestones"]:
            m.pop("owner", None)
    again = Engagement.model_validate(old)
    assert again.model_dump(mode="json") == old  # nothing added: the stored file's digest is unchanged
    assert again.vendor_team == [] and again.data_handling is None and again.budget.first_year_run_cost is None


# Item 3: the handoff trap -------------------------------------------------------------------------

def test_the_knowledge_transfer_drill_is_the_clients_to_attest_by_default(rt: Runtime) -> None:
    text = TEMPLATE.replace("attestation: true,\n         attesting_side: client}", "attestation: true}")
    engagement = parse_engagement(text, "f.yaml")
    drill = next(m for m in engagement.phases.handover.milestones if m.key == "knowledge-transfer-drill")
    assert drill.attesting_side == "client"
    explicit = parse_engagement(text.replace("without the vendor, attestation: true}",
                                             "without the vendor, attestation: true, attesting_side: either}"), "f.yaml")
    assert any("may attest the knowledge-transfer drill" in str(w) for w in planning_warnings(explicit))
    register(rt, engagement)
    with transaction(rt.sessions) as session, pytest.raises(PolicyError, match="attested by the client side"):
        engagements.attest(session, engagement, Phase.HANDOVER, "knowledge-transfer-drill", by="U0VENDLEAD",
                           note="", via=Via.CLI)
    with transaction(rt.sessions) as session:
        engagements.attest(session, engagement, Phase.HANDOVER, "knowledge-transfer-drill", by="U0SPONSOR1",
                           note="drill on staging", via=Via.CLI)


def test_the_running_checks_are_asked_from_the_pocs_first_week(
        rt: Runtime, acme: Engagement, jira: JiraStandin) -> None:
    """Knowledge transfer starts on day 1 (the guide's handoff trap), not at development."""
    posted_gate(rt, acme, jira=jira)
    report, _ = findings(rt)
    assert report.phase is Phase.POC
    assert [(c.key, c.holds) for c in report.sponsor.checks] == [("repository", None), ("decisions", None),
                                                                 ("pairing", None)]
    assert "The vendor works in our repositories: not confirmed this week" in report_render.markdown(report)


def test_during_development_the_report_asks_for_the_running_checks_and_shows_the_clients_answers(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin) -> None:
    in_development(rt, acme, jira)
    report, rules = findings(rt)
    assert report.phase is Phase.DEVELOPMENT
    assert [(c.key, c.holds) for c in report.sponsor.checks] == [("repository", None), ("decisions", None),
                                                                 ("pairing", None)]
    text = report_render.markdown(report)
    assert "Knowledge transfer (checked by the client each week)" in text
    assert "The vendor works in our repositories: not confirmed this week" in text
    assert "`/phasegate check acme-churn CHECK` in Slack" in text
    with transaction(rt.sessions) as session, pytest.raises(PolicyError, match="client-side approvers"):
        handoff.attest_check(session, acme, "repository", by=VENDOR_LEAD, holds=True, via=Via.CLI)
    with transaction(rt.sessions) as session:
        handoff.attest_check(session, acme, "repository", by=TECH_LEAD, holds=True, via=Via.CLI)
        handoff.attest_check(session, acme, "pairing", by=SPONSOR, holds=False, via=Via.CLI,
                             note="no pairing since the team changed")
    report, rules = findings(rt)
    said = {c.key: (c.holds, c.attested_by) for c in report.sponsor.checks}
    assert said == {"repository": (True, "Omar Haddad"), "decisions": (None, None), "pairing": (False, "Dana Whitfield")}
    assert "knowledge-transfer" in rules and report.rag in (Rag.AMBER, Rag.RED)
    assert ":x: Our engineers pair with the vendor's: no, says Dana Whitfield" in report_render.markdown(report)
    later, _ = findings(rt, now=utcnow() + dt.timedelta(days=8))  # a week on, each is asked for again
    assert [c.holds for c in later.sponsor.checks] == [None, None, None]
    with transaction(rt.sessions) as session:
        events = audit.events(session, "acme-churn", AuditKind.CHECK_ATTESTED)
    assert [(e.subject, e.payload["by"], e.payload["holds"]) for e in events] == [
        ("repository", TECH_LEAD, True), ("pairing", SPONSOR, False)]
    deliveries, failures = collect.deliver_all(rt, [report], post=True)
    assert failures == {}
    (posted,) = slack.messages(acme.slack_channel)[-1:]
    assert "Knowledge transfer" in json.dumps(posted.blocks) and validate_blocks(posted.blocks) == []


# Item 5: data handling ----------------------------------------------------------------------------

def test_data_deletion_is_reminded_before_its_deadline_and_attested_by_the_client_after_it(
        rt: Runtime, acme: Engagement, jira: JiraStandin) -> None:
    deadline = acme.data_handling.deletion_deadline if acme.data_handling else dt.date.today()
    posted_gate(rt, acme, jira=jira)
    at = lambda day: dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)  # noqa: E731
    early, _ = findings(rt, now=at(deadline - dt.timedelta(days=30)))
    assert early.sponsor.deletion == "later" and "Encryption: AES-256 at rest, TLS 1.2+ in transit." in early.sponsor.data
    due, _ = findings(rt, now=at(deadline - dt.timedelta(days=10)))
    assert due.sponsor.deletion == "due"
    assert any("Reminder: the vendor must delete its copies of the data by 31 Mar 2027 (10 days)" in line
               for line in due.sponsor.data)
    overdue, rules = findings(rt, now=at(deadline + dt.timedelta(days=1)))
    assert overdue.sponsor.deletion == "overdue" and "data-deletion-overdue" in rules and overdue.rag is Rag.RED
    with transaction(rt.sessions) as session, pytest.raises(PolicyError):
        handoff.attest_check(session, acme, "data-deleted", by=VENDOR_LEAD, holds=True, via=Via.CLI)
    with transaction(rt.sessions) as session:
        handoff.attest_check(session, acme, "data-deleted", by=SPONSOR, holds=True, via=Via.CLI,
                             note="vendor's deletion certificate received")
    done, rules = findings(rt, now=at(deadline + dt.timedelta(days=2)))
    assert done.sponsor.deletion == "done" and "data-deletion-overdue" not in rules
    assert any("attested by Dana Whitfield" in line for line in done.sponsor.data)


# Item 6: ROI in the sponsor's terms ---------------------------------------------------------------

def test_metrics_in_business_terms_cost_of_ownership_and_the_80_percent_warning(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    report, rules = findings(rt)
    f1 = next(m for m in report.metrics if m.name == "f1")
    assert f1.meaning == ("Churners flagged before they leave: 88 % of churners (each point is about 40 accounts "
                          "a quarter the retention team can still call)")
    text = report_render.markdown(report)
    assert ":white_check_mark: Churners flagged before they leave: 88 % of churners" in text and "— f1 0.88" in text
    assert "Data readiness assessment (client's work): 1 done" in text  # whose work it is, beside it
    assert report.budget.tco == ("First-year cost of ownership: 1,700,000 EUR = build 600,000 + run 1,100,000 EUR; "
                                 "the build is 35% of it (as the guide expects).")
    assert "near-cap" not in rules
    with transaction(rt.sessions) as session:
        spend.record(session, acme, Phase.POC, "96000", by=PM, note="invoices to date")
    report, rules = findings(rt)
    assert "near-cap" in rules
    assert ("PoC spend against its time-and-materials cap: 96,000 of 120,000 EUR (24,000 EUR left; 80% used, past "
            "the 80% warning mark)") in report.budget.near
    said = report_render.markdown(report)
    assert said.count("past the 80% warning mark") == 1 and ":warning: PoC spend against its" in said  # once, marked
    with transaction(rt.sessions) as session:
        _, blocks = render(session, gates.by_id(session, gate.id))
    assert "80% used, past the 80% warning mark" in json.dumps(blocks)  # the gate prompt's budget says it too
    assert ("*In business terms*\\nChurners flagged before they leave: 88 % of churners (f1 0.88): each point is "
            "about 40 accounts a quarter") in json.dumps(blocks)


def test_time_to_value_is_never_negative(rt: Runtime, acme: Engagement, jira: JiraStandin) -> None:
    early = with_changes(acme, start_date=dt.date.today() + dt.timedelta(days=30))  # first GO before start_date
    gate_id = posted_gate(rt, early, jira=jira).id
    with transaction(rt.sessions) as session:
        for who in (SPONSOR, VENDOR_LEAD):
            gates.answer(session, gate_id, approver=who, outcome=Outcome.GO, reason="", via=Via.CLI)
    report, _ = findings(rt)
    assert report.time_to_value_weeks == 0
    assert "First GO in the first week (or before the planned start date)." in report_render.markdown(report)


# Item 8: plain words ------------------------------------------------------------------------------

def test_the_gate_prompt_in_a_sponsors_words(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                             slack: SlackStandin) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    with transaction(rt.sessions) as session:
        gates.answer(session, gate.id, approver=VENDOR_LEAD, outcome=Outcome.GO, reason="", via=Via.CLI)
        _, blocks = render(session, gates.by_id(session, gate.id))
    text = json.dumps(blocks, ensure_ascii=False)
    assert "*ACME churn prediction* · as planned" in text and "timebox 1" not in text
    assert "Priya Natarajan (<@U0VENDLEAD>, vendor lead) GO via cli" in text and "vendor vendor" not in text
    assert "for poc timebox" not in text and "EUR left" in text
    (details,) = [b for b in blocks if b.get("accessory", {}).get("type") == "overflow"]
    assert details["text"]["text"].startswith("_Details:")
    assert details["accessory"]["options"][0]["text"]["text"] == gate.digest


def test_the_change_request_prompt_names_who_must_still_approve(rt: Runtime, acme: Engagement) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, PM, None)
    record_baseline.fn(rt, acme)
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, "acme-churn", Draft(title="Explain churn drivers", effort_days=5, schedule_days=7,
                                                        cost=15_000), requested_by=TECH_LEAD, source=ChangeSource.CLI)
        crs.assess(session, cr)
        cr_id = cr.id
    with transaction(rt.sessions) as session:
        change_decisions.answer(session, cr_id, approver=SPONSOR, outcome=Outcome.APPROVE, reason="", via=Via.CLI)
        _, blocks = cr_messages.render(session, crs.by_id(session, cr_id))
    text = json.dumps(blocks, ensure_ascii=False)
    assert "*Waiting for* Priya Natarajan (<@U0VENDLEAD>)" in text  # the requester (tech lead) is not asked
    assert "Omar Haddad (<@U0TECHLEAD>)" not in text.split("*Waiting for*")[1]
    assert "Dana Whitfield (<@U0SPONSOR1>, client sponsor) APPROVE via cli" in text
    assert "*cost* 15,000 EUR" in text and "What it changes in the approved plan" in text
    assert "Assessment against baseline" not in text and "booked" not in text
    assert validate_blocks(blocks) == []


"""Change requests in the ledger, on SQLite and PostgreSQL: filing, the assessment's arithmetic,
approval under the gate policy, what an approval changes, and refusals that write nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from helpers import register, with_changes
from sqlalchemy import func, select

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import GateClosed, InvalidRequest, NotFound, PolicyError
from phasegate.ledger import change_decisions, engagements, phases
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AuditEventRow, BaselineRow, ChangeDecisionRow, ChangeRequestRow
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Draft
from phasegate.states import AuditKind, ChangeRequestState, ChangeSource, Outcome, Via
from phasegate.tasks.kickoff import begin_phase, record_baseline

PM, SPONSOR, TECH_LEAD, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0TECHLEAD", "U0VENDLEAD"


def running(rt: Runtime, engagement: Engagement) -> None:
    """The engagement registered, its PoC started and its first baseline recorded (as the flow does)."""
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, PM, None)
    record_baseline.fn(rt, engagement)


def file(rt: Runtime, draft: Draft, by: str = PM, engagement_id: str = "acme-churn") -> int:
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, engagement_id, draft, requested_by=by, source=ChangeSource.CLI)
        crs.assess(session, cr)
        return cr.id


def answer(rt: Runtime, cr_id: int, approver: str, outcome: Outcome, reason: str = "") -> change_decisions.Answered:
    with transaction(rt.sessions) as session:
        return change_decisions.answer(session, cr_id, approver=approver, outcome=outcome, reason=reason,
                                       via=Via.CLI)


def counts(rt: Runtime) -> tuple[int, int, int]:
    with transaction(rt.sessions) as session:
        return (session.scalar(select(func.count()).select_from(ChangeRequestRow)) or 0,
                session.scalar(select(func.count()).select_from(ChangeDecisionRow)) or 0,
                session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)


def test_assessment_reports_slip_budget_and_growth(rt: Runtime, acme: Engagement) -> None:
    running(rt, acme)
    cr_id = file(rt, Draft(title="Explain churn drivers", rationale="The sponsor wants SHAP plots",
                           scope_added=("shap-explanations", "driver-dashboard"), effort_days=12,
                           schedule_days=14, cost=70_000))
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        assessment = crs.assessment_of(cr)
        assert cr.state is ChangeRequestState.ASSESSED and cr.name == "acme-churn/CR-1"
    assert assessment is not None
    assert (assessment.days_after, assessment.planned_days, assessment.max_days) == (70, 56, 84)
    assert assessment.past_plan and not assessment.past_max
    assert assessment.new_ends_on == acme.start_date + dt.timedelta(weeks=8, days=14)
    assert (assessment.items_original, assessment.items_after) == (14, 16)  # a baseline of 14 items, 2 added
    assert round(assessment.growth_percent, 1) == 14.3
    assert assessment.over_budget and assessment.remaining_after == -10_000
    text = "\n".join(assessment.lines())
    assert "slips by 14 days" in text and "past its planned 8 weeks" in text
    assert "over budget by 10,000 EUR" in text and "+14 % cumulative growth" in text


def test_removing_a_required_milestone_touches_the_exit_criterion(rt: Runtime, acme: Engagement) -> None:
    running(rt, acme)
    cr_id = file(rt, Draft(title="Drop the PoC report", scope_removed=("poc-report",), cost=0))
    with transaction(rt.sessions) as session:
        assessment = crs.assessment_of(crs.by_id(session, cr_id))
    assert assessment is not None
    assert assessment.milestones == ["poc-report"]
    assert assessment.exit_criteria == ["all required milestones done"]
    assert assessment.items_after == 13 and not assessment.over_budget


def test_quorum_sides_and_self_approval_then_a_new_baseline(rt: Runtime, acme: Engagement) -> None:
    running(rt, acme)
    cr_id = file(rt, Draft(title="Two more weeks for labelling", schedule_days=14, cost=20_000,
                           scope_added=("label-audit",)), by=TECH_LEAD)
    with pytest.raises(PolicyError, match="U0TECHLEAD requested acme-churn/CR-1 and so cannot approve it"):
        answer(rt, cr_id, TECH_LEAD, Outcome.APPROVE)
    with pytest.raises(PolicyError, match="U0PMACME01 is not an approver of acme-churn/CR-1"):
        answer(rt, cr_id, PM, Outcome.APPROVE)
    with pytest.raises(PolicyError, match="REJECT needs a written reason"):
        answer(rt, cr_id, SPONSOR, Outcome.REJECT, "  ")
    with pytest.raises(PolicyError, match="GO is not an answer at acme-churn/CR-1"):
        answer(rt, cr_id, SPONSOR, Outcome.GO)
    first = answer(rt, cr_id, SPONSOR, Outcome.APPROVE)
    assert first.recorded and first.decided is None  # quorum is 2 with one from each side
    assert not answer(rt, cr_id, SPONSOR, Outcome.APPROVE).recorded  # a double click
    done = answer(rt, cr_id, VENDOR_LEAD, Outcome.APPROVE)
    assert done.decided is ChangeRequestState.APPROVED
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        assert cr.state is ChangeRequestState.APPROVED and cr.baseline_version == 2
        v2 = crs.baseline(session, "acme-churn")
        assert v2 is not None and v2.version == 2
        assert v2.scope["items"]["poc"][-1] == "label-audit" and v2.scope["change_spent"] == 20_000
        box = phases.current_timebox(session, "acme-churn", Phase.POC)
        assert box.ends_on == acme.start_date + dt.timedelta(weeks=8, days=14)
        assert crs.days_booked(session, "acme-churn", Phase.POC) == 70
        kinds = [e.kind for e in session.scalars(select(AuditEventRow).where(AuditEventRow.subject.in_(
            ["acme-churn/CR-1", "poc", "v2"])).order_by(AuditEventRow.id))]
    assert kinds[-7:] == [AuditKind.CR_SUBMITTED, AuditKind.CR_ASSESSED, AuditKind.CR_DECISION_RECORDED,
                          AuditKind.CR_DECISION_RECORDED, AuditKind.TIMEBOX_MOVED, AuditKind.BASELINE_RECORDED,
                          AuditKind.CR_APPROVED]
    with pytest.raises(GateClosed, match="CR-1 was already approved by <@U0SPONSOR1>, <@U0VENDLEAD>"):
        answer(rt, cr_id, TECH_LEAD, Outcome.REJECT, "too late")
    # The next request is assessed against version 2: the budget already spent counts.
    second = file(rt, Draft(title="More data", cost=45_000))
    with transaction(rt.sessions) as session:
        assessment = crs.assessment_of(crs.by_id(session, second))
    assert assessment is not None and assessment.baseline_version == 2 and assessment.over_budget
    assert assessment.spent == 20_000 and assessment.remaining_after == -5_000


def test_rejection_records_the_reasons(rt: Runtime, acme: Engagement) -> None:
    running(rt, acme)
    cr_id = file(rt, Draft(title="A second model", cost=5_000))
    answer(rt, cr_id, SPONSOR, Outcome.REJECT, "not in this PoC")
    result = answer(rt, cr_id, VENDOR_LEAD, Outcome.REJECT, "agreed, later")
    assert result.decided is ChangeRequestState.REJECTED
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        assert cr.closed_reason == "not in this PoC; agreed, later" and cr.baseline_version is None
        assert session.scalar(select(func.count()).select_from(BaselineRow)) == 1


def test_withdrawal_by_the_requester_only(rt: Runtime, acme: Engagement) -> None:
    running(rt, acme)
    cr_id = file(rt, Draft(title="Nice to have"), by=TECH_LEAD)
    with transaction(rt.sessions) as session:
        with pytest.raises(PolicyError, match="only U0TECHLEAD"):
            crs.withdraw(session, cr_id, by=SPONSOR, reason="mine now")
    with transaction(rt.sessions) as session:
        with pytest.raises(PolicyError, match="needs a written reason"):
            crs.withdraw(session, cr_id, by=TECH_LEAD, reason="")
    with transaction(rt.sessions) as session:
        crs.withdraw(session, cr_id, by=TECH_LEAD, reason="covered by CR-2")
    with pytest.raises(GateClosed, match="withdrawn: covered by CR-2"):
        answer(rt, cr_id, SPONSOR, Outcome.APPROVE)


@pytest.mark.parametrize(("draft", "field", "message"), [
    (Draft(title="", cost=1), "title", "needs a title"),
    (Draft(title="x" * 151), "title", "at most 150 characters"),
    (Draft(title="ok", rationale="r" * 3001), "rationale", "at most 3000 characters"),
    (Draft(title="ok", effort_days=-1), "effort_days", "must not be negative"),
    (Draft(title="ok", cost=-5), "cost", "must not be negative"),
    (Draft(title="ok", cost=float("nan")), "cost", "must be a number"),
    (Draft(title="ok", scope_added=("i" * 151,)), "scope_added", "longer than 150"),
    (Draft(title="ok", scope_removed=("no-such-item",)), "scope_removed", "not in the poc baseline"),
    (Draft(title="ok", schedule_days=29), "schedule_days", "past its maximum of 12 weeks"),
    (Draft(title="ok", phase=Phase.DEVELOPMENT, schedule_days=7), "schedule_days", "not the running phase"),
    (Draft(title="a\x00b"), "title", "cannot be recorded: it contains a NUL character"),
    (Draft(title="ok", rationale="lone \ud800"), "rationale", "cannot be recorded: it contains an unpaired surrogate"),
    (Draft(title="ok", scope_added=("item\x00",)), "scope_added", "cannot be recorded"),
    (Draft(title="ok", jira_issue="ACME-" + "1" * 60), "jira_issue", "at most 64 characters"),
])
def test_bad_input_is_refused_and_writes_nothing(rt: Runtime, acme: Engagement, draft: Draft, field: str,
                                                 message: str) -> None:
    running(rt, acme)
    before = counts(rt)
    with pytest.raises(InvalidRequest, match=message) as refused:
        file(rt, draft)
    assert field in refused.value.problems
    assert counts(rt) == before


def test_unknown_or_unstarted_engagements_are_refused(rt: Runtime, acme: Engagement) -> None:
    register(rt, acme)
    before = counts(rt)
    with pytest.raises(NotFound, match="no engagement 'nope'"):
        file(rt, Draft(title="ok"), engagement_id="nope")
    with pytest.raises(PolicyError, match="acme-churn is registered; change requests are for running engagements"):
        file(rt, Draft(title="ok"))
    assert counts(rt) == before


def test_an_amendment_replaces_an_approver_once_approved(rt: Runtime, acme: Engagement) -> None:
    running(rt, acme)
    data = json.loads(acme.model_dump_json())
    data["phases"]["poc"]["gate"]["approvers"][1] = {"slack_user": "U0NEWLEAD1", "name": "Lee Park",
                                                     "side": "client", "role": "tech lead"}
    data["phases"]["poc"]["milestones"].append({"key": "bias-review", "title": "Bias review"})
    cr_id = file(rt, Draft(title="Omar left; Lee replaces him", amendment=data))
    with transaction(rt.sessions) as session:
        assessment = crs.assessment_of(crs.by_id(session, cr_id))
    assert assessment is not None and assessment.milestones == ["bias-review"]
    assert "phases.poc.gate.approvers[U0TECHLEAD].name: Omar Haddad removed" in assessment.amendment
    assert "phases.poc.milestones[bias-review].title: Bias review added" in assessment.amendment
    answer(rt, cr_id, SPONSOR, Outcome.APPROVE)
    assert answer(rt, cr_id, VENDOR_LEAD, Outcome.APPROVE).decided is ChangeRequestState.APPROVED
    with transaction(rt.sessions) as session:
        config = engagements.config_of(engagements.get(session, "acme-churn"))
        v2 = crs.baseline(session, "acme-churn")
    assert [a.slack_user for a in config.phases.poc.gate.approvers] == [SPONSOR, "U0NEWLEAD1", VENDOR_LEAD]
    assert v2 is not None and v2.scope["phases"]["poc"]["milestones"][-1] == "bias-review"
    assert v2.scope["items"]["poc"][-1] == "bias-review"
    # The new approver decides the next request; the one who left no longer can.
    later = file(rt, Draft(title="Anything"))
    with pytest.raises(PolicyError, match="U0TECHLEAD is not an approver"):
        answer(rt, later, TECH_LEAD, Outcome.APPROVE)
    assert answer(rt, later, "U0NEWLEAD1", Outcome.APPROVE).recorded


def test_an_amendment_filed_against_an_older_file_cannot_be_approved(rt: Runtime, acme: Engagement) -> None:
    running(rt, acme)
    renamed = with_changes(acme, name="ACME churn, renamed").model_dump(mode="json")
    budget = with_changes(acme, budget__change_budget=90_000).model_dump(mode="json")
    first, second = file(rt, Draft(title="Rename", amendment=renamed)), file(rt, Draft(title="Budget", amendment=budget))
    answer(rt, first, SPONSOR, Outcome.APPROVE)
    answer(rt, first, VENDOR_LEAD, Outcome.APPROVE)
    with pytest.raises(PolicyError, match="the engagement file changed since acme-churn/CR-2 was filed"):
        answer(rt, second, SPONSOR, Outcome.APPROVE)

"""A change request's flow run that dies, as the gate watch and `cr prompt` see it: the ledger says
what the run still has to do, a RunControl double says what Prefect says of it (the input here),
and the real tasks of the flow, run again as the replacement would, post nothing twice."""

from __future__ import annotations

import datetime as dt

import pytest
from helpers import SetRuns
from test_change_requests import PM, SPONSOR, VENDOR_LEAD, answer, file, running

from phasegate.configs.schema import Engagement
from phasegate.gates.watch import catch_up
from phasegate.ledger import audit
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import utcnow
from phasegate.orchestration import recovery
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import AuditKind, ChangeRequestState, Outcome, RunHealth
from phasegate.tasks import change_requests as cr_tasks

CHANNEL = "C0ACMECHURN"


def prompted(rt: Runtime, engagement: Engagement, run_id: str) -> int:
    """CR-1 filed, its prompt posted by run `run_id`, which then waits for the decision."""
    running(rt, engagement)
    cr_id = file(rt, Draft(title="Explainability report", scope_added=("shap-report",), cost=5_000))
    cr_tasks.assess.fn(rt, engagement.id, 1, run_id)
    cr_tasks.post_prompt.fn(rt, cr_id)
    return cr_id


def approved(rt: Runtime, cr_id: int) -> None:
    for approver in (SPONSOR, VENDOR_LEAD):
        answer(rt, cr_id, approver, Outcome.APPROVE)


def replacement_runs(rt: Runtime, engagement: Engagement, run_id: str) -> None:
    """The flow's steps as a new run takes them, from the top (flows/change_request.py)."""
    cr_id = cr_tasks.assess.fn(rt, engagement.id, 1, run_id)
    cr_tasks.post_prompt.fn(rt, cr_id)
    cr_tasks.update_jira.fn(rt, engagement, cr_id)
    cr_tasks.announce.fn(rt, engagement, cr_id)


def top_level(slack: SlackStandin) -> list[str]:
    return [m.text for m in slack.messages(CHANNEL) if m.thread_ts is None]


def test_a_run_dead_after_the_approval_is_replaced_and_the_outcome_announced_once(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    cr_id = prompted(rt, acme, "cr-run-1")
    approved(rt, cr_id)  # the baseline is applied with the deciding answer; the run dies carrying it out
    runs = SetRuns({"cr-run-1": RunHealth.CRASHED})

    report = catch_up(rt, runs, utcnow())

    assert report.restarted == ["acme-churn/CR-1: run-1"] and report.problems == []
    assert runs.started == {"acme-churn-cr-1-restart-1": "run-1"}
    with transaction(rt.sessions) as session:
        assert crs.by_id(session, cr_id).flow_run_id == "run-1"
        lost = audit.events(session, "acme-churn", AuditKind.RUN_LOST, "cr-run-1")
        restarted = audit.events(session, "acme-churn", AuditKind.RUN_RESTARTED, "acme-churn/CR-1")
    assert [e.payload["health"] for e in lost] == ["crashed"]
    assert [(e.payload["old"], e.payload["new"]) for e in restarted] == [("cr-run-1", "run-1")]
    told = [t for t in top_level(slack) if "acme-churn/CR-1 flow run is crashed" in t]
    assert len(told) == 1 and "started flow run run-1" in told[0] and "approved" in told[0]

    assert catch_up(rt, runs, utcnow()).restarted == []  # the new run is alive: nothing more
    replacement_runs(rt, acme, "run-1")
    replacement_runs(rt, acme, "run-1")  # and once more, as Prefect re-runs a flow from the top
    with transaction(rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        assert (cr.state, cr.announced) == (ChangeRequestState.APPROVED, True)
    assert cr.message_ts is not None
    announced = [m for m in slack.thread(CHANNEL, cr.message_ts) if "approved" in m.text.lower()]
    assert len(announced) == 1
    posts = [m.ts for m in slack.messages(CHANNEL) if m.thread_ts is None and "flow run" not in m.text]
    assert posts == [cr.message_ts]  # the one prompt, not posted again
    runs.health["run-1"] = RunHealth.COMPLETED
    assert catch_up(rt, runs, utcnow()).restarted == []  # announced: nothing left for a run to do


def test_a_run_marked_crashed_while_suspended_is_suspended_again_and_woken_not_replaced(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """Prefect's automation marks a suspended run Crashed after a server restart (issue 21, item 4;
    tests/test_false_crash.py causes it for real): no new run, no restart used, nothing said, and the
    run, suspended again, is woken to carry out the decision."""
    cr_id = prompted(rt, acme, "cr-run-1")
    approved(rt, cr_id)
    runs = SetRuns({"cr-run-1": RunHealth.CRASHED})
    runs.suspended.add("cr-run-1")

    report = catch_up(rt, runs, utcnow())

    assert report.restarted == [] and report.problems == [] and runs.started == {}
    assert runs.woken == ["cr-run-1"] and runs.status("cr-run-1").health is RunHealth.ALIVE
    with transaction(rt.sessions) as session:
        assert crs.by_id(session, cr_id).flow_run_id == "cr-run-1"
        assert audit.events(session, "acme-churn", AuditKind.RUN_LOST) == []
        assert audit.events(session, "acme-churn", AuditKind.RUN_RESTARTED) == []
    assert not [t for t in top_level(slack) if "flow run" in t]
    runs.health["cr-run-1"] = RunHealth.CRASHED  # marked so again: `cr prompt` meets it first this time
    assert recovery.prompt_change_request(rt, runs, "acme-churn", 1, by="U0PM").flow_run_id == "cr-run-1"
    assert runs.started == {} and runs.status("cr-run-1").health is RunHealth.ALIVE


def test_a_cancelled_undecided_run_is_reported_once_and_left_to_cr_prompt(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    prompted(rt, acme, "cr-run-1")
    runs = SetRuns({"cr-run-1": RunHealth.CANCELLED})

    first, second = catch_up(rt, runs, utcnow()), catch_up(rt, runs, utcnow())

    assert first.cancelled == ["acme-churn/CR-1"] and first.restarted == second.restarted == []
    told = [t for t in top_level(slack) if "acme-churn/CR-1 flow run was cancelled" in t]
    assert len(told) == 1 and "`phasegate cr prompt acme-churn 1`" in told[0]

    started = recovery.prompt_change_request(rt, runs, "acme-churn", 1, by=PM)
    assert (started.flow_run_id, started.replaced) == ("run-1", "cr-run-1")


def test_automatic_restarts_stop_at_the_limit_as_for_phase_runs(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    cr_id = prompted(rt, acme, "cr-run-1")
    approved(rt, cr_id)
    runs = SetRuns({"cr-run-1": RunHealth.FAILED})
    for number in range(1, recovery.MAX_AUTOMATIC + 1):
        assert catch_up(rt, runs, utcnow()).restarted == [f"acme-churn/CR-1: run-{number}"]
        runs.health[f"run-{number}"] = RunHealth.FAILED

    stuck = catch_up(rt, runs, utcnow())

    assert stuck.restarted == [] and len(stuck.problems) == 1
    assert f"restarted {recovery.MAX_AUTOMATIC} times already" in stuck.problems[0]
    assert "`phasegate cr prompt acme-churn 1`" in stuck.problems[0]


@pytest.mark.parametrize("health", [RunHealth.ALIVE, RunHealth.COMPLETED])
def test_cr_prompt_leaves_a_live_or_finished_run_alone(rt: Runtime, slack: SlackStandin, acme: Engagement,
                                                        health: RunHealth) -> None:
    prompted(rt, acme, "cr-run-1")
    runs = SetRuns({"cr-run-1": health})
    started = recovery.prompt_change_request(rt, runs, "acme-churn", 1, by=PM)
    assert (started.flow_run_id, started.replaced, runs.started) == ("cr-run-1", None, {})


def test_the_watch_leaves_a_request_with_no_run_yet_to_cr_prompt(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """A request with no run yet (Prefect was down at filing) is `cr prompt`'s, as before."""
    running(rt, acme)
    file(rt, Draft(title="Explainability report", scope_added=("shap-report",)))
    runs = SetRuns()
    assert catch_up(rt, runs, dt.datetime.now(dt.UTC)).restarted == [] and runs.started == {}

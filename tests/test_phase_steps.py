"""The phase flow's tasks, run as plain functions (`.fn`) against the ledger and the stand-ins:
re-running them does nothing twice, evidence is honest about what it could not read, a stale
approval reopens the gate, and extensions open new timeboxes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from helpers import finish_milestones, jira_issues, posted_gate, register, with_changes

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import ServiceUnavailable
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.evidence import Result
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import GateState, Outcome, Via
from phasegate.tasks.gates import extend_timebox, open_gate, recheck_evidence, record_ui_answer
from phasegate.tasks.kickoff import begin_phase, handover_warning, link_milestones, post_kickoff, record_baseline
from phasegate.tasks.status import phase_to_run


def decide(rt: Runtime, gate_id: int, outcome: Outcome, *approvers: str, reason: str = "") -> None:
    for approver in approvers:
        with transaction(rt.sessions) as session:
            gates.answer(session, gate_id, approver=approver, outcome=outcome, reason=reason, via=Via.CLI)


def test_running_the_phase_steps_twice_does_nothing_twice(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    """Prefect re-runs a suspended flow from the top on resume: every step must find its earlier result."""
    register(rt, acme)
    results = []
    for run in ("first", "resumed"):
        begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", f"flow-run-{run}")
        kickoff = post_kickoff.fn(rt, acme, Phase.POC)
        problems = link_milestones.fn(rt, acme, Phase.POC)
        baseline = record_baseline.fn(rt, acme)
        gate_id = open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", f"flow-run-{run}")
        results.append((kickoff, problems, baseline, gate_id))
    assert results[0] == results[1]
    top_level = [m for m in slack.messages(acme.slack_channel) if m.thread_ts is None]
    assert len(top_level) == 2  # one kickoff, one gate prompt
    assert len(jira_issues(jira, "ACME")) == 3  # one per PoC milestone
    with transaction(rt.sessions) as session:
        assert len(gates.all_gates(session, acme.id)) == 1
        assert phases.phase_run(session, acme.id, Phase.POC).flow_run_id == "flow-run-resumed"


def test_a_run_picks_up_at_the_phase_it_carried_on_into(rt: Runtime, acme: Engagement) -> None:
    """Prefect re-runs a run that carried on into development from the top, with its first parameters
    (phase=poc): it must go straight to development. A run replaced there by another has nothing left."""
    register(rt, acme)
    assert phase_to_run.fn(rt, acme, Phase.POC, "run-1") is Phase.POC  # nothing started yet
    begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", "run-1")
    assert phase_to_run.fn(rt, acme, Phase.POC, "run-1") is Phase.POC
    begin_phase.fn(rt, acme, Phase.DEVELOPMENT, "U0PMACME01", "run-1")
    assert phase_to_run.fn(rt, acme, Phase.POC, "run-1") is Phase.DEVELOPMENT
    assert phase_to_run.fn(rt, acme, Phase.POC, "run-2") is None  # a stale run of the PoC
    assert phase_to_run.fn(rt, acme, Phase.DEVELOPMENT, "run-2") is Phase.DEVELOPMENT  # `phase retry`'s run
    begin_phase.fn(rt, acme, Phase.DEVELOPMENT, "U0PMACME01", "run-2")  # ... which takes the phase over
    assert phase_to_run.fn(rt, acme, Phase.POC, "run-1") is None
    assert phase_to_run.fn(rt, acme, Phase.POC, "run-2") is Phase.DEVELOPMENT


def test_gate_evidence_shows_values_and_digest(rt: Runtime, jira: JiraStandin, acme: Engagement) -> None:
    gate_id = posted_gate(rt, acme).id
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        snapshot = gates.snapshot_of(session, gate)
    assert gate.digest == snapshot.digest() and len(gate.digest) == 64
    results = {c.label: (c.result, c.seen) for c in snapshot.criteria}
    assert results["f1 >= 0.85"] == (Result.PASS, "0.88")
    assert results["data_quality_score >= 0.9"] == (Result.PASS, "0.93")
    assert results["all required milestones done"][0] is Result.FAIL  # the issues were just created
    f1 = next(m for m in snapshot.metrics if m.name == "f1")
    assert f1.query.startswith("GET http://127.0.0.1:") and f1.raw["run"]["info"]["run_id"] == "acme-churn-poc"
    assert all(m.source == "jira" and m.query.startswith("issue ACME-") for m in snapshot.milestones)


def test_outages_show_as_missing_evidence(rt: Runtime, jira: JiraStandin, metrics: MetricsStandin,
                                          acme: Engagement) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", None)
    post_kickoff.fn(rt, acme, Phase.POC)
    jira.outage = True
    metrics.down = True
    problems = link_milestones.fn(rt, acme, Phase.POC)
    assert len(problems) == 3 and all("503" in p or "unavailable" in p.lower() for p in problems), problems
    gate_id = open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None)
    with transaction(rt.sessions) as session:
        snapshot = gates.snapshot_of(session, gates.by_id(session, gate_id))
    assert {c.result for c in snapshot.criteria} == {Result.MISSING}
    assert all(m.done is None and m.error == "no Jira issue linked" for m in snapshot.milestones)
    assert all("503" in (m.error or "") for m in snapshot.metrics)


def test_jira_going_down_after_linking_shows_the_outage_as_the_reason(
        rt: Runtime, jira: JiraStandin, acme: Engagement) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", None)
    post_kickoff.fn(rt, acme, Phase.POC)
    assert link_milestones.fn(rt, acme, Phase.POC) == []
    jira.outage = True
    resumed = Runtime(rt.settings)  # a later flow run connects to Jira afresh
    try:
        gate_id = open_gate.fn(resumed, acme, Phase.POC, 1, "U0PMACME01", None)
    finally:
        resumed.close()
    with transaction(rt.sessions) as session:
        snapshot = gates.snapshot_of(session, gates.by_id(session, gate_id))
    assert all(m.done is None and "503" in (m.error or "") for m in snapshot.milestones), snapshot.milestones
    assert all(m.error != "Jira is not configured" for m in snapshot.milestones)


def test_stale_approval_reopens_the_gate(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                         metrics: MetricsStandin, acme: Engagement) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", None)
    post_kickoff.fn(rt, acme, Phase.POC)
    link_milestones.fn(rt, acme, Phase.POC)
    finish_milestones(rt, jira, acme.id, Phase.POC)
    gate_id = open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None)
    decide(rt, gate_id, Outcome.GO, "U0SPONSOR1", "U0VENDLEAD")
    assert recheck_evidence.fn(rt, acme, gate_id) is None  # nothing changed: the approval holds
    with transaction(rt.sessions) as session:
        links = engagements.links(session, acme.id, Phase.POC)
    jira.set_status(links["baseline-model"], "In Progress", done=False)
    metrics.set("acme-churn-poc", f1=0.81)
    reopened = recheck_evidence.fn(rt, acme, gate_id)
    assert reopened is not None
    with transaction(rt.sessions) as session:
        old, new = gates.by_id(session, gate_id), gates.by_id(session, reopened)
        assert old.state is GateState.STALE and old.outcome is Outcome.GO
        assert (new.state, new.revision, new.timebox) == (GateState.OPEN, 2, 1)
        assert "baseline-model is no longer done" in new.reopened_because
        assert "f1 >= 0.85 now fail (seen 0.81, was 0.88)" in new.reopened_because
        assert new.digest != old.digest and new.message_ts
    assert old.message_ts is not None
    notice = slack.thread(acme.slack_channel, old.message_ts)[-1]
    assert "approval went stale" in notice.text and "<@U0SPONSOR1>" in notice.text
    assert "stale" in json.dumps(slack.message(acme.slack_channel, old.message_ts).blocks)


def test_an_approval_on_missing_evidence_is_reopened_when_jira_shows_it_open(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    """GO was given while Jira was down; Jira came back with the milestones open: the re-check notices."""
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", None)
    post_kickoff.fn(rt, acme, Phase.POC)
    link_milestones.fn(rt, acme, Phase.POC)
    jira.outage = True
    gate_id = open_gate.fn(Runtime(rt.settings), acme, Phase.POC, 1, "U0PMACME01", None)
    decide(rt, gate_id, Outcome.GO, "U0SPONSOR1", "U0VENDLEAD", reason="Jira is down; the vendor showed us the work")
    jira.outage = False
    reopened = recheck_evidence.fn(Runtime(rt.settings), acme, gate_id)
    assert reopened is not None
    with transaction(rt.sessions) as session:
        because = gates.by_id(session, reopened).reopened_because
    assert "required milestone baseline-model is open; it was missing at approval" in because


def test_an_approval_on_evidence_still_missing_is_said_not_hidden(
        rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", None)
    post_kickoff.fn(rt, acme, Phase.POC)
    link_milestones.fn(rt, acme, Phase.POC)
    jira.outage = True
    gate_id = open_gate.fn(Runtime(rt.settings), acme, Phase.POC, 1, "U0PMACME01", None)
    decide(rt, gate_id, Outcome.GO, "U0SPONSOR1", "U0VENDLEAD", reason="Jira is down; the vendor showed us the work")
    assert recheck_evidence.fn(Runtime(rt.settings), acme, gate_id) is None  # nothing new: the waiver stands
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    assert gate.state is GateState.DECIDED and gate.message_ts is not None
    note = slack.thread(acme.slack_channel, gate.message_ts)[-1].text
    assert "still unknown" in note and "baseline-model: unknown: Jira at" in note and "waiver" in note


def test_not_yet_extends_supervised_operation(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    register(rt, acme)
    with transaction(rt.sessions) as session:
        phases.start_phase(session, acme, Phase.HANDOVER, requested_by="U0PMACME01", flow_run_id=None,
                           today=acme.start_date)
    post_kickoff.fn(rt, acme, Phase.HANDOVER)
    gate_id = open_gate.fn(rt, acme, Phase.HANDOVER, 1, "U0PMACME01", None)
    decide(rt, gate_id, Outcome.NOT_YET, "U0SPONSOR1", "U0VENDLEAD", reason="the drill failed at redeploy")
    extend_timebox.fn(rt, acme, Phase.HANDOVER, gate_id)
    extend_timebox.fn(rt, acme, Phase.HANDOVER, gate_id)  # a re-run opens no second timebox
    with transaction(rt.sessions) as session:
        box = phases.current_timebox(session, acme.id, Phase.HANDOVER)
        assert (box.number, box.weeks, box.reason) == (2, 2, "the drill failed at redeploy; the drill failed at redeploy")
    posts = [m.text for m in slack.messages(acme.slack_channel) if "supervised operation extended" in m.text]
    assert len(posts) == 1


def test_extend_long_after_the_timebox_ended_gives_its_weeks_from_today(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """The PoC started in August and its 8-week timebox ended weeks ago: EXTEND gives 2 weeks from
    today, not a timebox that has already ended (which would reopen G1 at once)."""
    gate_id = posted_gate(rt, acme).id
    with transaction(rt.sessions) as session:
        ended = phases.current_timebox(session, acme.id, Phase.POC).ends_on
    today = dt.datetime.now(acme.tz).date()
    assert ended < today - dt.timedelta(weeks=2)  # the fault's condition: the timebox ended weeks ago
    decide(rt, gate_id, Outcome.EXTEND, "U0SPONSOR1", "U0VENDLEAD", reason="the holdout split came late")
    extend_timebox.fn(rt, acme, Phase.POC, gate_id)
    with transaction(rt.sessions) as session:
        box = phases.current_timebox(session, acme.id, Phase.POC)
        used = phases.weeks_used(session, acme.id, Phase.POC)
    assert (box.number, box.weeks, used) == (2, 2, 10)
    assert box.ends_on == today + dt.timedelta(weeks=2)
    posted = [m.text for m in slack.messages(acme.slack_channel) if "poc extended" in m.text]
    assert len(posted) == 1 and f"review by {box.ends_on}" in posted[0]


def test_handover_share_warning(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    assert handover_warning(acme, 24) is None  # 5 of 29 weeks: 17 %
    assert "under the 15–20 %" in (handover_warning(acme, 40) or "")
    assert "over the 15–20 %" in (handover_warning(acme, 10) or "")
    short = with_changes(acme, phases__handover__planned_weeks=2)
    register(rt, short)
    with transaction(rt.sessions) as session:
        phases.start_phase(session, short, Phase.HANDOVER, requested_by="U0PMACME01", flow_run_id=None,
                           today=short.start_date)
    post_kickoff.fn(rt, short, Phase.HANDOVER)
    kickoff = slack.messages(short.slack_channel)[-1].text
    assert ":warning: handover is planned at" in kickoff and "under the 15–20 %" in kickoff


def test_a_slack_outage_while_opening_the_gate_loses_nothing(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """The evidence is frozen before the post; a retry posts the same gate's prompt, once."""
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, "U0PMACME01", None)
    post_kickoff.fn(rt, acme, Phase.POC)
    link_milestones.fn(rt, acme, Phase.POC)
    slack.fail_next("chat.postMessage", 500)
    with pytest.raises(ServiceUnavailable, match="chat.postMessage"):
        open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None)
    with transaction(rt.sessions) as session:
        (gate,) = gates.all_gates(session, acme.id)
        assert gate.message_ts is None
    assert open_gate.fn(rt, acme, Phase.POC, 1, "U0PMACME01", None) == gate.id
    with transaction(rt.sessions) as session:
        (again,) = gates.all_gates(session, acme.id)
    assert again.digest == gate.digest and again.message_ts is not None
    prompts = [m for m in slack.messages(acme.slack_channel) if m.ts == again.message_ts]
    assert len(prompts) == 1


def test_the_prefect_ui_form_is_held_to_cli_answers_and_its_typed_approver_is_shown_as_such(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """Prefect's own server has no users: its resume form names the approver by a typed Slack id. The
    file's `cli_answers: false` (answers typed outside Slack) refuses it as it refuses the CLI, and where
    it is heard the prompt says that nobody vouched for the id."""
    slack_only = with_changes(acme, id="acme-slack-only", slack_channel="C0SLACKONLY",
                              phases__poc__gate__cli_answers=False)
    gate_id = posted_gate(rt, slack_only).id
    waiver = "pilot scope only"
    note = record_ui_answer.fn(rt, gate_id, "U0SPONSOR1", Outcome.GO, waiver, "ui:run:1")
    assert note == ("not recorded: G1 takes no answers from the Prefect UI (cli_answers: false in the engagement "
                    "file); answer in Slack"), note
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate_id) == []

    gate_id = posted_gate(rt, acme).id
    assert record_ui_answer.fn(rt, gate_id, "U0SPONSOR1", Outcome.GO, waiver, "ui:run:2") == "recorded"
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    shown = json.dumps(slack.message(acme.slack_channel, gate.message_ts or "").blocks)
    assert "via prefect_ui (the Slack id was typed into the Prefect UI's form, which does not say who typed it)" in shown


def test_an_answer_from_the_prefect_ui_survives_a_slack_outage(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """The shared after-answer step: the answer is kept and the failed prompt update is reported."""
    gate_id = posted_gate(rt, acme).id
    slack.fail_next("chat.update", 500, times=5)  # longer than the update's retries last
    waiver = "pilot scope only"  # the milestones are open, so a GO carries a waiver
    note = record_ui_answer.fn(rt, gate_id, "U0SPONSOR1", Outcome.GO, waiver, "ui:run:1")
    assert note.startswith("recorded, but could not update the Slack prompt"), note
    assert record_ui_answer.fn(rt, gate_id, "U0SPONSOR1", Outcome.GO, waiver, "ui:run:1") == "already recorded"
    with transaction(rt.sessions) as session:
        assert [(d.approver, d.outcome) for d in gates.decisions(session, gate_id)] == [("U0SPONSOR1", Outcome.GO)]
    assert record_ui_answer.fn(rt, gate_id, "U0VENDLEAD", Outcome.GO, waiver, "ui:run:2") == "recorded"
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    assert gate.message_ts is not None
    assert slack.message(acme.slack_channel, gate.message_ts).text.endswith("decided GO")  # refreshed again

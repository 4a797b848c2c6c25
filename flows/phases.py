"""The phase flow: kickoff, the timebox, the gate, and what the gate's outcome means; after a GO,
the same flow run carries on into the next phase.

One flow serves all three phases of the guide; what differs between them (milestones, exit
criteria, approvers, the outcomes a gate offers) comes from the engagement file. Waiting is
done with `suspend_flow_run`, which frees the process; Prefect re-runs the flow from the top on
resume, so every step before a wait finds its earlier result in the ledger instead of redoing it,
and every wait sits in a loop that re-checks the ledger (a resume is only a nudge). A run that has
carried on is re-run from the top too: it picks up at the phase the ledger records under its own
flow run id, so the phases behind it are never gone through again.
"""

from __future__ import annotations

from itertools import count

from prefect import flow, get_run_logger
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from phasegate.configs.schema import Engagement, Phase
from phasegate.orchestration.names import PHASE_DEPLOYMENT, PHASE_FLOW
from phasegate.orchestration.runtime import Runtime
from phasegate.settings import Settings
from phasegate.states import EngagementState, Outcome
from phasegate.tasks import gates as gate_tasks
from phasegate.tasks.kickoff import begin_phase, link_milestones, post_kickoff, record_baseline
from phasegate.tasks.status import advance_requested, gate_summary, load_engagement, phase_to_run

FLOW_NAME, DEPLOYMENT = PHASE_FLOW, PHASE_DEPLOYMENT  # the names the tests and demo use


class GateAnswer(RunInput):
    """An answer typed into the Prefect UI's resume form. Leave it empty to just re-check the ledger."""

    outcome: Outcome | None = None
    approver: str = Field(default="", description="Your Slack user id, as listed in the engagement file")
    reason: str = Field(default="", description="Required for NO-GO, EXTEND and NOT YET, and as the written waiver "
                                              "for GO/ACCEPT while exit criteria fail or are missing")


def wait_for_timebox(rt: Runtime, engagement: Engagement, phase: Phase) -> int:
    """Suspend until the current timebox ends or the PM asks for the gate review early."""
    for attempt in count():
        number, due = gate_tasks.timebox_due(rt, engagement, phase)
        if due:
            return number
        suspend_flow_run(key=f"timebox-{phase.value}-{number}-{attempt}", timeout=None)
    raise AssertionError("unreachable")


def wait_for_decision(rt: Runtime, gate_id: int) -> Outcome:
    """Suspend until the gate's quorum is met, recording any answer given in the Prefect UI."""
    logger = get_run_logger()
    for attempt in count():
        outcome = gate_tasks.gate_outcome(rt, gate_id)
        if outcome is not None:
            gate_tasks.redraw_prompt(rt, gate_id)  # the prompt converges to the ledger whoever decided
            return outcome
        form = GateAnswer.with_initial_data(description=gate_summary(rt, gate_id))
        answer = suspend_flow_run(wait_for_input=form, key=f"gate-{gate_id}-{attempt}", timeout=None)
        if answer.outcome is not None:
            delivery = f"ui:{flow_run.get_id()}:{gate_id}:{attempt}"
            note = gate_tasks.record_ui_answer(rt, gate_id, answer.approver.strip(), answer.outcome,
                                               answer.reason, delivery)
            logger.info("Prefect UI answer at gate %s: %s", gate_id, note)
    raise AssertionError("unreachable")


def wait_for_advance(rt: Runtime, engagement: Engagement, phase: Phase) -> None:
    """With auto_advance off, a GO waits here until the PM starts the next phase."""
    for attempt in count():
        if advance_requested(rt, engagement, phase):
            return
        suspend_flow_run(key=f"advance-{phase.value}-{attempt}", timeout=None)


def report(problems: list[str]) -> None:
    """Milestones Jira could not link now; they show as missing evidence until a later run links them."""
    for problem in problems:
        get_run_logger().warning("milestone not linked: %s", problem)


def run_one_phase(rt: Runtime, engagement: Engagement, phase: Phase, requested_by: str) -> Outcome:
    """Kickoff, the timebox, the gate; returns the outcome that ends the phase: NO-GO (the engagement
    is closed), the last gate's pass (closed as completed), or a GO whose evidence still holds."""
    begin_phase(rt, engagement, phase, requested_by, flow_run.get_id())
    post_kickoff(rt, engagement, phase)
    report(link_milestones(rt, engagement, phase))
    record_baseline(rt, engagement, phase)
    while True:
        timebox = wait_for_timebox(rt, engagement, phase)
        report(link_milestones(rt, engagement, phase))
        gate_id = gate_tasks.open_gate(rt, engagement, phase, timebox, requested_by, flow_run.get_id())
        outcome = wait_for_decision(rt, gate_id)
        if outcome.extends_timebox:
            gate_tasks.extend_timebox(rt, engagement, phase, gate_id)
            continue
        if outcome.ends_engagement:
            gate_tasks.close_engagement(rt, engagement, gate_id, EngagementState.CLOSED)
            return outcome
        next_phase = phase.next()
        if next_phase is not None and not engagement.auto_advance:
            wait_for_advance(rt, engagement, phase)
        if gate_tasks.recheck_evidence(rt, engagement, gate_id) is not None:
            continue
        if next_phase is None:
            gate_tasks.close_engagement(rt, engagement, gate_id, EngagementState.COMPLETED)
        return outcome


@flow(name=FLOW_NAME, log_prints=True)
def run_phase(engagement_id: str, phase: Phase, requested_by: str = "") -> str:
    """Run an engagement from `phase` through its gates, carrying on into the next phase after each
    GO in this same flow run, and return the last gate's outcome."""
    rt = Runtime(Settings())
    try:
        engagement = load_engagement(rt, engagement_id)
        requested_by = requested_by or engagement.pm_slack_user
        current = phase_to_run(rt, engagement, phase, flow_run.get_id())
        if current is None:
            get_run_logger().warning("%s has moved past %s under another flow run; nothing left for this one",
                                     engagement.id, phase.value)
            return ""
        while True:
            outcome = run_one_phase(rt, engagement, current, requested_by)
            following = current.next()
            if not outcome.passes or following is None:
                return str(outcome.value)
            current = following
    finally:
        rt.close()

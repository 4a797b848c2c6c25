"""What the CLI does beyond reading the ledger: start phases, ask for reviews, decide gates.

The same ledger functions as the flows and the Slack endpoint do the work, so a decision from
the terminal is held to the same policy and recorded the same way, only as answered via `cli`.
"""

from __future__ import annotations

from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from phasegate.configs.schema import Phase
from phasegate.errors import InternalError, PolicyError, ServiceUnavailable
from phasegate.gates import answers
from phasegate.ledger import audit, engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.gates import Answered
from phasegate.ledger.models import utcnow
from phasegate.operator import cli_operator
from phasegate.orchestration import recovery
from phasegate.orchestration.names import PHASE_DEPLOYMENT
from phasegate.orchestration.runs import PREFECT_DOWN, PrefectRuns, wake
from phasegate.orchestration.runtime import Runtime
from phasegate.states import AuditKind, EngagementState, GateState, Outcome, Via


def _prefect_call(what: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"cannot {what}: the Prefect API is not reachable (is `phasegate up` running?)")


def start_phase(rt: Runtime, engagement_id: str, phase: Phase, requested_by: str, *,
                operator: str | None = None) -> str:
    """Create the phase's flow run, or, for a phase after a GO, wake the run waiting for the PM.
    Returns the id of the flow run that will start the phase. The request is recorded first, with
    `operator` (the user@host of a CLI command), whatever Prefect then does with it."""
    waiting = None
    with transaction(rt.sessions) as session:
        engagement = engagements.config_of(engagements.get(session, engagement_id))
        existing = phases.find_phase_run(session, engagement_id, phase)
        if existing is not None:
            raise already_started(engagement_id, phase, existing.flow_run_id)
        if phase not in engagement.phases.present():
            raise PolicyError(f"{engagement_id} has no {phase.value} phase in its engagement file")
        previous = engagement.phases.before(phase)
        if previous is not None:
            run = phases.find_phase_run(session, engagement_id, previous)
            if run is None:
                raise PolicyError(f"{engagement_id} has not passed {previous.gate} yet")
            last = gates.current(session, engagement_id, previous,
                                 phases.current_timebox(session, engagement_id, previous).number)
            if last is None or last.outcome is None or not last.outcome.passes:
                raise PolicyError(f"{engagement_id} cannot start {phase.value}: {previous.gate} has no GO")
            run.advance_requested, waiting = True, run.flow_run_id
        audit.record(session, engagement_id, AuditKind.PHASE_START_REQUESTED, phase.value,
                     requested_by=requested_by or engagement.pm_slack_user, operator=operator)
    if waiting is not None and previous is not None:
        return carry_on(rt, engagement_id, previous, waiting)
    try:
        flow_run = run_deployment(PHASE_DEPLOYMENT, parameters={"engagement_id": engagement.id, "phase": phase.value,
                                                          "requested_by": requested_by},
                                  timeout=0, flow_run_name=f"{engagement.id}-{phase.value}",
                                  idempotency_key=f"{engagement.id}-{phase.value}")
    except ObjectNotFound:
        raise ServiceUnavailable(f"the deployment {PHASE_DEPLOYMENT} is not served (is `phasegate up` running?)") from None
    except (*PREFECT_DOWN, RuntimeError) as exc:
        raise _prefect_call(f"start the flow run ({type(exc).__name__})") from None
    if not isinstance(flow_run, FlowRun):  # called from sync code, run_deployment returns the run itself
        raise InternalError(f"run_deployment returned {type(flow_run).__name__}, not a flow run")
    return str(flow_run.id)


def already_started(engagement_id: str, phase: Phase, flow_run_id: str | None) -> PolicyError:
    said = f"{engagement_id} {phase.value} has already started"
    if flow_run_id is None:
        return PolicyError(said)
    status = PrefectRuns().status(flow_run_id)
    if status.health.dead:
        return PolicyError(f"{said}, but its {status.line}: `phasegate phase retry {engagement_id}` starts it again")
    return PolicyError(f"{said} (flow run {flow_run_id})")


def carry_on(rt: Runtime, engagement_id: str, previous: Phase, waiting: str) -> str:
    """Wake the previous phase's run, which starts this phase; if Prefect lost that run, a new run of
    the previous phase takes over from the ledger (and starts this one). Returns a live run's id."""
    runs = PrefectRuns(wake_wait=5)
    status = runs.status(waiting)
    if not status.health.dead:
        runs.wake(waiting)
        return waiting
    return recovery.retry(rt, runs, engagement_id, by=cli_operator(), now=utcnow())


def request_review(rt: Runtime, engagement_id: str, *, operator: str | None = None) -> str:
    """Open the current phase's gate now instead of at the end of its timebox (`operator`: the
    user@host of the CLI command that asked, kept in the audit trail)."""
    with transaction(rt.sessions) as session:
        row = engagements.get(session, engagement_id)
        if row.current_phase is None or row.state is not EngagementState.ACTIVE:
            raise PolicyError(f"{engagement_id} is {row.state.value}, with no phase under way")
        box = phases.current_timebox(session, engagement_id, row.current_phase)
        gate = gates.current(session, engagement_id, row.current_phase, box.number)
        if gate is not None and gate.state is GateState.OPEN:
            return f"{gate.name} is already open (gate {gate.id})"
        if gate is not None:
            raise PolicyError(f"{gate.name} for timebox {box.number} was decided {gate.outcome.label if gate.outcome else ''};"
                              " the next timebox is not open yet, try again shortly")
        box.review_requested = True
        audit.record(session, engagement_id, AuditKind.REVIEW_REQUESTED, row.current_phase.value, covers=box,
                     timebox=box.number, operator=operator)
        run_id = phases.phase_run(session, engagement_id, row.current_phase).flow_run_id
    said = f"{row.current_phase.gate} review requested for timebox {box.number}"
    if run_id:
        status = PrefectRuns().status(run_id)
        if status.health.dead:
            return f"{said}, but {status.line}: `phasegate phase retry {engagement_id}` starts it again"
        wake(run_id)
    return said


def decide(rt: Runtime, gate_id: int, *, approver: str, outcome: Outcome, reason: str,
           operator: str | None) -> Answered:
    """`operator`: the user@host that ran the command, recorded beside the `--as` id."""
    with transaction(rt.sessions) as session:
        result = gates.answer(session, gate_id, approver=approver, outcome=outcome, reason=reason,
                              via=Via.CLI, operator=operator)
    if not result.recorded:
        return result
    done = answers.after_answer(rt.sessions, rt.chat, gate_id, decided=result.decided is not None, wake=wake)
    if done.orchestrator_down:
        raise ServiceUnavailable(f"decision recorded; {answers.NEXT_STEP_LATER} ({'; '.join(done.problems)})")
    if done.problems:
        raise ServiceUnavailable("decision recorded, but " + "; ".join(done.problems))
    return result

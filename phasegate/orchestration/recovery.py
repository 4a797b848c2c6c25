"""Every recorded decision is acted on: the ledger says which phase run should be alive, Prefect says
whether it is, and this module closes the gap.

A phase run is only a reader of the ledger (every step finds its earlier result there, every wait
re-checks it), so a run that died can be replaced by a new run of the same phase at any time: the
new run skips what is done and carries out what was decided. Replacements are recorded in the audit
trail (RUN_LOST once per dead run, RUN_RESTARTED per new run) and told in the engagement's channel.

- Crashed, failed or deleted runs are replaced by the gate watch, at most MAX_AUTOMATIC times per
  phase (a run that fails every time needs a person, who uses `phasegate phase retry`).
- A cancelled run was stopped by someone on purpose: it is reported, and replaced only when a decided
  gate is waiting for it to carry the outcome out (the approvers were told "decided").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from phasegate.configs.schema import Phase
from phasegate.errors import EXPECTED, PolicyError
from phasegate.ledger import audit, engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.orchestration.runs import RunControl, RunStatus
from phasegate.orchestration.runtime import Runtime
from phasegate.states import AuditKind, EngagementState, GateState, RunHealth
from phasegate.text import literal

MAX_AUTOMATIC = 3
WATCH = "the gate watch"


@dataclass(frozen=True)
class Expected:
    """The run the ledger expects to be alive for an active engagement, and whether it may go on now."""

    engagement_id: str
    phase: Phase
    flow_run_id: str | None
    requested_by: str
    channel: str
    can_go_on: bool
    decided_gate: str | None  # "G1 GO" when a decided gate waits for the run to carry it out


def expected(rt: Runtime, engagement_id: str, now: dt.datetime) -> Expected | None:
    """None unless the engagement is active with a phase under way."""
    with transaction(rt.sessions) as session:
        row = engagements.get(session, engagement_id)
        if row.state is not EngagementState.ACTIVE or row.current_phase is None:
            return None
        config = engagements.config_of(row)
        run = phases.phase_run(session, row.id, row.current_phase)
        box = phases.current_timebox(session, row.id, row.current_phase)
        gate = gates.current(session, row.id, row.current_phase, box.number)
        decided = None
        if gate is None:
            due = box.due(now.astimezone(config.tz).date())
        elif gate.state is GateState.DECIDED and gate.outcome is not None:
            passed = gate.outcome.passes and gate.phase.next() is not None
            due = not (passed and not config.auto_advance and not run.advance_requested)
            decided = f"{gate.phase.gate} {gate.outcome.label}"
        else:
            due = False
        return Expected(row.id, row.current_phase, run.flow_run_id, run.requested_by, config.slack_channel,
                        due, decided)


def first_report(rt: Runtime, engagement_id: str, status: RunStatus) -> bool:
    """Record that the run died (once per run); True the first time, so the channel is told once."""
    with transaction(rt.sessions) as session:
        engagements.get(session, engagement_id, lock=True)
        if audit.events(session, engagement_id, AuditKind.RUN_LOST, status.flow_run_id):
            return False
        audit.record(session, engagement_id, AuditKind.RUN_LOST, status.flow_run_id, health=status.health.value,
                     why=status.why)
        return True


def restarts(rt: Runtime, engagement_id: str, phase: Phase) -> int:
    with transaction(rt.sessions) as session:
        return len(audit.events(session, engagement_id, AuditKind.RUN_RESTARTED, phase.value))


def restart(rt: Runtime, runs: RunControl, exp: Expected, *, why: str, by: str) -> str:
    """Start a new run of the current phase and make the ledger point at it. The idempotency key
    counts earlier restarts, so two restarts racing for the same dead run get the same new run."""
    number = restarts(rt, exp.engagement_id, exp.phase) + 1
    new_id = runs.start(exp.engagement_id, exp.phase, exp.requested_by,
                        key=f"{exp.engagement_id}-{exp.phase.value}-restart-{number}")
    with transaction(rt.sessions) as session:
        engagements.get(session, exp.engagement_id, lock=True)
        if audit.events(session, exp.engagement_id, AuditKind.RUN_RESTARTED, exp.phase.value)[number - 1:]:
            return new_id  # the racing restart recorded the same run
        phases.phase_run(session, exp.engagement_id, exp.phase).flow_run_id = new_id
        for gate in gates.open_gates(session, exp.engagement_id):
            gate.flow_run_id = new_id  # answers from now on wake the new run
        audit.record(session, exp.engagement_id, AuditKind.RUN_RESTARTED, exp.phase.value, old=exp.flow_run_id,
                     new=new_id, why=why, by=by)
    return new_id


@dataclass
class Reconciled:
    """What one reconciliation did, for the watch's report."""

    woken: str | None = None  # the run's id when it was paused and is resumed now
    restarted: str | None = None
    cancelled: bool = False
    problem: str | None = None


def reconcile(rt: Runtime, runs: RunControl, engagement_id: str, now: dt.datetime) -> Reconciled:
    """One engagement: wake its run if it may go on, replace it if it is dead (see the module doc)."""
    exp = expected(rt, engagement_id, now)
    if exp is None or exp.flow_run_id is None:
        return Reconciled()
    status = runs.status(exp.flow_run_id)
    if status.health is RunHealth.ALIVE:
        woke = exp.can_go_on and runs.wake(exp.flow_run_id)
        return Reconciled(woken=exp.flow_run_id if woke else None)
    if not status.health.dead:
        return Reconciled()
    first = first_report(rt, engagement_id, status)
    name = f"{engagement_id} {exp.phase.value}"
    if status.health is RunHealth.CANCELLED and exp.decided_gate is None:
        if first:
            say(rt, exp.channel, f":stop_sign: The {name} flow run was cancelled in Prefect ({literal(status.why)}). "
                f"Answers are still recorded; `phasegate phase retry {engagement_id}` starts it again, "
                f"`phasegate engagement cancel {engagement_id} --reason ...` ends the engagement.")
        return Reconciled(cancelled=True)
    if restarts(rt, engagement_id, exp.phase) >= MAX_AUTOMATIC:
        problem = (f"{name}: {status.line}; restarted {MAX_AUTOMATIC} times already, "
                   f"`phasegate phase retry {engagement_id}` after a look at the run's logs")
        if first:
            say(rt, exp.channel, f":warning: {literal(problem)}")
        return Reconciled(problem=problem)
    new_id = restart(rt, runs, exp, why=status.why, by=WATCH)
    carried = f" It carries out {exp.decided_gate}, as decided." if exp.decided_gate else ""
    say(rt, exp.channel, f":arrows_counterclockwise: The {name} flow run is {status.health.value} ({literal(status.why)}); "
        f"phasegate started flow run {new_id}, which picks up from the ledger.{carried}")
    return Reconciled(restarted=new_id)


def retry(rt: Runtime, runs: RunControl, engagement_id: str, *, by: str, now: dt.datetime) -> str:
    """`phase retry`: a new run for the current phase, refused while the current one is alive."""
    exp = expected(rt, engagement_id, now)
    if exp is None:
        with transaction(rt.sessions) as session:
            state = engagements.get(session, engagement_id).state
        raise PolicyError(f"{engagement_id} is {state.value}, with no phase under way to retry")
    if exp.flow_run_id is not None:
        status = runs.status(exp.flow_run_id)
        if not status.health.dead:
            raise PolicyError(f"{engagement_id} {exp.phase.value}: {status.line}; nothing to retry")
        first_report(rt, engagement_id, status)
        why = status.why
    else:
        why = "the phase had no flow run"
    new_id = restart(rt, runs, exp, why=why, by=by)
    say(rt, exp.channel, f":arrows_counterclockwise: The {engagement_id} {exp.phase.value} flow run was restarted "
        f"by {literal(by)} ({literal(why)}); flow run {new_id} picks up from the ledger.")
    return new_id


def cancel(rt: Runtime, runs: RunControl, engagement_id: str, *, reason: str, by: str) -> list[str]:
    """`engagement cancel`: the ledger first (the audit trail names who and why), then the phase runs
    are cancelled in Prefect; what could not be done there is handed back, the ledger stays cancelled."""
    if not reason.strip():
        raise PolicyError("cancelling an engagement needs a --reason")
    with transaction(rt.sessions) as session:
        row = engagements.get(session, engagement_id, lock=True)
        if row.state.ended:
            raise PolicyError(f"{engagement_id} has already ended ({row.state.value}: {row.closed_reason})")
        channel = engagements.config_of(row).slack_channel
        engagements.close(session, engagement_id, EngagementState.CANCELLED, f"cancelled by {by}: {reason.strip()}")
        # one flow run may carry several phases: each run once
        run_ids = list(dict.fromkeys(r.flow_run_id for r in phases.phase_runs(session, engagement_id)
                                     if r.flow_run_id))
    problems: list[str] = []
    for run_id in run_ids:
        try:
            runs.cancel(run_id, f"engagement cancelled by {by}: {reason.strip()}")
        except EXPECTED as exc:
            problems.append(str(exc))
    try:
        say(rt, channel, f":octagonal_sign: {engagement_id} was cancelled by {literal(by)}: {literal(reason.strip())}")
    except EXPECTED as exc:
        problems.append(f"could not tell the channel ({exc})")
    return problems


def say(rt: Runtime, channel: str, text: str) -> None:
    rt.chat.post(channel, text)

"""Recorded decisions are acted on while a run can be started (up to MAX_AUTOMATIC replacements, then
a person is asked): the ledger says which runs should be alive (a phase's, and each change request's
until its outcome is announced), Prefect says whether they are, and this module closes the gap, with
one set of rules for both kinds of run.

A run is only a reader of the ledger (every step finds its earlier result there, every wait
re-checks it), so a run that died can be replaced by a new run of the same phase or request at any
time: the new run skips what is done and carries out what was decided. Replacements are recorded in
the audit trail (RUN_LOST once per dead run, RUN_RESTARTED per new run) and told in the channel.

- A run marked Crashed while it was suspended was never lost (it had no process): it is suspended
  again, not replaced (`runs.checked_status`; Prefect's heartbeat automation does this after a
  server restart).
- Crashed, failed or deleted runs are replaced by the gate watch, at most MAX_AUTOMATIC times per
  phase or request (a run that fails every time needs a person: `phase retry`, `cr prompt`).
- A cancelled run was stopped by someone on purpose: it is reported, and replaced only when a decision
  is waiting for it to carry the outcome out (the approvers were told "decided").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from phasegate.configs.schema import Phase
from phasegate.errors import EXPECTED, PolicyError
from phasegate.ledger import audit, engagements, gates, phases
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import ChangeRequestRow
from phasegate.orchestration.runs import RunControl, RunStatus, checked_status
from phasegate.orchestration.runtime import Runtime
from phasegate.states import AuditKind, EngagementState, GateState, RunHealth
from phasegate.text import literal

MAX_AUTOMATIC = 3
WATCH = "the gate watch"


@dataclass(frozen=True)
class Expected:
    """A run the ledger expects to be alive for an active engagement, and whether it may go on now.
    The rules below read only these fields; the two kinds of run differ in how one is started and
    which ledger rows point at it."""

    engagement_id: str
    subject: str  # what the run carries, as the audit trail names it: "poc", "acme-churn/CR-2"
    name: str  # as the channel is told: "acme-churn poc", "acme-churn/CR-2"
    flow_run_id: str | None
    channel: str
    can_go_on: bool
    decided: str | None  # "G1 GO" when a decision waits for the run to carry it out
    retry: str  # the command that starts it again by hand
    or_else: str  # what else a person can do with a cancelled run, after a comma

    def start(self, runs: RunControl, key: str) -> str:
        raise NotImplementedError

    def point_to(self, session: Session, new_id: str) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class PhaseRun(Expected):
    phase: Phase
    requested_by: str

    def start(self, runs: RunControl, key: str) -> str:
        return runs.start(self.engagement_id, self.phase, self.requested_by, key=f"{self.engagement_id}-"
                          f"{self.phase.value}{key}")

    def point_to(self, session: Session, new_id: str) -> None:
        phases.phase_run(session, self.engagement_id, self.phase).flow_run_id = new_id
        for gate in gates.open_gates(session, self.engagement_id):
            gate.flow_run_id = new_id  # answers from now on wake the new run


@dataclass(frozen=True)
class ChangeRequestRun(Expected):
    number: int

    def start(self, runs: RunControl, key: str) -> str:
        return runs.start_change_request(self.engagement_id, self.number,
                                         key=f"{self.engagement_id}-cr-{self.number}{key}")

    def point_to(self, session: Session, new_id: str) -> None:
        crs.by_number(session, self.engagement_id, self.number).flow_run_id = new_id  # decisions wake it


def expected(rt: Runtime, engagement_id: str, now: dt.datetime) -> PhaseRun | None:
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
        return PhaseRun(row.id, row.current_phase.value, f"{row.id} {row.current_phase.value}", run.flow_run_id,
                        config.slack_channel, due, decided, f"`phasegate phase retry {row.id}`",
                        f", `phasegate engagement cancel {row.id} --reason ...` ends the engagement",
                        row.current_phase, run.requested_by)


def change_request_run(cr: ChangeRequestRow) -> ChangeRequestRun:
    """A request's run: waiting for the decision until it is final, then carrying it out until it is
    announced (the Jira label, the announcement and the phase run's nudge come after the decision)."""
    final = cr.state.final
    return ChangeRequestRun(cr.engagement_id, cr.name, cr.name, cr.flow_run_id, cr.channel, final,
                            f"CR-{cr.number} {cr.state.value}" if final else None,
                            f"`phasegate cr prompt {cr.engagement_id} {cr.number}`",
                            f", `phasegate cr withdraw {cr.engagement_id} {cr.number}` takes it back", cr.number)


def change_request_runs(rt: Runtime, engagement_id: str) -> list[ChangeRequestRun]:
    """The active engagement's requests whose run has work left; a request with no run yet is left to
    `cr prompt` (Prefect was down when it was filed, and the filer was told)."""
    with transaction(rt.sessions) as session:
        if engagements.get(session, engagement_id).state is not EngagementState.ACTIVE:
            return []
        return [change_request_run(cr) for cr in crs.all_for(session, engagement_id)
                if cr.flow_run_id and not (cr.state.final and cr.announced)]


def first_report(rt: Runtime, engagement_id: str, status: RunStatus) -> bool:
    """Record that the run died (once per run); True the first time, so the channel is told once."""
    with transaction(rt.sessions) as session:
        engagements.get(session, engagement_id, lock=True)
        if audit.events(session, engagement_id, AuditKind.RUN_LOST, status.flow_run_id):
            return False
        audit.record(session, engagement_id, AuditKind.RUN_LOST, status.flow_run_id, health=status.health.value,
                     why=status.why)
        return True


def restarts(rt: Runtime, exp: Expected) -> int:
    with transaction(rt.sessions) as session:
        return len(audit.events(session, exp.engagement_id, AuditKind.RUN_RESTARTED, exp.subject))


def restart(rt: Runtime, runs: RunControl, exp: Expected, *, why: str, by: str) -> str:
    """Start a new run and make the ledger point at it. The idempotency key counts earlier restarts,
    so two restarts racing for the same dead run get the same new run."""
    number = restarts(rt, exp) + 1
    new_id = exp.start(runs, f"-restart-{number}")
    with transaction(rt.sessions) as session:
        engagements.get(session, exp.engagement_id, lock=True)
        if audit.events(session, exp.engagement_id, AuditKind.RUN_RESTARTED, exp.subject)[number - 1:]:
            return new_id  # the racing restart recorded the same run
        exp.point_to(session, new_id)
        audit.record(session, exp.engagement_id, AuditKind.RUN_RESTARTED, exp.subject, old=exp.flow_run_id,
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
    """One engagement's phase run: see `reconcile_run`."""
    exp = expected(rt, engagement_id, now)
    return Reconciled() if exp is None else reconcile_run(rt, runs, exp)


def reconcile_changes(rt: Runtime, runs: RunControl, engagement_id: str) -> list[tuple[str, Reconciled]]:
    """The engagement's change-request runs with work left, each by its request's name."""
    return [(exp.name, reconcile_run(rt, runs, exp)) for exp in change_request_runs(rt, engagement_id)]


def reconcile_run(rt: Runtime, runs: RunControl, exp: Expected) -> Reconciled:
    """Wake the run if it may go on, replace it if it is dead (see the module doc)."""
    if exp.flow_run_id is None:
        return Reconciled()
    status = checked_status(runs, exp.flow_run_id)
    if status.health is RunHealth.ALIVE:
        woke = exp.can_go_on and runs.wake(exp.flow_run_id)
        return Reconciled(woken=exp.flow_run_id if woke else None)
    if not status.health.dead:
        return Reconciled()
    first = first_report(rt, exp.engagement_id, status)
    if status.health is RunHealth.CANCELLED and exp.decided is None:
        if first:
            say(rt, exp.channel, f":stop_sign: The {exp.name} flow run was cancelled in Prefect ({literal(status.why)}). "
                f"Answers are still recorded; {exp.retry} starts it again{exp.or_else}.")
        return Reconciled(cancelled=True)
    if restarts(rt, exp) >= MAX_AUTOMATIC:
        problem = (f"{exp.name}: {status.line}; restarted {MAX_AUTOMATIC} times already, "
                   f"{exp.retry} after a look at the run's logs")
        if first:
            say(rt, exp.channel, f":warning: {literal(problem)}")
        return Reconciled(problem=problem)
    new_id = restart(rt, runs, exp, why=status.why, by=WATCH)
    carried = f" It carries out {exp.decided}, as decided." if exp.decided else ""
    say(rt, exp.channel, f":arrows_counterclockwise: The {exp.name} flow run is {status.health.value} "
        f"({literal(status.why)}); phasegate started flow run {new_id}, which picks up from the ledger.{carried}")
    return Reconciled(restarted=new_id)


@dataclass(frozen=True)
class Prompted:
    """What `cr prompt` did: the request's run, and the dead run it replaced (with what Prefect said)."""

    flow_run_id: str
    status: RunStatus
    replaced: str | None = None
    problem: str | None = None  # the new run started but the channel could not be told


def prompt_change_request(rt: Runtime, runs: RunControl, engagement_id: str, number: int, *, by: str) -> Prompted:
    """`cr prompt`: start the request's run if it has none; replace it if it is dead (cancelled too:
    a person asks). An alive or completed run is handed back as it is."""
    with transaction(rt.sessions) as session:
        exp = change_request_run(crs.by_number(session, engagement_id, number))
    run_id = exp.flow_run_id or exp.start(runs, "")  # the key it was filed with: at most one first run
    status = checked_status(runs, run_id)
    if not status.health.dead:
        return Prompted(run_id, status)
    exp = replace(exp, flow_run_id=run_id)
    first_report(rt, engagement_id, status)
    new_id = restart(rt, runs, exp, why=status.why, by=by)
    try:
        say(rt, exp.channel, f":arrows_counterclockwise: The {exp.name} flow run was restarted by {literal(by)} "
            f"({literal(status.why)}); flow run {new_id} picks up from the ledger.")
    except EXPECTED as exc:
        return Prompted(new_id, status, run_id, f"could not tell the channel ({exc})")
    return Prompted(new_id, status, run_id)


def retry(rt: Runtime, runs: RunControl, engagement_id: str, *, by: str, now: dt.datetime) -> str:
    """`phase retry`: a new run for the current phase, refused while the current one is alive."""
    exp = expected(rt, engagement_id, now)
    if exp is None:
        with transaction(rt.sessions) as session:
            state = engagements.get(session, engagement_id).state
        raise PolicyError(f"{engagement_id} is {state.value}, with no phase under way to retry")
    if exp.flow_run_id is not None:
        status = checked_status(runs, exp.flow_run_id)
        if not status.health.dead:
            raise PolicyError(f"{engagement_id} {exp.phase.value}: {status.line}; nothing to retry")
        first_report(rt, engagement_id, status)
        why = status.why
    else:
        why = "the phase had no flow run"
    new_id = restart(rt, runs, exp, why=why, by=by)
    say(rt, exp.channel, f":arrows_counterclockwise: The {exp.name} flow run was restarted "
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

"""`engagement show`, `phase retry` and `engagement cancel`: what became of an engagement's flow runs,
and the two ways out when one died (see phasegate/orchestration/recovery.py).

Registered on the engagement and phase sub-apps of phasegate/cli/main.py, whose one-line error handling
they share. Prefect is asked only here and in recovery; an unreachable Prefect is one line of the
output of `show`, not a failure of the command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from phasegate.cli.base import err, gate_table, guarded, out
from phasegate.configs.enums import Phase

if TYPE_CHECKING:
    from phasegate.orchestration.runs import PrefectRuns
    from phasegate.orchestration.runtime import Runtime


def engagement_show(engagement_id: str) -> None:
    """One engagement: its phases with their flow runs as Prefect sees them, timeboxes and gates."""
    from phasegate.ledger import audit, engagements, gates, phases, spend
    from phasegate.ledger.db import transaction
    from phasegate.orchestration.runs import PrefectRuns
    from phasegate.states import AuditKind, EngagementState

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            row = engagements.get(session, engagement_id)
            config = engagements.config_of(row)
            out.print(f"[bold]{row.name}[/bold] ({row.id}) · vendor {config.vendor} · {row.state.value}"
                      + (f" · {row.closed_reason}" if row.closed_reason else ""))
            runs = {r.phase: r.flow_run_id for r in phases.phase_runs(session, row.id)}
            weeks = {phase: phases.weeks_used(session, row.id, phase) for phase in Phase}
            restarted = audit.events(session, row.id, AuditKind.RUN_RESTARTED)
            rows = gates.all_gates(session, row.id)
            live = row.state is EngagementState.ACTIVE
            budget = spend.status_of(session, row.id, engagement=config).lines()
        prefect = PrefectRuns()
        for phase in config.phases.present():
            planned = config.phases.of(phase).planned_weeks
            out.print(f"  {phase.heading}: planned {planned} weeks"
                      + (f", {weeks[phase]} weeks with its extensions" if weeks[phase] and weeks[phase] != planned
                         else ""))
            later = phase.next()
            if runs.get(phase) and later is not None and runs.get(later) == runs[phase]:
                out.print(f"    flow run {runs[phase]}: carried on into {later.value}", markup=False, highlight=False)
            elif runs.get(phase):
                out.print(f"    {run_line(prefect, str(runs[phase]), live and phase is row.current_phase)}",
                          markup=False, highlight=False)
        for event in restarted:
            p = event.payload
            out.print(f"  {event.created_at:%Y-%m-%d %H:%M} {event.subject} run {p.get('old')} replaced by "
                      f"{p.get('new')} ({p.get('by')}): {p.get('why')}", markup=False, highlight=False)
        out.print("Budget:")
        for line in budget:
            out.print(f"  {line.replace('*', '')}", markup=False, highlight=False)
        gate_table(rows)

    guarded(run)


def run_line(prefect: PrefectRuns, flow_run_id: str, current: bool) -> str:
    """`flow run ID: STATE (why)`, with what to do when the current phase's run is dead."""
    from phasegate.errors import ServiceUnavailable

    try:
        status = prefect.status(flow_run_id)
    except ServiceUnavailable as exc:
        return f"flow run {flow_run_id}: unknown ({exc})"
    advice = " — `phasegate phase retry` starts it again" if current and status.health.dead else ""
    return f"flow run {flow_run_id}: {status.health.value}" + (f" ({status.why})" if status.why else "") + advice


def phase_retry(engagement_id: str) -> None:
    """Start the current phase's flow run again after it crashed, failed, was cancelled or deleted;
    the new run finds every done step in the ledger. Refused while the run is alive."""
    from phasegate.ledger.models import utcnow
    from phasegate.operator import cli_operator
    from phasegate.orchestration import recovery
    from phasegate.orchestration.runs import PrefectRuns

    def run(rt: Runtime) -> None:
        new_id = recovery.retry(rt, PrefectRuns(), engagement_id, by=cli_operator(), now=utcnow())
        out.print(f"{engagement_id}: flow run {new_id} started; it picks up from the ledger")

    guarded(run)


def engagement_cancel(engagement_id: str,
                      reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit trail.")]) -> None:
    """End an engagement that no gate will end: recorded with who and why, its flow runs cancelled."""
    from phasegate.operator import cli_operator
    from phasegate.orchestration import recovery
    from phasegate.orchestration.runs import PrefectRuns

    def run(rt: Runtime) -> None:
        problems = recovery.cancel(rt, PrefectRuns(), engagement_id, reason=reason, by=cli_operator())
        out.print(f"{engagement_id}: cancelled")
        for problem in problems:
            err.print(f"phasegate: warning: {problem}", markup=False, highlight=False)

    guarded(run)

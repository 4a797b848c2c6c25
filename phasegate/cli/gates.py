"""`phasegate gate list|show|decide`: the gates of every engagement, their evidence, and an answer from the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from phasegate.cli.base import All, AsUser, Limit, gate_table, guarded, out, reading
from phasegate.states import Outcome

if TYPE_CHECKING:  # the ledger, Prefect and the Jira and Slack clients load only in the commands that use them
    from phasegate.orchestration.runtime import Runtime

gate_app = typer.Typer(help="List, show and decide gates.", no_args_is_help=True)


@gate_app.command("list")
def gate_list(engagement_id: Annotated[str | None, typer.Argument()] = None,
              open_only: Annotated[bool, typer.Option("--open", help="Only gates waiting for answers.")] = False,
              limit: Limit = 50, show_all: All = False) -> None:
    """Gates, newest revision last (the newest 50)."""
    from phasegate.ledger.read import newest_gates

    rows, total = reading(lambda conn: newest_gates(conn, engagement_id, open_only=open_only,
                                                    limit=None if show_all else limit))
    gate_table(rows)
    if total > len(rows):
        out.print(f"the newest {len(rows)} of {total} (--limit N, --all)", markup=False, highlight=False)


@gate_app.command("show")
def gate_show(gate_id: int) -> None:
    """A gate's evidence, answers and outcome."""
    from phasegate.ledger import gates
    from phasegate.ledger.db import transaction
    from phasegate.ledger.verify import gate_warnings

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            gate = gates.by_id(session, gate_id)
            snapshot = gates.snapshot_of(session, gate)
            out.print(f"[bold]{gate.name}[/bold] timebox {gate.timebox} revision {gate.revision}: {gate.state.value}"
                      + (f" → {gate.outcome.label}" if gate.outcome else ""))
            out.print(f"evidence digest {gate.digest}")
            if gate.reopened_because:
                out.print(f"reopened because: {gate.reopened_because}")
            for c in snapshot.criteria:
                out.print(f"  {c.result.value:8} {c.label} (seen {c.seen})")
            for m in snapshot.milestones:
                why = f" (not done: {', '.join(m.not_done[:5])}{' …' if len(m.not_done) > 5 else ''})" if m.not_done else ""
                state = "done" if m.done else (f"open{why}" if m.done is False else f"missing: {m.error}")
                out.print(f"  milestone {m.key}: {state} [{m.source}: {m.query}]", markup=False)
            for w in snapshot.warnings:
                out.print(f"  warning: {w}", markup=False)
            for heading, lines in snapshot.selection.sections() if snapshot.selection else ():
                out.print(f"  {heading}:" + "".join(f"\n    {line}" for line in lines), markup=False)
            for warning in gate_warnings(session, gate):
                out.print(f"warning: {warning}", markup=False)
            for d in gates.decisions(session, gate.id):
                by = f" (recorded from the CLI by {d.operator})" if d.operator else ""
                out.print(f"  {d.created_at:%Y-%m-%d %H:%M} {d.approver} ({d.side}) {d.outcome.label} via "
                          f"{d.via.value}{by}" + (f": {d.reason}" if d.reason else ""), markup=False)
            posted = gate.message_ts is not None
        if posted:
            redraw(rt, gate_id)

    guarded(run, prefect=False)


def redraw(rt: Runtime, gate_id: int) -> None:
    """`gate show` draws the gate's Slack prompt again from the ledger (a prompt left with live
    buttons after a decision converges here); a Slack failure is a warning line."""
    from phasegate.errors import EXPECTED
    from phasegate.messages.prompts import refresh

    try:
        refresh(rt.sessions, rt.chat, gate_id)
    except EXPECTED as exc:
        out.print(f"warning: could not redraw the Slack prompt ({exc})", markup=False)
        return
    out.print("Slack prompt redrawn from the ledger")


@gate_app.command("decide")
def gate_decide(gate_id: int, outcome: Annotated[Outcome, typer.Argument(case_sensitive=False)], approver: AsUser,
                reason: Annotated[str, typer.Option(help="Required for no_go, extend and not_yet; for go/accept while exit "
                                                     "criteria fail or are missing, the written waiver.")] = "") -> None:
    """Answer a gate from the terminal, under the same policy as Slack."""
    from phasegate.gates import operations
    from phasegate.operator import cli_operator

    def run(rt: Runtime) -> None:
        result = operations.decide(rt, gate_id, approver=approver, outcome=outcome, reason=reason,
                                   operator=cli_operator())
        if not result.recorded:
            out.print("unchanged: that answer was already recorded")
        elif result.decided:
            out.print(f"{result.gate.name}: decided {result.decided.label}")
        else:
            out.print(f"{result.gate.name}: answer recorded; the quorum is not met yet")

    guarded(run)

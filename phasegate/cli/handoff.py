"""`phasegate team show|change` and `phasegate evidence check`: the vendor's named team and the
client's running checks (knowledge transfer, data deletion), each recorded in the audit chain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from phasegate.cli.base import AsUser, guarded, out

if TYPE_CHECKING:
    from phasegate.orchestration.runtime import Runtime

team_app = typer.Typer(help="The vendor's named team: who it is and how it changed.", no_args_is_help=True)


@team_app.command("show")
def team_show(engagement_id: str) -> None:
    """The vendor's team as the file names it, with every recorded change applied."""
    from phasegate.ledger import engagements, handoff
    from phasegate.ledger.db import transaction
    from phasegate.rules.handoff import roster

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions, write=False) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            changes = handoff.team_changes(session, engagement_id)
        team = roster(config.vendor_team, changes)
        out.print(f"{config.vendor}'s team for {engagement_id}: "
                  + (", ".join(f"{name} ({role})" for name, role in team) or "nobody named"), markup=False)
        for c in changes:
            out.print(f"  {c.at:%Y-%m-%d} {c.name} ({c.role}) {c.kind}: {c.reason}", markup=False, highlight=False)

    guarded(run, prefect=False)


@team_app.command("change")
def team_change(engagement_id: str, approver: AsUser,
                reason: Annotated[str, typer.Option(help="Why the team changes (recorded).")],
                leaves: Annotated[str | None, typer.Option(help="The name of who leaves the team.")] = None,
                joins: Annotated[str | None, typer.Option(help="The name of who joins the team.")] = None,
                role: Annotated[str | None, typer.Option(help="The role of who joins.")] = None) -> None:
    """Record that a named individual left the vendor's team and/or one joined; shown in the weekly
    report and at the next gate."""
    from phasegate.errors import PolicyError
    from phasegate.ledger import engagements, handoff
    from phasegate.ledger.db import transaction
    from phasegate.operator import cli_operator
    from phasegate.states import Via

    def run(rt: Runtime) -> None:
        if joins is not None and not role:
            raise PolicyError("give --role for who joins")
        with transaction(rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            changes = handoff.change_team(session, config, joins=(joins, role or "") if joins else None,
                                          leaves=leaves, by=approver, reason=reason, via=Via.CLI,
                                          operator=cli_operator())
        for c in changes:
            out.print(f"{engagement_id}: {c.name} ({c.role}) {c.kind} the vendor's team", markup=False)

    guarded(run, prefect=False)


def evidence_check(engagement_id: str, check: Annotated[str, typer.Argument(
        help="repository, decisions, pairing (knowledge transfer) or data-deleted.")],
                   approver: AsUser,
                   no: Annotated[bool, typer.Option("--no", help="It does not hold this week.")] = False,
                   note: str = "") -> None:
    """The client side confirms a running check: the vendor works in our repositories, decisions are
    written down, our engineers pair (each week from the PoC through development), or the data is deleted."""
    from phasegate.ledger import engagements, handoff
    from phasegate.ledger.db import transaction
    from phasegate.operator import cli_operator
    from phasegate.states import Via

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            handoff.attest_check(session, config, check, by=approver, holds=not no, via=Via.CLI, note=note,
                                 operator=cli_operator())
        out.print(f"{engagement_id} {check}: {'does not hold' if no else 'holds'}, attested by {approver}",
                  markup=False)

    guarded(run, prefect=False)

"""`phasegate budget ...`: spend recorded per phase, and the engagement's budget lines.

Spend comes in as typed (a positive decimal), with who typed it (`--as`, the PM or an approver)
and from where (user@host), append-only like decisions. Heavy imports stay inside the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from phasegate.cli.base import AsUser, guarded, out
from phasegate.configs.enums import Phase

if TYPE_CHECKING:
    from phasegate.orchestration.runtime import Runtime

budget_app = typer.Typer(help="Spend per phase against the PoC cap, the team cost and the change budget.",
                         no_args_is_help=True)


@budget_app.command("spend")
def budget_spend(
    engagement_id: str, phase: Annotated[Phase, typer.Argument(case_sensitive=False)],
    amount: Annotated[str, typer.Argument(help="A positive decimal in the engagement's currency, e.g. 12500.")],
    by: AsUser,
    note: Annotated[str, typer.Option(help="What the money went on (an invoice, a month of work).")] = "",
) -> None:
    """Record money spent in a phase; the PM or an approver of the engagement."""
    from phasegate.ledger import engagements, spend
    from phasegate.ledger.db import transaction
    from phasegate.operator import cli_operator
    from phasegate.rules.budget import money

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            row = spend.record(session, config, phase, amount, by=by, note=note, operator=cli_operator())
            status = spend.status_of(session, engagement_id, engagement=config)
        out.print(f"{engagement_id} {phase.value}: {money(row.amount)} {config.budget.currency} recorded",
                  markup=False, highlight=False)
        for line in status.lines():
            out.print(f"  {line.replace('*', '')}", markup=False, highlight=False)

    guarded(run, prefect=False)


@budget_app.command("show")
def budget_show(engagement_id: str) -> None:
    """The budget lines and every spend entry, oldest first."""
    from phasegate.ledger import engagements, spend
    from phasegate.ledger.db import transaction
    from phasegate.rules.budget import money

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            status = spend.status_of(session, engagement_id, engagement=config)
            rows = spend.entries(session, engagement_id)
        for line in status.lines():
            out.print(line.replace("*", ""), markup=False, highlight=False)
        for r in rows:
            out.print(f"  {r.created_at:%Y-%m-%d} {r.phase.value}: {money(r.amount)} {config.budget.currency} "
                      f"by {r.recorded_by}" + (f" ({r.note})" if r.note else ""), markup=False, highlight=False)

    guarded(run, prefect=False)

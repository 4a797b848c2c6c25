"""`phasegate audit`: verify the hash-chained trail, export the decision history.

A sub-app of phasegate/cli/main.py, kept apart so that the main CLI module stays small; it shares that
module's one-line error handling.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phasegate.cli.base import err, guarded, out
from phasegate.states import ExportFormat

if TYPE_CHECKING:
    from phasegate.orchestration.runtime import Runtime

audit_app = typer.Typer(help="Verify the tamper-evident audit trail and export decision histories.",
                        no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(engagement_id: Annotated[str | None, typer.Argument(help="One engagement (default: all).")] = None
                 ) -> None:
    """Walk the audit chain and name every edited, deleted, reordered or truncated row (exit 1 if any)."""
    from phasegate.errors import NotFound
    from phasegate.ledger import verify as chain_verify
    from phasegate.ledger.db import transaction

    def run(rt: Runtime) -> int:
        with transaction(rt.sessions) as session:
            if engagement_id is not None and engagement_id not in chain_verify.engagement_ids(session):
                raise NotFound(f"no engagement {engagement_id!r} in the ledger")
            reports = chain_verify.verify(session, engagement_id)
        problems = [p for r in reports for p in r.problems]
        for problem in problems:
            err.print(f"phasegate: {problem}", markup=False, highlight=False)
        for r in reports:
            if r.intact:
                out.print(f"{r.engagement_id}: {r.events} events intact, head #{r.head_seq} {r.head_hash}",
                          markup=False, highlight=False)
        if problems:
            return 1
        out.print(f"audit chain intact: {sum(r.events for r in reports)} events in {len(reports)} "
                  f"engagement{'s' if len(reports) != 1 else ''}", markup=False, highlight=False)
        return 0

    if guarded(run, prefect=False):
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(engagement_id: str,
                 fmt: Annotated[ExportFormat, typer.Option("--format", case_sensitive=False)] = ExportFormat.MD,
                 out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None
                 ) -> None:
    """The decision history for a steering committee: each gate, its evidence digest, every answer."""
    from phasegate.ledger.db import transaction
    from phasegate.ledger.history import decision_history
    from phasegate.reports.audit import render

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            found = decision_history(session, engagement_id)
        text = render(found, fmt)
        if out_file is None:
            typer.echo(text, nl=False)
        else:
            out_file.write_text(text, encoding="utf-8")
            out.print(f"{engagement_id}: decision history written to {out_file}", markup=False, highlight=False)

    guarded(run, prefect=False)

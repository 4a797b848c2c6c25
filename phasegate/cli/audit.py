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
    from phasegate.integrations.slack_chat import SlackChat
    from phasegate.ledger.verify import ChainReport
    from phasegate.ledger.witness import WitnessCheck
    from phasegate.orchestration.runtime import Runtime

audit_app = typer.Typer(help="Verify the tamper-evident audit trail and export decision histories.",
                        no_args_is_help=True)


def slack_or_none(rt: Runtime) -> SlackChat | None:
    """The Slack client the witnesses are read with; None without a bot token (said as "not checked")."""
    return rt.chat if rt.settings.slack_bot_token.get_secret_value() else None


def verified_line(r: ChainReport, check: WitnessCheck) -> str:
    from phasegate.reports.audit_words import head_words

    return f"{r.engagement_id}: {head_words(r, check)}"


@audit_app.command("verify")
def audit_verify(engagement_id: Annotated[str | None, typer.Argument(help="One engagement (default: all).")] = None
                 ) -> None:
    """Walk the audit chain, compare it with the heads witnessed in Slack, and name every edited, deleted,
    reordered, rewritten or truncated row (exit 1 if any; exit 2 if no problem but Slack could not be read)."""
    from phasegate.errors import NotFound
    from phasegate.ledger import verify as chain_verify
    from phasegate.ledger.db import transaction
    from phasegate.messages import witness

    def run(rt: Runtime) -> int:
        with transaction(rt.sessions) as session:
            if engagement_id is not None and engagement_id not in chain_verify.engagement_ids(session):
                raise NotFound(f"no engagement {engagement_id!r} in the ledger")
            reports = chain_verify.verify(session, engagement_id)
        chat = slack_or_none(rt)
        checks = [witness.check(rt.sessions, chat, r.engagement_id) for r in reports]
        problems = [p for r, c in zip(reports, checks, strict=True) for p in r.problems + c.problems]
        for problem in problems:
            err.print(f"phasegate: {problem}", markup=False, highlight=False)
        for r, c in zip(reports, checks, strict=True):
            if r.intact and not c.problems:
                out.print(verified_line(r, c), markup=False, highlight=False)
        if problems:
            return 1
        events, engagements = sum(r.events for r in reports), f"{len(reports)} engagement{'s' if len(reports) != 1 else ''}"
        unchecked = [c for c in checks if c.not_checked is not None]
        if unchecked:
            out.print(f"audit chain consistent in the database: {events} events in {engagements}; witness not "
                      f"checked for {len(unchecked)}: {unchecked[0].not_checked}", markup=False, highlight=False)
            return 2
        out.print(f"audit chain intact: {events} events in {engagements}", markup=False, highlight=False)
        return 0

    code = guarded(run, prefect=False)
    if code:
        raise typer.Exit(code)


@audit_app.command("export")
def audit_export(engagement_id: str,
                 fmt: Annotated[ExportFormat, typer.Option("--format", case_sensitive=False)] = ExportFormat.MD,
                 out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None
                 ) -> None:
    """The record for a steering committee: gates and their answers (waivers marked), change requests and
    their effect on the baseline, spend against the budget, names beside ids, and the chain head."""
    from phasegate.ledger.db import transaction
    from phasegate.ledger.history import decision_history
    from phasegate.messages import witness
    from phasegate.reports.audit import render

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            found = decision_history(session, engagement_id)
        text = render(found, fmt, witness.check(rt.sessions, slack_or_none(rt), engagement_id))
        if out_file is None:
            typer.echo(text, nl=False)
        else:
            out_file.write_text(text, encoding="utf-8")
            out.print(f"{engagement_id}: decision history written to {out_file}", markup=False, highlight=False)

    guarded(run, prefect=False)

"""`phasegate cr drift` and `phasegate cr draft-drift`: scope drift (R-CR-4) from the terminal.

Registered on the `cr` sub-app; heavy imports stay inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phasegate.cli.base import err, fail, guarded, out
from phasegate.cli.changes import announce_filed, cr_app

if TYPE_CHECKING:
    from phasegate.orchestration.runtime import Runtime


@cr_app.command("drift")
def cr_drift(engagement_id: str) -> None:
    """Jira issues that entered the running phase's scope after its baseline, or left it, with no
    approved change request. Exit code 1 when there are any (or the check could not be made)."""
    from phasegate.changes import operations as cr_operations

    def run(rt: Runtime) -> int:
        found = cr_operations.drift_of(rt, engagement_id)
        if found.error:
            fail(f"{engagement_id}: scope drift not checked: {found.error}")
        if not found.count:
            out.print(f"{engagement_id} {found.phase.value}: no scope drift", markup=False)
            return 0
        if found.items:
            out.print(f"{engagement_id} {found.phase.value}: {len(found.items)} issues entered the scope after the "
                      "baseline with no approved change request", markup=False)
        for item in found.items:
            out.print(f"  {item.key}  {item.summary}  (under {item.milestone})", markup=False, highlight=False)
        if found.left:
            out.print(f"{engagement_id} {found.phase.value}: {len(found.left)} issues of the baseline left the scope "
                      "with no approved change request removing them (each counts as not done)", markup=False)
        for item in found.left:
            out.print(f"  {item.key}  (under {item.milestone or 'a milestone the baseline does not name'})",
                      markup=False, highlight=False)
        out.print(f"file a request covering them: phasegate cr draft-drift {engagement_id} --submit --as U…",
                  markup=False)
        return 1

    if guarded(run):
        raise typer.Exit(1)


@cr_app.command("draft-drift")
def cr_draft_drift(
    engagement_id: str,
    requested_by: Annotated[str | None, typer.Option("--as", help="Your Slack user id (with --submit).")] = None,
    submit: Annotated[bool, typer.Option("--submit", help="File the drafted request now.")] = False,
    to: Annotated[Path | None, typer.Option("--out", help="Write the draft as YAML here (for `cr submit --file`).")]
    = None,
) -> None:
    """A change request pre-filled to cover the drift: printed (or written with --out) to edit and file
    with `cr submit --file`, or filed at once with --submit --as U…."""
    import yaml

    from phasegate.changes import operations as cr_operations
    from phasegate.operator import cli_operator
    from phasegate.rules import drift
    from phasegate.states import ChangeSource

    if submit and not requested_by:
        fail("--submit needs --as with your Slack user id")

    def run(rt: Runtime) -> None:
        found = cr_operations.drift_of(rt, engagement_id)
        if found.error:
            fail(f"{engagement_id}: scope drift not checked: {found.error}")
        if not found.count:
            out.print(f"{engagement_id} {found.phase.value}: no scope drift, nothing to draft", markup=False)
            return
        draft = drift.draft(found)
        if submit and requested_by:
            filed = cr_operations.file(rt.sessions, engagement_id, draft, requested_by=requested_by,
                                       source=ChangeSource.CLI, operator=cli_operator())
            announce_filed(rt, filed, engagement_id)
            return
        text = yaml.safe_dump({"title": draft.title, "rationale": draft.rationale, "phase": found.phase.value,
                               "scope_added": list(draft.scope_added), "scope_removed": list(draft.scope_removed),
                               "effort_days": 0, "schedule_days": 0,
                               "cost": 0}, sort_keys=False, allow_unicode=True)
        if to is not None:
            to.write_text(text, encoding="utf-8")
            err.print(f"draft written to {to}; fill in effort, schedule and cost, then: "
                      f"phasegate cr submit {engagement_id} --file {to} --as U…", markup=False)
        else:
            out.print(text, markup=False, highlight=False, end="")

    guarded(run)

"""`phasegate cr ...` and `phasegate engagement apply`: change requests from the terminal.

Filed, answered and withdrawn through the same ledger functions and policy as in Slack, with
channel `cli`. Heavy imports stay inside the commands (start-up time matters).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from phasegate.cli.base import AsUser, err, guarded, out
from phasegate.configs.enums import Phase
from phasegate.errors import EXPECTED, ConfigError
from phasegate.states import ChangeSource, Outcome

if TYPE_CHECKING:
    from phasegate.orchestration.runtime import Runtime

cr_app = typer.Typer(help="Change requests: file, list, decide, withdraw, export the change log.",
                     no_args_is_help=True)


class Answer(str, enum.Enum):
    APPROVE = "approve"
    REJECT = "reject"


class LogFormat(str, enum.Enum):
    MD = "md"
    CSV = "csv"


def read_file(path: Path) -> dict[str, Any]:
    import yaml

    from phasegate.rules.change_fields import FIELDS

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read the change request: {str(exc).splitlines()[0]}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping of change-request fields"])
    unknown = sorted(set(map(str, data)) - set(FIELDS))
    if unknown:
        raise ConfigError([f"{path}: {key}: unknown key" for key in unknown])
    return data


def announce_filed(rt: Runtime, filed: Any, engagement_id: str) -> None:
    from phasegate.changes import operations as cr_operations

    out.print(f"{filed.name}: {'filed' if filed.created else 'already filed'} and assessed", markup=False)
    for line in filed.assessment.lines():
        out.print(f"  {line.replace('*', '')}", markup=False)
    try:
        cr_operations.start_flow(engagement_id, filed.number)
        out.print("approval prompt on its way to the engagement channel")
    except EXPECTED as exc:  # the request stays filed; say so rather than fail the command
        err.print(f"phasegate: {filed.name} is filed, but its approval flow did not start ({exc}); run "
                  f"`phasegate cr prompt {engagement_id} {filed.number}` once `phasegate up` runs", markup=False)


@cr_app.command("submit")
def cr_submit(
    engagement_id: str, requested_by: AsUser,
    title: Annotated[str, typer.Option(help="What changes, in a line.")] = "",
    rationale: Annotated[str, typer.Option(help="Why.")] = "",
    phase: Annotated[Phase | None, typer.Option(case_sensitive=False, help="Default: the running phase.")] = None,
    add: Annotated[list[str] | None, typer.Option("--add", help="A scope item added (repeat).")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="A scope item removed (repeat).")] = None,
    effort_days: Annotated[float, typer.Option(help="Person-days of effort.")] = 0.0,
    schedule_days: Annotated[int, typer.Option(help="Days the phase's timebox moves (negative: earlier).")] = 0,
    cost: Annotated[float, typer.Option(help="Cost, in the engagement's currency.")] = 0.0,
    jira_issue: Annotated[str | None, typer.Option(help="The Jira issue this request comes from.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A YAML file with these fields instead.")] = None,
) -> None:
    """File a change request; it is assessed at once and put to its approvers in Slack."""
    from phasegate.changes import operations as cr_operations
    from phasegate.operator import cli_operator
    from phasegate.rules.change_fields import draft_from_fields

    def run(rt: Runtime) -> None:
        options = {"title": title, "rationale": rationale, "phase": phase, "scope_added": add or [],
                   "scope_removed": remove or [], "effort_days": effort_days, "schedule_days": schedule_days,
                   "cost": cost, "jira_issue": jira_issue}
        draft = draft_from_fields(options | (read_file(file) if file else {}))  # read as the Slack form is
        filed = cr_operations.file(rt.sessions, engagement_id, draft, requested_by=requested_by,
                                   source=ChangeSource.CLI, operator=cli_operator())
        announce_filed(rt, filed, engagement_id)

    guarded(run)


@cr_app.command("prompt")
def cr_prompt(engagement_id: str, number: int) -> None:
    """Start the approval flow of a filed request (when Prefect was down as it was filed), or a new
    one when its run died; the new run picks up from the ledger."""
    from phasegate.operator import cli_operator
    from phasegate.orchestration import recovery
    from phasegate.orchestration.runs import PrefectRuns

    def run(rt: Runtime) -> None:
        done = recovery.prompt_change_request(rt, PrefectRuns(), engagement_id, number, by=cli_operator())
        if done.replaced is None:
            out.print(f"{engagement_id} CR-{number}: {done.status.line}", markup=False, highlight=False)
            return
        out.print(f"{engagement_id} CR-{number}: {done.status.line}; started flow run {done.flow_run_id}, "
                  "which picks up from the ledger", markup=False, highlight=False)
        if done.problem:
            err.print(f"phasegate: {done.problem}", markup=False)

    guarded(run)


@cr_app.command("list")
def cr_list(engagement_id: str) -> None:
    """An engagement's change requests with their state."""
    from rich.table import Table

    from phasegate.ledger import change_requests as crs
    from phasegate.ledger.db import transaction
    from phasegate.ledger.engagements import get
    from phasegate.rules.change_requests import figure

    def run(rt: Runtime) -> None:
        table = Table("CR", "title", "phase", "state", "by", "cost", "schedule", "baseline")
        with transaction(rt.sessions) as session:
            get(session, engagement_id)
            for cr in crs.all_for(session, engagement_id):
                unknown = crs.not_estimated(cr)
                table.add_row(f"CR-{cr.number}", cr.title, cr.phase.value, cr.state.value, cr.requested_by,
                              figure(cr.cost, "cost", unknown), figure(cr.schedule_days, "schedule_days", unknown, "d"),
                              f"v{cr.baseline_version}"
                              if cr.baseline_version else "-")
        out.print(table)

    guarded(run)


@cr_app.command("show")
def cr_show(engagement_id: str, number: int) -> None:
    """One request: its fields, assessment and answers."""
    from phasegate.ledger import change_requests as crs
    from phasegate.ledger import engagements
    from phasegate.ledger.db import transaction
    from phasegate.messages.changes import summary
    from phasegate.reports.build import names

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            cr = crs.by_number(session, engagement_id, number)
            config = engagements.config_of(engagements.get(session, engagement_id))
            who = names(config)
            out.print(f"{cr.name} {cr.title}: {cr.state.value}" + (f" ({cr.closed_reason})" if cr.closed_reason else "")
                      + (f", baseline v{cr.baseline_version}" if cr.baseline_version else ""), markup=False)
            out.print(f"filed by {cr.requested_by} via {cr.source.value} on {cr.created_at:%Y-%m-%d}"
                      + (f" (from the CLI by {cr.operator})" if cr.operator else ""), markup=False)
            out.print(summary(cr, config.budget.currency).replace("*", ""), markup=False)
            assessment = crs.assessment_of(cr)
            for line in assessment.lines() if assessment else []:
                out.print(f"  {line.replace('*', '')}", markup=False)
            for d in crs.decisions(session, cr.id):
                by = f" (recorded from the CLI by {d.operator})" if d.operator else ""
                person = f"{who[d.approver]} ({d.approver}, {d.side})" if d.approver in who else f"{d.approver} ({d.side})"
                out.print(f"  {d.created_at:%Y-%m-%d %H:%M} {person} {d.outcome.label} via "
                          f"{d.via.value}{by}" + (f": {d.reason}" if d.reason else ""), markup=False)

    guarded(run)


def cr_id_of(rt: Runtime, engagement_id: str, number: int) -> int:
    from phasegate.ledger import change_requests as crs
    from phasegate.ledger.db import transaction

    with transaction(rt.sessions) as session:
        return crs.by_number(session, engagement_id, number).id


@cr_app.command("decide")
def cr_decide(engagement_id: str, number: int, answer: Annotated[Answer, typer.Argument(case_sensitive=False)],
              approver: AsUser, reason: Annotated[str, typer.Option(help="Required to reject.")] = "") -> None:
    """Approve or reject from the terminal, under the same policy as Slack."""
    from phasegate.changes import operations as cr_operations
    from phasegate.operator import cli_operator

    def run(rt: Runtime) -> None:
        result = cr_operations.decide(rt, cr_id_of(rt, engagement_id, number), approver=approver,
                                      outcome=Outcome(answer.value), reason=reason, operator=cli_operator())
        if not result.recorded:
            out.print("unchanged: that answer was already recorded")
        elif result.decided:
            out.print(f"{result.cr.name}: {result.decided.value}"
                      + (f", baseline v{result.cr.baseline_version}" if result.cr.baseline_version else ""))
        else:
            out.print(f"{result.cr.name}: answer recorded; the quorum is not met yet")

    guarded(run)


@cr_app.command("withdraw")
def cr_withdraw(engagement_id: str, number: int, by: AsUser,
                reason: Annotated[str, typer.Option(help="Why it is withdrawn.")] = "") -> None:
    """Take back an open request (its requester or the PM)."""
    from phasegate.changes import operations as cr_operations
    from phasegate.operator import cli_operator

    def run(rt: Runtime) -> None:
        cr_operations.withdraw(rt, cr_id_of(rt, engagement_id, number), by=by, reason=reason, operator=cli_operator())
        out.print(f"{engagement_id} CR-{number}: withdrawn")

    guarded(run)


@cr_app.command("log")
def cr_log(engagement_id: str,
           fmt: Annotated[LogFormat, typer.Option("--format", case_sensitive=False)] = LogFormat.MD) -> None:
    """The engagement's change log, as Markdown or CSV, on stdout."""
    from phasegate.ledger.db import transaction
    from phasegate.ledger.history import change_log
    from phasegate.reports import change_log as export

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            log = change_log(session, engagement_id)
        text = export.as_csv(log) if fmt is LogFormat.CSV else export.as_markdown(log)
        typer.echo(text, nl=False)

    guarded(run)


def engagement_apply(file: Path, requested_by: AsUser,
                     title: Annotated[str, typer.Option(help="Title of the change request.")] = "") -> None:
    """Register a new engagement file, or, for a running engagement, show the changes and file them
    as a change request (its approval replaces the file)."""
    from phasegate.changes import operations as cr_operations
    from phasegate.configs.loader import load_engagement
    from phasegate.ledger import engagements
    from phasegate.ledger.db import transaction
    from phasegate.ledger.models import EngagementRow
    from phasegate.operator import cli_operator
    from phasegate.rules.change_requests import Draft, diff
    from phasegate.states import EngagementState

    def run(rt: Runtime) -> None:
        new = load_engagement(file)
        with transaction(rt.sessions) as session:
            row = session.get(EngagementRow, new.id)
            if row is None or row.state is EngagementState.REGISTERED:
                _, changed = engagements.register(session, new, operator=cli_operator())
                out.print(f"{new.id}: {'registered' if changed else 'already registered, unchanged'}")
                return
            old = engagements.config_of(row)
            phase = row.current_phase
        changes = diff(old.model_dump(mode="json"), new.model_dump(mode="json"))
        if not changes:
            out.print(f"{new.id}: unchanged")
            return
        out.print(f"{new.id} is {row.state.value}; the file differs from the current baseline:")
        for line in changes:
            out.print(f"  {line}", markup=False)
        weeks = (new.phases.of(phase).planned_weeks - old.phases.of(phase).planned_weeks) if phase else 0
        draft = Draft(title=title or f"Amend the engagement file ({len(changes)} changes)",
                      rationale="\n".join(changes)[:3000], phase=phase, schedule_days=weeks * 7,
                      amendment=new.model_dump(mode="json"))
        filed = cr_operations.file(rt.sessions, new.id, draft, requested_by=requested_by, source=ChangeSource.FILE,
                                   operator=cli_operator())
        announce_filed(rt, filed, new.id)

    guarded(run)

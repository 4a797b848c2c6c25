"""The `phasegate` command. Every expected error (phasegate.errors.EXPECTED) becomes one line on stderr and exit code 1."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DataError, SQLAlchemyError
from typer._click.exceptions import ClickException, UsageError  # typer 0.29 vendors click

from configs.loader import load_engagement
from configs.schema import Phase, number
from phasegate import cli_init, cli_reports
from phasegate.cli_operator import cli_operator
from phasegate.errors import EXPECTED, ConfigError
from phasegate.ledger import engagements, gates
from phasegate.ledger.db import transaction, upgrade
from phasegate.ledger.verify import gate_warnings
from phasegate.local import cli_prefect_api
from phasegate.runtime import Runtime
from phasegate.settings import Settings
from phasegate.states import Outcome, Via

if TYPE_CHECKING:  # the Jira and Slack clients load only when a command needs them
    from phasegate.runtime import Runtime

app = typer.Typer(help="Phased AI-development engagements as Prefect workflows, with gates answered in Slack.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
engagement_app = typer.Typer(help="Register and inspect engagements.", no_args_is_help=True)
phase_app = typer.Typer(help="Start phases and ask for gate reviews.", no_args_is_help=True)
gate_app = typer.Typer(help="List, show and decide gates.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence recorded by hand: attestations and metric values.", no_args_is_help=True)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
for sub, name in ((engagement_app, "engagement"), (phase_app, "phase"), (gate_app, "gate"),
                  (evidence_app, "evidence"), (db_app, "db")):
    app.add_typer(sub, name=name)
app.add_typer(cli_reports.report_app, name="report")
app.add_typer(cli_reports.status_app, name="status")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
AsUser = Annotated[str, typer.Option("--as", help="Your Slack user id, as listed in the engagement file.")]


def fail(message: str) -> None:
    err.print(f"phasegate: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


def runtime() -> Runtime:
    """Settings from the environment; the SQLite default ledger is created or upgraded on first use."""
    from phasegate.runtime import Runtime

    settings = Settings()
    if not settings.database_url:
        upgrade(settings.ledger_url)
    return Runtime(settings)


def guarded(action: Callable[[Runtime], T]) -> T:
    try:
        rt = runtime()
    except EXPECTED as exc:
        fail(str(exc))
        raise
    try:
        with cli_prefect_api(rt.settings):
            return action(rt)
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            err.print(f"phasegate: {problem}", markup=False, highlight=False)
        fail(exc.problems[-1])
        raise
    except EXPECTED as exc:
        fail(str(exc))
        raise
    except DataError as exc:  # a value the database cannot store: not a schema that needs upgrading
        reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
        fail(f"the ledger refused a value: {reason[0] if reason else type(exc.orig).__name__}")
        raise
    except SQLAlchemyError as exc:
        fail(f"ledger error ({type(exc).__name__}): {str(exc).splitlines()[0]} — has `phasegate db upgrade` been run?")
        raise
    finally:
        rt.close()


@app.callback()
def root(version: cli_init.Version = False) -> None:
    """Phased AI-development engagements as Prefect workflows, with gates answered in Slack."""


@engagement_app.command("create")
def engagement_create(file: Path, strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse a plan that departs from the guide (warnings become errors).")] = False) -> None:
    """Validate an engagement file, check its plan against the guide, and register it in the ledger."""

    def run(rt: Runtime) -> None:
        engagement = load_engagement(file)
        warnings = cli_init.check_plan(engagement, file, strict=strict)
        with transaction(rt.sessions) as session:
            _, changed = engagements.register(session, engagement)
        out.print(f"{engagement.id}: {'registered' if changed else 'already registered, unchanged'}")
        cli_init.print_warnings(warnings)  # after the outcome, so a refusal stays one line

    guarded(run)


@engagement_app.command("list")
def engagement_list() -> None:
    """Engagements in the ledger with their state and current phase."""

    def run(rt: Runtime) -> None:
        table = Table("id", "name", "state", "phase")
        with transaction(rt.sessions) as session:
            for row in engagements.all_rows(session):
                table.add_row(row.id, row.name, row.state.value, row.current_phase.value if row.current_phase else "-")
        out.print(table)
        demo_home = rt.settings.home / "demo"
        if (demo_home / "ledger.db").exists() and not rt.settings.database_url:
            out.print(f"(`phasegate demo` keeps its engagements in a ledger of its own: "
                      f"PHASEGATE_HOME={demo_home} phasegate engagement list)", markup=False, highlight=False)

    guarded(run)


def gate_table(rows: list[Any]) -> None:
    table = Table("gate id", "engagement", "gate", "timebox", "rev", "state", "outcome", "digest")
    for g in rows:
        table.add_row(str(g.id), g.engagement_id, g.phase.gate, str(g.timebox), str(g.revision), g.state.value,
                      g.outcome.label if g.outcome else "-", g.digest[:12])
    out.print(table)


@gate_app.command("list")
def gate_list(engagement_id: Annotated[str | None, typer.Argument()] = None,
              open_only: Annotated[bool, typer.Option("--open", help="Only gates waiting for answers.")] = False) -> None:
    """Gates, newest revision last."""

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            if engagement_id:
                engagements.get(session, engagement_id)
            gate_table(gates.open_gates(session, engagement_id) if open_only else gates.all_gates(session, engagement_id))

    guarded(run)


@gate_app.command("show")
def gate_show(gate_id: int) -> None:
    """A gate's evidence, answers and outcome."""

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
                state = "done" if m.done else ("open" if m.done is False else f"missing: {m.error}")
                out.print(f"  milestone {m.key}: {state} [{m.source}: {m.query}]", markup=False)
            for w in snapshot.warnings:
                out.print(f"  warning: {w}", markup=False)
            for warning in gate_warnings(session, gate):
                out.print(f"warning: {warning}", markup=False)
            for d in gates.decisions(session, gate.id):
                by = f" (recorded from the CLI by {d.operator})" if d.operator else ""
                out.print(f"  {d.created_at:%Y-%m-%d %H:%M} {d.approver} ({d.side}) {d.outcome.label} via "
                          f"{d.via.value}{by}" + (f": {d.reason}" if d.reason else ""), markup=False)

    guarded(run)


@gate_app.command("decide")
def gate_decide(gate_id: int, outcome: Annotated[Outcome, typer.Argument(case_sensitive=False)], approver: AsUser,
                reason: Annotated[str, typer.Option(help="Required for no_go, extend and not_yet; for go/accept while exit "
                                                     "criteria fail or are missing, the written waiver.")] = "") -> None:
    """Answer a gate from the terminal, under the same policy as Slack."""
    from phasegate import operations

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


@phase_app.command("start")
def phase_start(engagement_id: str, phase: Annotated[Phase, typer.Argument(case_sensitive=False)],
                requested_by: Annotated[str, typer.Option("--as", help="Your Slack user id (default: the file's PM).")] = "") -> None:
    """Start a phase's flow run on the Prefect server that `phasegate up` serves."""
    from phasegate import operations

    def run(rt: Runtime) -> None:
        run_id = operations.start_phase(rt, engagement_id, phase, requested_by)
        out.print(f"{engagement_id} {phase.value}: flow run {run_id}")

    guarded(run)


@phase_app.command("review")
def phase_review(engagement_id: str) -> None:
    """Open the current phase's gate now instead of at the end of its timebox."""
    from phasegate import operations

    def run(rt: Runtime) -> None:
        with err.status(f"{engagement_id}: asking the phase's flow run to open its gate (it waits up to 10 s "
                        "for the run to pause)"):
            answer = operations.request_review(rt, engagement_id)
        out.print(f"{engagement_id}: {answer}")

    guarded(run)


@evidence_app.command("attest")
def evidence_attest(engagement_id: str, phase: Annotated[Phase, typer.Argument(case_sensitive=False)],
                    milestone: str, approver: AsUser, note: str = "") -> None:
    """Record that a milestone is done, with who and when (for milestones that accept attestations)."""

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            engagements.attest(session, config, phase, milestone, by=approver, note=note, via=Via.CLI)
        out.print(f"{engagement_id} {milestone}: attested by {approver}")

    guarded(run)


@evidence_app.command("metric")
def evidence_metric(engagement_id: str, metric: str,
                    value: Annotated[str, typer.Argument(help="A decimal number such as 0.93, in the "
                                                              "metric's declared range.")],
                    approver: AsUser) -> None:
    """Submit a metric value by hand (for metrics whose source is `manual`); the PM or an approver."""

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            row = engagements.submit_metric(session, config, metric, value, by=approver, operator=cli_operator())
        out.print(f"{engagement_id} {metric} = {number(row.value)}", markup=False, highlight=False)

    guarded(run)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the ledger schema at PHASEGATE_DATABASE_URL (default: SQLite in ~/.phasegate)."""
    settings = Settings()
    try:
        upgrade(settings.ledger_url)
    except EXPECTED as exc:
        fail(str(exc))
    out.print(f"ledger at {settings.ledger_url.split('@')[-1]} is up to date")


@app.command()
def up() -> None:
    """Run phasegate on this machine: Prefect server (unless PREFECT_API_URL is set), flows, Slack endpoint."""
    from phasegate.stack import run_up

    try:
        run_up(Settings())
    except EXPECTED as exc:
        fail(str(exc))


@app.command()
def demo(keep: Annotated[bool, typer.Option("--keep", help="Keep everything running afterwards, "
                                             "to look around in the Prefect UI; Ctrl-C stops it.")] = False) -> None:
    """Run the example engagements end to end against local Slack, Jira and metric stand-ins."""
    from sandbox.demo import run_demo

    try:
        run_demo(Settings(), keep=keep)
    except EXPECTED as exc:
        fail(str(exc))


from phasegate.cli_audit import audit_app  # noqa: E402  (it imports this module's helpers)

app.add_typer(audit_app, name="audit")

from phasegate.cli_cr import cr_app, engagement_apply  # noqa: E402 - the sub-app imports the helpers above

app.add_typer(cr_app, name="cr")

from phasegate.cli_serve import crash_detection, serve_slack  # noqa: E402 - it imports this module's helpers

app.command("serve-slack")(serve_slack)
app.command("crash-detection")(crash_detection)

from phasegate.cli_budget import budget_app  # noqa: E402 - the sub-app imports the helpers above

app.add_typer(budget_app, name="budget")
import phasegate.cli_drift  # noqa: E402, F401 - adds `cr drift` and `cr draft-drift` to the cr sub-app

engagement_app.command("apply")(engagement_apply)
engagement_app.command("init")(cli_init.engagement_init)
app.command("sandbox")(cli_init.sandbox)

from phasegate.cli_runs import engagement_cancel, engagement_show, phase_retry  # noqa: E402 - as above

engagement_app.command("show")(engagement_show)
engagement_app.command("cancel")(engagement_cancel)
phase_app.command("retry")(phase_retry)


def main() -> None:
    """The console script: usage errors, too, become one `phasegate: ...` line."""
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        if exc.format_message():  # empty when the help was shown instead (no arguments)
            err.print(f"phasegate: {exc.format_message()} (see --help)", markup=False, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:  # typer turns most into exit code 130 itself
        sys.exit(130)
    except ClickException as exc:
        err.print(f"phasegate: {exc.format_message()}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


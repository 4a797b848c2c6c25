"""The `phasegate` command. Every expected error (phasegate.errors.EXPECTED) becomes one line on stderr
and exit code 1 (see phasegate/cli/base.py). Each command imports what it uses inside its body."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer._click.exceptions import ClickException, UsageError  # typer 0.29 vendors click

from phasegate.cli import drift as cli_drift  # noqa: F401 - cli_drift adds `cr drift`, `cr draft-drift`
from phasegate.cli import handoff as cli_handoff
from phasegate.cli import init as cli_init
from phasegate.cli import reports as cli_reports
from phasegate.cli.audit import audit_app
from phasegate.cli.base import All, AsUser, Limit, err, fail, guarded, ledger_url, out, reading
from phasegate.cli.budget import budget_app
from phasegate.cli.changes import cr_app, engagement_apply
from phasegate.cli.gates import gate_app
from phasegate.cli.runs import engagement_cancel, engagement_show, phase_retry
from phasegate.cli.serve import crash_detection, serve_slack
from phasegate.configs.enums import Phase

if TYPE_CHECKING:  # the ledger, Prefect and the Jira and Slack clients load only in the commands that use them
    from phasegate.orchestration.runtime import Runtime

app = typer.Typer(help="Phased AI-development engagements as Prefect workflows, with gates answered in Slack.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
engagement_app = typer.Typer(help="Register and inspect engagements.", no_args_is_help=True)
phase_app = typer.Typer(help="Start phases and ask for gate reviews.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence recorded by hand: attestations and metric values.", no_args_is_help=True)
db_app = typer.Typer(help="The ledger database.", no_args_is_help=True)
for sub, name in ((engagement_app, "engagement"), (phase_app, "phase"), (gate_app, "gate"),
                  (evidence_app, "evidence"), (db_app, "db")):
    app.add_typer(sub, name=name)
app.add_typer(cli_reports.report_app, name="report")
app.add_typer(cli_reports.status_app, name="status")
app.add_typer(cli_handoff.team_app, name="team")
evidence_app.command("check")(cli_handoff.evidence_check)


@app.callback()
def root(version: cli_init.Version = False) -> None:
    """Phased AI-development engagements as Prefect workflows, with gates answered in Slack."""


@engagement_app.command("create")
def engagement_create(file: Path, strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse a plan that departs from the guide (warnings become errors).")] = False) -> None:
    """Validate an engagement file, check its plan against the guide, and register it in the ledger."""
    from phasegate.configs.loader import load_engagement
    from phasegate.ledger import engagements
    from phasegate.ledger.db import transaction
    from phasegate.operator import cli_operator

    def run(rt: Runtime) -> None:
        engagement = load_engagement(file)
        warnings = cli_init.check_plan(engagement, file, strict=strict)
        with transaction(rt.sessions) as session:
            _, changed = engagements.register(session, engagement, operator=cli_operator())
        out.print(f"{engagement.id}: {'registered' if changed else 'already registered, unchanged'}")
        cli_init.print_warnings(warnings)  # after the outcome, so a refusal stays one line

    guarded(run, prefect=False)


@engagement_app.command("list")
def engagement_list(limit: Limit = 50, show_all: All = False) -> None:
    """Engagements in the ledger with their state and current phase (the first 50 by id)."""
    from pathlib import Path

    from rich.table import Table

    from phasegate.ledger.read import engagement_listing

    rows, total = reading(lambda conn: engagement_listing(conn, None if show_all else limit))
    table = Table("id", "name", "state", "phase")
    for row in rows:
        table.add_row(row.id, row.name, row.state.value, row.current_phase.value if row.current_phase else "-")
    out.print(table)
    if total > len(rows):
        out.print(f"the first {len(rows)} of {total} by id (--limit N, --all)", markup=False, highlight=False)
    url, default = ledger_url()
    demo_home = Path(url.removeprefix("sqlite:///")).parent / "demo"
    if default and (demo_home / "ledger.db").exists():
        out.print(f"(`phasegate demo` keeps its engagements in a ledger of its own: "
                  f"PHASEGATE_HOME={demo_home} phasegate engagement list)", markup=False, highlight=False)


@phase_app.command("start")
def phase_start(engagement_id: str, phase: Annotated[Phase, typer.Argument(case_sensitive=False)],
                requested_by: Annotated[str, typer.Option("--as", help="Your Slack user id (default: the file's PM).")] = "") -> None:
    """Start a phase's flow run on the Prefect server that `phasegate up` serves."""
    from phasegate.gates import operations
    from phasegate.operator import cli_operator

    def run(rt: Runtime) -> None:
        run_id = operations.start_phase(rt, engagement_id, phase, requested_by, operator=cli_operator())
        out.print(f"{engagement_id} {phase.value}: flow run {run_id}")

    guarded(run)


@phase_app.command("review")
def phase_review(engagement_id: str) -> None:
    """Open the current phase's gate now instead of at the end of its timebox."""
    from phasegate.gates import operations
    from phasegate.operator import cli_operator

    def run(rt: Runtime) -> None:
        with err.status(f"{engagement_id}: asking the phase's flow run to open its gate (it waits up to 10 s "
                        "for the run to pause)"):
            answer = operations.request_review(rt, engagement_id, operator=cli_operator())
        out.print(f"{engagement_id}: {answer}")

    guarded(run)


@evidence_app.command("attest")
def evidence_attest(engagement_id: str, phase: Annotated[Phase, typer.Argument(case_sensitive=False)],
                    milestone: str, approver: AsUser, note: str = "") -> None:
    """Record that a milestone is done, with who and when (for milestones that accept attestations)."""
    from phasegate.ledger import engagements
    from phasegate.ledger.db import transaction
    from phasegate.operator import cli_operator
    from phasegate.states import Via

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            recorded = engagements.attest(session, config, phase, milestone, by=approver, note=note, via=Via.CLI,
                                          operator=cli_operator())
        if recorded is None:
            out.print(f"{engagement_id} {milestone}: already attested by {approver}; nothing recorded")
        else:
            out.print(f"{engagement_id} {milestone}: attested by {approver}")

    guarded(run, prefect=False)


@evidence_app.command("metric")
def evidence_metric(engagement_id: str, metric: str,
                    value: Annotated[str, typer.Argument(help="A decimal number such as 0.93, in the "
                                                              "metric's declared range.")],
                    approver: AsUser) -> None:
    """Submit a metric value by hand (for metrics whose source is `manual`); the PM or an approver."""
    from phasegate.configs.schema import number
    from phasegate.ledger import engagements
    from phasegate.ledger.db import transaction
    from phasegate.operator import cli_operator

    def run(rt: Runtime) -> None:
        with transaction(rt.sessions) as session:
            config = engagements.config_of(engagements.get(session, engagement_id))
            row = engagements.submit_metric(session, config, metric, value, by=approver, operator=cli_operator())
        out.print(f"{engagement_id} {metric} = {number(row.value)}", markup=False, highlight=False)

    guarded(run, prefect=False)


@db_app.command("upgrade")
def db_upgrade(runtime_role: Annotated[str | None, typer.Option(
        help="PostgreSQL: after migrating (connected as the owner), grant this existing role what phasegate's "
             "processes need and nothing more; run them as that role (docs/operations.md).")] = None) -> None:
    """Create or migrate the ledger schema at PHASEGATE_DATABASE_URL (default: SQLite in ~/.phasegate)."""
    from phasegate.errors import EXPECTED
    from phasegate.ledger import roles
    from phasegate.ledger.db import upgrade
    from phasegate.settings import Settings

    settings = Settings()
    try:
        upgrade(settings.ledger_url)
        granted = roles.grant(settings.ledger_url, runtime_role) if runtime_role else []
    except EXPECTED as exc:
        fail(str(exc))
    out.print(f"ledger at {settings.ledger_url.split('@')[-1]} is up to date")
    if granted:
        out.print(f"granted to {runtime_role}: rows only (append-only tables: SELECT, INSERT; the others: "
                  "SELECT, INSERT, UPDATE); it cannot alter or drop tables, triggers or functions")


@db_app.command("grants")
def db_grants(role: str) -> None:
    """Print the GRANT statements for a PostgreSQL runtime role, for a DBA to run as the ledger's owner."""
    from phasegate.errors import EXPECTED
    from phasegate.ledger import roles

    try:
        print(";\n".join(roles.statements(role)) + ";")
    except EXPECTED as exc:
        fail(str(exc))


@app.command()
def up() -> None:
    """Run phasegate on this machine: Prefect server (unless PREFECT_API_URL is set), flows, Slack endpoint."""
    from phasegate.errors import EXPECTED
    from phasegate.ops.stack import run_up
    from phasegate.settings import Settings

    try:
        run_up(Settings())
    except EXPECTED as exc:
        fail(str(exc))


@app.command()
def demo(keep: Annotated[bool, typer.Option("--keep", help="Keep everything running afterwards, "
                                             "to look around in the Prefect UI; Ctrl-C stops it.")] = False) -> None:
    """Run the example engagements end to end against local Slack, Jira and metric stand-ins."""
    out.print("phasegate demo: starting a local world (about half a minute the first time), then two "
              "engagements run end to end...", highlight=False)
    from phasegate.errors import EXPECTED
    from phasegate.sandbox.demo import run_demo
    from phasegate.settings import Settings

    try:
        run_demo(Settings(), keep=keep)
    except EXPECTED as exc:
        fail(str(exc))


app.add_typer(audit_app, name="audit")
app.add_typer(cr_app, name="cr")
app.command("serve-slack")(serve_slack)
app.command("crash-detection")(crash_detection)
app.add_typer(budget_app, name="budget")
engagement_app.command("apply")(engagement_apply)
engagement_app.command("init")(cli_init.engagement_init)
app.command("sandbox")(cli_init.sandbox)
engagement_app.command("show")(engagement_show)
engagement_app.command("cancel")(engagement_cancel)
phase_app.command("retry")(phase_retry)


def only(argv: list[str]) -> typer.Typer:
    """The app with only the command or group that `argv` names (the whole app when it names none, or
    asks for the top-level help). Typer builds every registered command's parameters from its type
    hints before running one, which a read command would otherwise pay for all 35."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or argv[0].startswith("-"):
        return app
    groups = [g for g in app.registered_groups if g.name == first]
    commands = [c for c in app.registered_commands
                if (c.name or (c.callback.__name__.lower().replace("_", "-") if c.callback else None)) == first]
    if not groups and not commands:
        return app
    pruned = copy.copy(app)
    pruned.registered_groups, pruned.registered_commands = groups, commands
    return pruned


def main() -> None:
    """The console script: usage errors, too, become one `phasegate: ...` line."""
    try:
        code = only(sys.argv[1:])(standalone_mode=False)
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


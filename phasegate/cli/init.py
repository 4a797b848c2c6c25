"""`phasegate engagement init NAME`, the guide's planning rules at `engagement create`, `--version`
and `phasegate sandbox`: what a PM new to phasegate meets in the first hour."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phasegate.cli.base import err, out
from phasegate.configs.errors import ConfigError

if TYPE_CHECKING:
    from phasegate.configs.schema import Engagement


def engagement_init(name: Annotated[str, typer.Argument(help="The engagement's id, such as acme-churn; "
                                                             "the file is NAME.yaml.")]) -> None:
    """Write NAME.yaml: a commented engagement file that follows the guide, with placeholders to edit."""
    from phasegate.configs.template import engagement_template

    path = Path(f"{name}.yaml")
    try:
        text = engagement_template(name, today=dt.date.today())
        with path.open("x", encoding="utf-8") as handle:  # never overwrite a PM's edited file
            handle.write(text)
    except FileExistsError:
        err.print(f"phasegate: {path} exists; not overwritten (remove it or choose another name)", markup=False)
        raise typer.Exit(1) from None
    except ConfigError as exc:
        err.print(f"phasegate: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"wrote {path}: edit the lines marked EDIT, then try it with `phasegate sandbox {path}` "
              f"(no Slack or Jira needed) or register it with `phasegate engagement create {path}`",
              markup=False, highlight=False)


def check_plan(engagement: Engagement, source: Path, *, strict: bool) -> list[str]:
    """The guide's planning rules: the warnings to print once the file is registered, or every one an
    error when `strict` (the `--strict` flag or `planning_rules: strict` in the file)."""
    from phasegate.configs.practices import planning_warnings
    from phasegate.configs.schema import PlanningRules

    warnings = [f"{source}: {warning}" for warning in planning_warnings(engagement)]
    if warnings and (strict or engagement.planning_rules is PlanningRules.STRICT):
        raise ConfigError(warnings + [f"{source}: the plan departs from the guide in {len(warnings)} place(s) "
                                      "and planning rules are strict"])
    return warnings


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)


def show_version(value: bool) -> None:
    if value:
        import importlib.metadata  # loads email, zipfile and csv: only for --version, not every command

        out.print(f"phasegate {importlib.metadata.version('phasegate')}", highlight=False)
        raise typer.Exit()


Version = Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                       help="Show phasegate's version and exit.")]


def sandbox(files: Annotated[list[Path] | None, typer.Argument(help="Engagement files (default: the demo's).")] = None,
            port: Annotated[int, typer.Option(help="The page's port (0: any free port).")] = 0,
            no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False) -> None:
    """Run your engagement files on this machine with local Slack, Jira and metric stand-ins, and
    answer their gates in a local web page (no Slack or Jira account needed)."""
    out.print("phasegate sandbox: starting a local world (about half a minute the first time)...", highlight=False)
    from phasegate.errors import EXPECTED
    from phasegate.sandbox.run import run_sandbox
    from phasegate.settings import Settings

    try:
        run_sandbox(Settings(), list(files or []), port=port, open_browser=not no_browser)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"phasegate: {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except EXPECTED as exc:
        err.print(f"phasegate: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None

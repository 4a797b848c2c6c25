"""What every `phasegate` command shares: the consoles, the one-line failure, and `guarded`, which
builds the runtime and turns every expected error into one `phasegate: ...` line and exit code 1.

A command pays only for what it uses: this module imports typer and rich, nothing else at the top.
The ledger, its models, Prefect and the Jira and Slack clients load inside the functions that need
them, so that a read command (`gate list`, `engagement list`) never imports Prefect or Alembic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from phasegate.ledger.read import Reader
    from phasegate.orchestration.runtime import Runtime

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
AsUser = Annotated[str, typer.Option("--as", help="Your Slack user id, as listed in the engagement file.")]
Limit = Annotated[int, typer.Option("--limit", min=1, help="How many rows to show at most.")]
All = Annotated[bool, typer.Option("--all", help="Every row (no --limit).")]


def fail(message: str) -> None:
    err.print(f"phasegate: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


def ledger_url() -> tuple[str, bool]:
    """The ledger's URL as phasegate.settings.Settings gives it (PHASEGATE_DATABASE_URL, else SQLite in
    PHASEGATE_HOME), read without building the settings, and whether it is the default SQLite file.
    For the read commands, which need nothing else (tests/test_read_commands.py checks they agree)."""
    import os
    from pathlib import Path

    env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith("PHASEGATE_")}
    if env.get("PHASEGATE_DATABASE_URL"):
        return env["PHASEGATE_DATABASE_URL"], False
    home = Path(env["PHASEGATE_HOME"]) if "PHASEGATE_HOME" in env else Path.home() / ".phasegate"
    return f"sqlite:///{home / 'ledger.db'}", True


def reading(action: Callable[[Reader], T]) -> T:
    """Run a read command's `action` in one read-only transaction on the ledger, through its DB-API
    driver (no settings model, SQLAlchemy or Prefect); every expected error becomes one `phasegate: ...` line."""
    from phasegate.errors import EXPECTED
    from phasegate.ledger import read

    url, default = ledger_url()
    try:
        if default:
            read.ensure_schema(url)
        with read.reading(url) as conn:
            return action(conn)
    except EXPECTED as exc:
        fail(str(exc))
        raise
    except Exception as exc:
        ledger_failure(exc)
        raise


def runtime() -> Runtime:
    """Settings from the environment; the SQLite default ledger is created or upgraded on first use."""
    from phasegate.ledger.db import ensure_schema
    from phasegate.orchestration.runtime import Runtime
    from phasegate.settings import Settings

    settings = Settings()
    if not settings.database_url:
        ensure_schema(settings.ledger_url)
    return Runtime(settings)


def guarded(action: Callable[[Runtime], T], *, prefect: bool = True) -> T:
    """Run `action` with a runtime; with `prefect`, its Prefect client talks to PREFECT_API_URL or
    the server `phasegate up` runs. Read commands pass `prefect=False` and load no Prefect at all."""
    from contextlib import nullcontext

    from phasegate.errors import EXPECTED, ConfigError

    try:
        rt = runtime()
    except EXPECTED as exc:
        fail(str(exc))
        raise
    try:
        if prefect:
            from phasegate.ops.local import cli_prefect_api

            context: Any = cli_prefect_api(rt.settings)
        else:
            context = nullcontext()
        with context:
            return action(rt)
    except ConfigError as exc:
        for problem in exc.problems[:-1]:
            err.print(f"phasegate: {problem}", markup=False, highlight=False)
        fail(exc.problems[-1])
        raise
    except EXPECTED as exc:
        fail(str(exc))
        raise
    except Exception as exc:
        ledger_failure(exc)
        raise
    finally:
        rt.close()


def ledger_failure(exc: Exception) -> None:
    """A database error as one line, SQLAlchemy's or (from the read commands) a DB-API driver's; anything
    else is a bug and propagates."""
    import sqlite3
    import sys

    from sqlalchemy.exc import DataError, SQLAlchemyError

    psycopg = sys.modules.get("psycopg")  # only a PostgreSQL ledger's errors are psycopg's
    driver: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error) if psycopg else (sqlite3.Error,)
    refused: tuple[type[Exception], ...] = (DataError, sqlite3.DataError, *([psycopg.DataError] if psycopg else []))
    if isinstance(exc, refused):  # a value the database cannot store: not a schema that needs upgrading
        orig = exc.orig if isinstance(exc, DataError) else exc
        reason = str(orig if orig is not None else exc).strip().splitlines()
        fail(f"the ledger refused a value: {reason[0] if reason else type(orig).__name__}")
    if isinstance(exc, (SQLAlchemyError, *driver)):
        from phasegate.ledger.faults import unavailable

        known = unavailable(exc)  # disk full, read-only, unreachable, no answer, schema missing
        fail(str(known) if known is not None else f"ledger error ({type(exc).__name__}): {str(exc).splitlines()[0]}")


def gate_table(rows: list[Any]) -> None:
    from rich.table import Table

    table = Table("gate id", "engagement", "gate", "timebox", "rev", "state", "outcome", "digest")
    for g in rows:
        table.add_row(str(g.id), g.engagement_id, g.phase.gate, str(g.timebox), str(g.revision), g.state.value,
                      g.outcome.label if g.outcome else "-", g.digest[:12])
    out.print(table)

"""Read commands start like a small Python program (issue 23 item 3), checked without timing.

`gate list`, `engagement list` and `status` run as the console script does, in a fresh process, on each backend; the
modules the process loaded are then compared with what a read command must not load: Prefect,
Alembic, SQLAlchemy (the ORM and Core alike) and the ledger's models, the settings and engagement
pydantic models, and the other backend's driver. (Their start-up time beside `import prefect` is
bench/cli.py's.) The read path's decoders are held to what the ORM reads from the same rows.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import closed_port_url, open_gate
from sqlalchemy import JSON, Boolean, Date, Enum, Integer, String, select
from sqlalchemy.orm import Session, sessionmaker

from phasegate.cli.base import ledger_url as cli_ledger_url
from phasegate.configs.schema import Engagement
from phasegate.ledger import gates, handoff, read, tables
from phasegate.ledger.db import transaction
from phasegate.ledger.models import Base, EngagementStatusRow, GateRow, utcnow
from phasegate.ledger.types import UTCDateTime
from phasegate.reports.status_view import DATA_DELETED
from phasegate.settings import Settings
from phasegate.states import Outcome, Rag, Via

NEVER = ("prefect", "alembic", "sqlalchemy", "sqlalchemy.orm", "phasegate.ledger.models", "phasegate.ledger.db",
         "phasegate.configs.schema", "phasegate.configs.schema_base", "phasegate.settings", "pydantic_settings",
         "phasegate.orchestration", "httpx")
RUN = ("import atexit, json, sys\n"
       "out = sys.argv.pop(1)\n"
       "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules))))\n"
       "from phasegate.cli.main import main\n"
       "main()\n")


def run(url: str, tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHASEGATE_", "PREFECT_"))}
    env |= {"PHASEGATE_HOME": str(tmp_path), "PHASEGATE_DATABASE_URL": url, "PREFECT_API_URL": closed_port_url(),
            "COLUMNS": "200"}
    loaded = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", RUN, str(loaded), *args], env=env, capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout, set(json.loads(loaded.read_text()))


@pytest.mark.parametrize("args", [("gate", "list"), ("engagement", "list"), ("status",), ("status", "--all", "--json")])
def test_read_commands_load_no_orm_prefect_settings_model_or_other_dialect(
        ledger: sessionmaker[Session], ledger_url: str, acme: Engagement, tmp_path: Path, args: tuple[str, ...]) -> None:
    open_gate(ledger, acme)
    printed, loaded = run(ledger_url, tmp_path, *args)
    assert "acme-churn" in printed  # the command did its work
    assert ("poc" if args[0] == "engagement" else "G1") in printed  # its phase, or its open gate
    assert not [m for m in loaded if any(m == never or m.startswith(never + ".") for never in NEVER)]
    assert ("psycopg" in loaded) is ledger_url.startswith("postgresql")  # the driver of its backend only
    assert "phasegate.ledger.tables" in loaded


@pytest.mark.parametrize("env", [{}, {"PHASEGATE_HOME": "/srv/pg"}, {"PHASEGATE_DATABASE_URL": "postgresql://h/db"},
                                 {"PHASEGATE_HOME": "/srv/pg", "PHASEGATE_DATABASE_URL": "sqlite:////x/l.db"},
                                 {"phasegate_home": "/srv/lower"}])
def test_the_read_commands_ledger_url_is_the_settings_one(monkeypatch: pytest.MonkeyPatch,
                                                          env: dict[str, str]) -> None:
    for name in [k for k in os.environ if k.upper().startswith("PHASEGATE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    url, default = cli_ledger_url()
    settings = Settings()
    assert (url, default) == (settings.ledger_url, not settings.database_url)


SQLALCHEMY_TYPES = {int: Integer, str: String, bool: Boolean, dict: JSON, dt.date: Date, dt.datetime: UTCDateTime}


def test_read_tables_are_the_models_tables() -> None:
    for table in tables.ALL:
        model = Base.metadata.tables[table.name]
        for name, kind in table.columns.items():
            assert name in model.columns, f"{table.name}.{name}"
            mapped = model.columns[name].type
            if issubclass(kind, enum.Enum):
                assert isinstance(mapped, Enum) and mapped.enums == [m.value for m in kind], f"{table.name}.{name}"
            else:
                assert type(mapped) is SQLALCHEMY_TYPES[kind], f"{table.name}.{name}"


def test_the_read_path_decodes_what_the_orm_wrote_as_the_orm_reads_it(
        ledger: sessionmaker[Session], ledger_url: str, acme: Engagement) -> None:
    gate_id = open_gate(ledger, acme)
    with transaction(ledger) as session:
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="", via=Via.CLI)
        handoff.attest_check(session, acme, DATA_DELETED, by="U0SPONSOR1", holds=True, via=Via.CLI)
    with transaction(ledger) as session:  # a value in every column the read path reads
        gate = session.get(GateRow, gate_id)
        status = session.get(EngagementStatusRow, acme.id)
        assert gate is not None and status is not None
        gate.overdue_at, gate.outcome = utcnow(), Outcome.GO
        status.deletion_deadline, status.last_report_week, status.last_report_rag = dt.date(2026, 9, 1), "2026-W35", Rag.AMBER
        status.over_budget = True
    with transaction(ledger, write=False) as session, read.reading(ledger_url) as conn:
        for table in tables.ALL:
            model = Base.metadata.tables[table.name]
            key = next(iter(table.columns))
            orm = [dict(r._mapping) for r in session.execute(select(*[model.c[name] for name in table.columns])
                                                             .order_by(model.c[key]))]
            mine = [dict(r) for r in conn.rows(f"SELECT {table.names()} FROM {table.name} ORDER BY {key}",
                                               decoded=[table])]
            assert mine == orm and mine, table.name
            for name in table.columns:  # the same types too (True, not 1; a date, not its text)
                assert [type(r[name]) for r in mine] == [type(r[name]) for r in orm], f"{table.name}.{name}"
                assert any(r[name] is not None for r in mine), f"{table.name}.{name} has no value to decode"


def test_the_read_path_waits_a_bounded_time_in_a_read_only_transaction(ledger_url: str) -> None:
    with read.reading(ledger_url, timeout=7.5) as conn:
        if conn.postgresql:
            assert conn.scalar("SHOW statement_timeout") == "7500ms"
            assert conn.scalar("SHOW transaction_read_only") == "on"
        else:
            assert conn.scalar("PRAGMA busy_timeout") == 7500
            assert conn.connection.in_transaction  # the plain BEGIN: a snapshot, never the write lock
        assert conn.scalar("SELECT count(*) FROM gates WHERE state = :open", {"open": "open"}) == 0
    if ledger_url.startswith("postgresql://"):  # SQLAlchemy's spelling of the same URL, as settings may give it
        with read.reading(ledger_url.replace("postgresql://", "postgresql+psycopg://", 1)) as conn:
            assert conn.postgresql and conn.scalar("SELECT count(*) FROM engagements") == 0
    assert read.pyformat("a = :a AND b IN (:b_0, :b_1) AND c::text = 'x'") == \
        "a = %(a)s AND b IN (%(b_0)s, %(b_1)s) AND c::text = 'x'"
    assert read.listed("b", [1, 2]) == ("(:b_0, :b_1)", {"b_0": 1, "b_1": 2})
    assert read.listed("b", []) == ("(NULL)", {})

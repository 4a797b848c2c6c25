"""Read commands start like a small Python program (issue 23 item 3), checked without timing.

`gate list` and `status` run as the console script does, in a fresh process, on each backend; the
modules the process loaded are then compared with what a read command must not load: Prefect,
Alembic, the ORM and the ledger's models, the settings and engagement pydantic models, and the
dialect of the other backend. (Their start-up time beside `import prefect` is bench/cli.py's.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import closed_port_url, open_gate
from sqlalchemy.orm import Session, sessionmaker

from phasegate.cli.base import ledger_url as cli_ledger_url
from phasegate.configs.schema import Engagement
from phasegate.ledger import tables
from phasegate.ledger.models import Base
from phasegate.settings import Settings

NEVER = ("prefect", "alembic", "sqlalchemy.orm", "phasegate.ledger.models", "phasegate.ledger.db",
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


@pytest.mark.parametrize("args", [("gate", "list"), ("status",), ("status", "--all", "--json")])
def test_read_commands_load_no_orm_prefect_settings_model_or_other_dialect(
        ledger: sessionmaker[Session], ledger_url: str, acme: Engagement, tmp_path: Path, args: tuple[str, ...]) -> None:
    open_gate(ledger, acme)
    printed, loaded = run(ledger_url, tmp_path, *args)
    assert "acme-churn" in printed  # the command did its work
    assert "acme-churn/G1" in printed or "G1" in printed
    assert not [m for m in loaded if any(m == never or m.startswith(never + ".") for never in NEVER)]
    mine, other = ("sqlite", "postgresql") if ledger_url.startswith("sqlite") else ("postgresql", "sqlite")
    assert f"sqlalchemy.dialects.{mine}" in loaded and f"sqlalchemy.dialects.{other}" not in loaded
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


def test_core_tables_are_the_models_tables() -> None:
    for table in tables.metadata.sorted_tables:
        model = Base.metadata.tables[table.name]
        for column in table.columns:
            assert column.name in model.columns, f"{table.name}.{column.name}"
            mapped = model.columns[column.name]
            assert type(column.type) is type(mapped.type), f"{table.name}.{column.name}"
            assert getattr(column.type, "enums", None) == getattr(mapped.type, "enums", None)

"""Read commands import only what they use (issue 12: start-up under a quarter of `import prefect`),
and the default ledger's schema check costs one read when the ledger is current.

Each command runs in a fresh interpreter, as the console script does, and prints the heavy
libraries it loaded on the way out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from helpers import closed_port_url

from phasegate.ledger.db import HEAD, alembic_config, ensure_schema, sqlite_revision, upgrade

pytestmark = pytest.mark.slow

# pydantic too: typer 0.29 coerces every parameter through it, 0.1 s more per command (constraints.txt: 0.28)
HEAVY = {"prefect", "alembic", "jira", "slack_sdk", "httpx", "requests", "uvicorn", "fastapi", "matplotlib", "pydantic"}
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("LOADED " + json.dumps(sorted({m.split(".")[0] for m in sys.modules} & HEAVY))))
from phasegate.cli.main import main
sys.argv = ["phasegate", *ARGS]
main()
"""


def loaded(home: Path, *args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHASEGATE_", "PREFECT_"))}
    env |= {"PHASEGATE_HOME": str(home), "PREFECT_API_URL": closed_port_url(), "COLUMNS": "80"}
    code = PROBE.replace("HEAVY", repr(HEAVY)).replace("ARGS", repr(list(args)))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADED "))
    return set(json.loads(line.removeprefix("LOADED ")))


@pytest.mark.parametrize("args", [["--help"], ["engagement", "list"], ["gate", "list"], ["gate", "list", "--open"],
                                  ["status"], ["audit", "verify"]])
def test_read_commands_load_no_orchestrator_or_client_library(tmp_path: Path, args: list[str]) -> None:
    upgrade(f"sqlite:///{tmp_path / 'ledger.db'}")  # current, so no migration has to run
    decodes = {"pydantic"} if args[0] == "audit" else set()  # verify re-reads the stored engagement files
    assert loaded(tmp_path, *args) == decodes


def test_a_new_home_still_gets_its_ledger_created(tmp_path: Path) -> None:
    # the one time a schema has to be written (the migrations use the ledger's models, and they its file schema)
    assert loaded(tmp_path, "gate", "list") == {"alembic", "pydantic"}
    assert sqlite_revision(f"sqlite:///{tmp_path / 'ledger.db'}") == HEAD


def test_head_is_alembics_newest_revision() -> None:
    assert HEAD == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_an_older_ledger_is_upgraded_and_a_current_one_left_alone(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert sqlite_revision(url) is None
    command.upgrade(alembic_config(url), "0005")
    assert sqlite_revision(url) == "0005"
    ensure_schema(url)
    assert sqlite_revision(url) == HEAD
    stamp = (tmp_path / "ledger.db").stat().st_mtime_ns
    ensure_schema(url)
    assert (tmp_path / "ledger.db").stat().st_mtime_ns == stamp


def test_a_file_that_is_not_a_ledger_is_refused_in_one_line(tmp_path: Path) -> None:
    from phasegate.errors import ServiceUnavailable

    (tmp_path / "ledger.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ServiceUnavailable, match="cannot open or migrate the ledger"):
        ensure_schema(f"sqlite:///{tmp_path / 'ledger.db'}")

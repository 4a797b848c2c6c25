"""A migrated, empty Prefect database for the test servers to start from.

A Prefect server started on an empty PREFECT_HOME runs every one of Prefect's migrations first: here
about 10 s of CPU and, beside other test runs, half a minute before it answers; started on a
database that is already migrated, about 5 s and 14 s. The tests start some twenty servers, so the
first asks for a template (built once per Prefect version and machine, under a file lock, shared by
the xdist workers and later runs) and every server's PREFECT_HOME gets a copy of it before the
server starts. The server still checks the schema (a no-op upgrade) and registers its block types,
as on a first start.

    seed(settings.home / "prefect")     # before local_world / Stack / `phasegate up` on that home
    local_world(seeded(settings))       # the same
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path

import prefect

from phasegate.settings import Settings

DB = "prefect.db"  # PREFECT_API_DATABASE_CONNECTION_URL's default: ${PREFECT_HOME}/prefect.db


def template() -> Path:
    """The migrated database for this Prefect version, built if it is not there yet."""
    path = Path(tempfile.gettempdir()) / f"phasegate-tests-prefect-{prefect.__version__}-{os.getuid()}.db"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds it, the others wait and use it
        if not path.exists():
            with tempfile.TemporaryDirectory() as home:
                env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
                env |= {"PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
                subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                               env=env, check=True, capture_output=True, timeout=300)
                copy(Path(home) / DB, path.with_suffix(".part"))
            path.with_suffix(".part").rename(path)  # whole or not there
    return path


def seed(prefect_home: Path) -> None:
    """Give a new PREFECT_HOME the migrated database (a home that has one keeps it)."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    if not (prefect_home / DB).exists():
        copy(template(), prefect_home / DB)


def copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included), through SQLite's backup."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def seeded(settings: Settings) -> Settings:
    """`settings`, its home's Prefect database seeded (local_world's and Stack's default PREFECT_HOME)."""
    seed(settings.home / "prefect")
    return settings

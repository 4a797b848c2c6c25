"""A migrated, empty Prefect database for the test servers to start from.

A Prefect server started on an empty PREFECT_HOME runs every one of Prefect's migrations first: here
about 10 s of CPU and, beside other test runs, half a minute before it answers; started on a
database that is already migrated, about 5 s and 14 s. The tests start some twenty servers, so the
first asks for a template (built once per Prefect version and machine, under a file lock, shared by
the xdist workers and later runs) and every server's PREFECT_HOME gets a copy of it before the
server starts. The template also holds Prefect's block types, registered once, and a seeded home's
profile tells its server not to register them again (PREFECT_API_BLOCKS_REGISTER_ON_START): 1-2 s
of a server's 6-9 s of CPU to start here, which a real server skips too from its second start on
(Prefect memoizes the registration per database). The server still checks the schema (a no-op
upgrade), as on every start.

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
PROFILES = "profiles.toml"  # PREFECT_PROFILES_PATH's default: ${PREFECT_HOME}/profiles.toml
# the block types are in the copied database already; settings from the environment still win
PROFILE = 'active = "seeded"\n\n[profiles.seeded]\nPREFECT_API_BLOCKS_REGISTER_ON_START = "false"\n'
REGISTER_BLOCKS = """
import asyncio
from prefect.server.database import provide_database_interface
from prefect.server.models.block_registration import run_block_auto_registration

async def main():
    session = await provide_database_interface().session()
    async with session:
        await run_block_auto_registration(session=session)

asyncio.run(main())
"""


def template() -> Path:
    """The migrated database for this Prefect version, built if it is not there yet."""
    path = Path(tempfile.gettempdir()) / f"phasegate-tests-prefect-{prefect.__version__}-blocks-{os.getuid()}.db"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds it, the others wait and use it
        if not path.exists():
            with tempfile.TemporaryDirectory() as home:
                env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
                env |= {"PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
                subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                               env=env, check=True, capture_output=True, timeout=300)
                subprocess.run([sys.executable, "-c", REGISTER_BLOCKS], env=env, check=True, capture_output=True,
                               timeout=300)
                copy(Path(home) / DB, path.with_suffix(".part"))
            path.with_suffix(".part").rename(path)  # whole or not there
    return path


def seed(prefect_home: Path) -> None:
    """Give a new PREFECT_HOME the migrated database with the block types, and the profile that says
    they are there (a home that has a database keeps it and registers them as usual)."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    if not (prefect_home / DB).exists():
        copy(template(), prefect_home / DB)
        if not (prefect_home / PROFILES).exists():
            (prefect_home / PROFILES).write_text(PROFILE)


def copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included), through SQLite's backup."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def seeded(settings: Settings) -> Settings:
    """`settings`, its home's Prefect database seeded (local_world's and Stack's default PREFECT_HOME)."""
    seed(settings.home / "prefect")
    return settings

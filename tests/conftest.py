"""Shared fixtures: a ledger on SQLite and on PostgreSQL, the Slack/Jira/metric stand-ins, and a
Runtime wired to them. Nothing here reaches the internet. Plain helper functions are in helpers.py."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import typer.testing
from click.testing import Result
from helpers import Invoke, closed_port_url
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement
from phasegate.ledger import append_only
from phasegate.ledger.db import make_engine, sessions, upgrade
from phasegate.ledger.models import Base
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.settings import Settings

# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set (as on this machine): without it every
# xdist worker compiled each test module's rewritten asserts on every run, and every flow run and CLI
# process the tests start compiled phasegate's modules again (the figures: docs/development.md).
# Set before the test modules are imported; the processes the tests start read the caches.
sys.dont_write_bytecode = False

# typer's CliRunner builds the click command from the Typer app at every invoke (about 40 ms for
# phasegate's commands, most of it reading their signatures); the tests invoke it hundreds of
# times, so each app's command is built once per worker. Processes the tests start build their own.
typer.testing._get_command = functools.cache(typer.testing._get_command)  # type: ignore[attr-defined]


GROUP_SECONDS: dict[str, int] = json.loads((Path(__file__).parent / "group_seconds.json").read_text())


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject): six workers when the slow tests run, whose time is mostly waiting on
    real servers and processes; four for the fast subset, which keeps two cores busy with four."""
    return 4 if "not slow" in (config.option.markexpr or "") else 6


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Spread the suite over pytest-xdist's workers (pyproject: `-n auto --dist loadgroup`).

    A slow module's tests stay on one worker, so its module-scoped servers start once (a module may
    split itself with `xdist_group` marks where its tests are long); the fast tests spread one by one.
    Slow groups go first, longest first (their seconds as last measured, `group_seconds.json`), so
    that the longest runs start early and the short ones fill in around them.
    """
    for item in items:
        if item.get_closest_marker("slow") and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module else item.nodeid))

    def order(item: pytest.Item) -> tuple[bool, int]:
        group = item.get_closest_marker("xdist_group")
        name = (group.args[0] if group.args else group.kwargs.get("name", "")) if group is not None else ""
        return item.get_closest_marker("slow") is None, -GROUP_SECONDS.get(name, 0)

    items.sort(key=order)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """On a worker, xdist's loadgroup must have put each group's name in its tests' ids: with pytest 9.2
    it no longer could (nodeids are derived anew), every slow test then went to whichever worker was
    free, and a module's servers started once per test (eight extra Prefect worlds per run)."""
    if not getattr(session.config.option, "loadgroup", False) or "PYTEST_XDIST_WORKER" not in os.environ:
        return
    ungrouped = [item.nodeid for item in session.items
                 if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid]
    if ungrouped:
        raise pytest.UsageError(f"xdist's loadgroup did not group {ungrouped[0]} (and {len(ungrouped) - 1} more): "
                                f"pytest {pytest.__version__} with this pytest-xdist; install from constraints.txt")


PG_ADMIN = os.environ.get("PHASEGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty ledger; the tests that use it run once on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"
        upgrade(url)
        yield url
        return
    name = f"phasegate_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def ledger_engine(ledger_url: str) -> Iterator[Engine]:
    """One engine per ledger for the whole session, shared by `ledger` and `rt`: SQLAlchemy compiles
    each statement once per engine, and with a new engine per test the fast tests spent about a sixth
    of their busy CPU compiling the same statements again (docs/development.md). Code that builds its
    own engine (the CLI, the endpoint) still does."""
    engine = make_engine(ledger_url)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(ledger_engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions on the ledger; every table is emptied after the test (past the append-only triggers)."""
    yield sessions(ledger_engine)
    with ledger_engine.begin() as conn, triggers_off(conn):
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@contextmanager
def triggers_off(conn: Connection) -> Iterator[None]:
    """What someone with direct access to the database does to edit the trail, for this transaction
    only: PostgreSQL's superuser switch that skips triggers, or on SQLite dropping the triggers and
    creating them again afterwards. phasegate itself has no such switch; the test cleanup and the
    tamper tests use this."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL session_replication_role = replica"))  # ends with the transaction
        yield
        return
    append_only.drop(conn)
    yield
    append_only.create(conn)


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    standin = SlackStandin()
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def jira() -> Iterator[JiraStandin]:
    standin = JiraStandin("cloud")
    standin.start()
    standin.add_project("ACME")
    yield standin
    standin.stop()


@pytest.fixture
def metrics() -> Iterator[MetricsStandin]:
    standin = MetricsStandin()
    standin.start()
    standin.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)
    yield standin
    standin.stop()


def settings_for(ledger_url: str, slack: SlackStandin, jira: JiraStandin, metrics: MetricsStandin,
                 home: Path) -> Settings:
    return Settings(home=home, database_url=ledger_url, slack_api_url=slack.base_url,
                    slack_bot_token=slack.bot_token, slack_signing_secret="test-secret",
                    jira_sites={"https://acme.atlassian.net": jira.url}, jira_email=jira.email,
                    jira_api_token=jira.api_token, jira_pat=jira.pat, metrics_base_url=metrics.url,
                    evidence_retry_seconds=0.0)  # outages are read again at once; tests that count waits set it


@pytest.fixture
def rt(ledger: sessionmaker[Session], ledger_url: str, ledger_engine: Engine, slack: SlackStandin, jira: JiraStandin,
       metrics: MetricsStandin, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(settings_for(ledger_url, slack, jira, metrics, tmp_path), engine=ledger_engine)
    yield runtime
    runtime.close()


@functools.cache
def acme_file() -> Engagement:
    """acme-churn.yaml, parsed once per worker (about 50 ms each time): an Engagement is frozen, and
    the tests change one only through copies (helpers.with_changes, model_copy)."""
    return load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")


@pytest.fixture
def acme() -> Engagement:
    return acme_file()


@functools.cache
def _migrated_template() -> Path:
    """An empty SQLite ledger at the newest schema, migrated once per worker (the migrations take
    about 0.3 s of CPU; a copy of their result is what `upgrade` would have made)."""
    path = Path(tempfile.mkdtemp(prefix="phasegate-template-")) / "ledger.db"
    upgrade(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as conn:  # everything in the file itself: a copy needs no -wal beside it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
    return path


def migrated_sqlite(path: Path) -> str:
    """The URL of a new, empty SQLite ledger at `path`, at the newest schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_template(), path)
    return f"sqlite:///{path}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI tests' PHASEGATE_HOME, holding an empty SQLite ledger at the newest schema, as the
    CLI creates on first use (tests/test_cli_imports.py tests that first use)."""
    monkeypatch.delenv("PHASEGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("PHASEGATE_HOME", str(tmp_path))
    migrated_sqlite(tmp_path / "ledger.db")
    return tmp_path


@pytest.fixture
def cli(home: Path) -> Invoke:
    """`phasegate <args>` in-process, with Prefect pointed at a closed port and a fixed width."""
    runner = CliRunner(env={"PHASEGATE_HOME": str(home), "PHASEGATE_DATABASE_URL": None,
                            "PREFECT_API_URL": closed_port_url(), "COLUMNS": "80"})

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    return invoke

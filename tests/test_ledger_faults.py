"""A ledger that answers reads but takes no write: its disk full (a tmpfs of 4 MB, filled for real)
or its server read-only (default_transaction_read_only on a PostgreSQL cluster of this test's own),
and one that is down. The clicker, `/healthz`, `/readyz` and the CLI say what it is, and the probes
prove a write (a read would answer "ok" while every click fails)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import closed_port_url, open_gate, wait_until
from sqlalchemy import text
from test_ledger_down import BIN, Cluster, cluster, slack_chat  # noqa: F401 (cluster is a fixture)
from typer.testing import CliRunner

from phasegate.cli.main import app as cli_app
from phasegate.configs.schema import Engagement
from phasegate.ledger import gates
from phasegate.ledger.db import ENDPOINT_TIMEOUT, make_engine, sessions, transaction, upgrade
from phasegate.ops.readiness import add_readiness
from phasegate.ops.servers import ServerHandle, serve_in_thread
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps
from phasegate.states import Outcome

SECRET = "test-secret"
SPONSOR = "U0SPONSOR1"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: a disk that can really fill up (needs the right to mount)."""
    where = tmp_path / "disk"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path) -> None:
    with (disk / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass  # ENOSPC: full


def endpoint(url: str, slack: SlackStandin) -> tuple[ServerHandle, SlackDeps]:
    deps = SlackDeps(signing_secret=SECRET, sessions=sessions(make_engine(url, timeout=ENDPOINT_TIMEOUT)),
                     chat=slack_chat(slack), resume=lambda _: None)
    app = create_app(deps)
    add_readiness(app, deps.sessions, closed_port_url())
    return serve_in_thread(app), deps


def phasegate(url: str, *args: str) -> list[str]:
    """`phasegate <args>` against the ledger at `url`: its stderr lines."""
    runner = CliRunner(env={"PHASEGATE_DATABASE_URL": url, "PREFECT_API_URL": closed_port_url(), "COLUMNS": "200"})
    result = runner.invoke(cli_app, list(args))
    assert result.exit_code == 1, result.output
    return result.stderr.strip().splitlines()


def told(slack: SlackStandin, words: str) -> bool:
    return any(words in r["text"] for r in slack.responses)


def test_a_full_disk_is_named_to_the_clicker_the_probes_and_the_cli(tiny_disk: Path, slack: SlackStandin,
                                                                     acme: Engagement) -> None:
    url = f"sqlite:///{tiny_disk / 'ledger.db'}"
    upgrade(url)
    handle, deps = endpoint(url, slack)
    gate_id = open_gate(deps.sessions, acme)
    sponsor = SlackUser(SPONSOR, endpoint=handle.url, signing_secret=SECRET, slack=slack)
    try:
        assert httpx.get(handle.url + "/healthz").json() == {"status": "ok", "ledger": "ok"}
        fill(tiny_disk)
        with transaction(deps.sessions, write=False) as session:  # reads still answer
            assert session.execute(text("SELECT count(*) FROM gates")).scalar() == 1

        assert sponsor.click(gate_id, Outcome.GO, acme.slack_channel, "1700000000.000100").status_code == 200
        wait_until(lambda: told(slack, "Not recorded: the ledger's disk is full"), what="the clicker told why")
        health, ready = httpx.get(handle.url + "/healthz"), httpx.get(handle.url + "/readyz")
        assert health.status_code == 503 and health.json()["ledger"].startswith("disk full: ")
        assert ready.status_code == 503 and any(p.startswith("ledger: disk full: ") for p in ready.json()["problems"])
        lines = phasegate(url, "gate", "decide", str(gate_id), "go", "--as", SPONSOR)
        assert len(lines) == 1 and lines[0].startswith("phasegate: the ledger's disk is full")
        assert "db upgrade" not in lines[0]
        with transaction(deps.sessions, write=False) as session:
            assert gates.decisions(session, gate_id) == []
    finally:
        handle.stop()


@pytest.mark.slow
@pytest.mark.skipif(not BIN, reason="needs PostgreSQL's initdb and pg_ctl")
def test_a_read_only_or_stopped_postgresql_is_named_not_blamed_on_migrations(
        cluster: Cluster, slack: SlackStandin, acme: Engagement) -> None:  # noqa: F811
    upgrade(cluster.url)
    handle, deps = endpoint(cluster.url, slack)
    gate_id = open_gate(deps.sessions, acme)
    sponsor = SlackUser(SPONSOR, endpoint=handle.url, signing_secret=SECRET, slack=slack)
    admin = make_engine(cluster.url)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ALTER SYSTEM SET default_transaction_read_only = on"))
            conn.execute(text("SELECT pg_reload_conf()"))
        wait_until(lambda: httpx.get(handle.url + "/healthz").status_code == 503, what="the reload")
        assert httpx.get(handle.url + "/healthz").json()["ledger"].startswith("read-only: ")

        assert sponsor.click(gate_id, Outcome.GO, acme.slack_channel, "1700000000.000100").status_code == 200
        wait_until(lambda: told(slack, "Not recorded: the ledger is read-only"), what="the clicker told why")
        ready = httpx.get(handle.url + "/readyz")
        assert ready.status_code == 503 and any(p.startswith("ledger: read-only: ") for p in ready.json()["problems"])
        lines = phasegate(cluster.url, "gate", "decide", str(gate_id), "go", "--as", SPONSOR)
        assert len(lines) == 1 and lines[0].startswith("phasegate: the ledger is read-only")

        admin.dispose()
        cluster.stop()
        lines = phasegate(cluster.url, "gate", "list")
        assert len(lines) == 1 and lines[0].startswith("phasegate: the ledger's database cannot be reached")
        assert "db upgrade" not in lines[0]
    finally:
        handle.stop()
        admin.dispose()


def test_a_ledger_never_migrated_is_the_one_case_told_to_run_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    (tmp_path / "empty.db").touch()
    lines = phasegate(url, "gate", "list")
    assert len(lines) == 1 and lines[0].startswith("phasegate: the ledger's tables are missing or older")
    assert "run `phasegate db upgrade`" in lines[0]

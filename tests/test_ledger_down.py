"""The ledger's PostgreSQL stops while a gate is open: a PostgreSQL cluster of this test's own (never
the shared one at :5432), stopped and started again for real. Clicks are answered in time with an
ephemeral "not recorded", nothing half-recorded, /healthz says why, and the next click counts."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import httpx
import pytest
from helpers import open_gate, wait_until

from phasegate.configs.schema import Engagement
from phasegate.integrations.slack_chat import SlackChat, make_web_client
from phasegate.ledger import gates
from phasegate.ledger.db import ENDPOINT_TIMEOUT, make_engine, sessions, transaction, upgrade
from phasegate.ops.servers import free_port, serve_in_thread
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.deps import NOT_RECORDED, SlackDeps
from phasegate.states import GateState, Outcome

SECRET = "test-secret"
BIN = sorted(glob("/usr/lib/postgresql/*/bin"))
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not BIN, reason="needs PostgreSQL's initdb and pg_ctl")]


class Cluster:
    """A throwaway cluster in a temp dir, run as the `postgres` account when this process is root."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="phasegate-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.pg("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")

    def pg(self, tool: str, *args: str) -> None:
        command = [f"{BIN[-1]}/{tool}", *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.pg("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self.pg("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    pg = Cluster()
    pg.start()
    yield pg
    try:
        pg.stop()
    except subprocess.CalledProcessError:
        pass  # already stopped by the test
    shutil.rmtree(pg.dir, ignore_errors=True)


def test_a_click_while_the_ledger_is_down_is_answered_not_recorded(cluster: Cluster, slack: SlackStandin,
                                                                    acme: Engagement) -> None:
    upgrade(cluster.url)
    engine = make_engine(cluster.url, timeout=ENDPOINT_TIMEOUT)
    ledger = sessions(engine)
    # the test's own reads and writes on a patient engine: the endpoint's gives each statement 1.5 s, which
    # a cluster just started on a loaded machine can take for its first ones (one suite run failed so)
    patient = sessions(make_engine(cluster.url))
    gate_id = open_gate(patient, acme)
    deps = SlackDeps(signing_secret=SECRET, sessions=ledger, chat=slack_chat(slack), resume=lambda _: None)
    handle = serve_in_thread(create_app(deps))
    sponsor = SlackUser("U0SPONSOR1", endpoint=handle.url, signing_secret=SECRET, slack=slack)
    try:
        assert httpx.get(handle.url + "/healthz").json() == {"status": "ok", "ledger": "ok"}
        cluster.stop()

        click = sponsor.click(gate_id, Outcome.GO, acme.slack_channel, "1700000000.000100")
        health = httpx.get(handle.url + "/healthz", timeout=10)

        assert click.status_code == 200  # Slack shows nothing generic; the clicker is told below
        wait_until(lambda: NOT_RECORDED in [r["text"] for r in slack.responses], what="the ephemeral answer")
        assert health.status_code == 503 and health.json()["ledger"].startswith("unreachable")
        cluster.start()
        assert sponsor.click(gate_id, Outcome.GO, acme.slack_channel, "1700000000.000100").status_code == 200
        with transaction(patient) as session:
            answers = gates.decisions(session, gate_id)
            assert [(d.approver, d.outcome) for d in answers] == [("U0SPONSOR1", Outcome.GO)]
            assert gates.by_id(session, gate_id).state is GateState.OPEN
        assert httpx.get(handle.url + "/healthz").status_code == 200
    finally:
        handle.stop()
        engine.dispose()
        patient.kw["bind"].dispose()


def slack_chat(slack: SlackStandin) -> SlackChat:
    return SlackChat(make_web_client(slack.bot_token, slack.base_url))


def test_a_ledger_that_hangs_is_given_up_on_within_slacks_three_seconds(cluster: Cluster, slack: SlackStandin,
                                                                       acme: Engagement) -> None:
    """Another session holds the gate row locked (a stuck transaction): the click's statement times out
    on the server and the clicker is told, where before it waited for as long as the lock was held."""
    upgrade(cluster.url)
    engine = make_engine(cluster.url, timeout=ENDPOINT_TIMEOUT)
    ledger = sessions(engine)
    gate_id = open_gate(ledger, acme)
    holder = make_engine(cluster.url)
    handle = serve_in_thread(create_app(SlackDeps(signing_secret=SECRET, sessions=ledger, chat=slack_chat(slack),
                                                  resume=lambda _: None)))
    slack_clock = httpx.Client(timeout=3.0)  # Slack gives up on an endpoint after 3 s
    sponsor = SlackUser("U0SPONSOR1", endpoint=handle.url, signing_secret=SECRET, slack=slack, http=slack_clock)
    try:
        with transaction(sessions(holder)) as stuck:
            gates.by_id(stuck, gate_id, lock=True)
            click = sponsor.click(gate_id, Outcome.GO, acme.slack_channel, "1700000000.000100")
            assert click.status_code == 200  # answered at once; the lock is held until the clicker is told
            wait_until(lambda: NOT_RECORDED in [r["text"] for r in slack.responses], what="the ephemeral answer")
        with transaction(ledger) as session:
            assert gates.decisions(session, gate_id) == []
    finally:
        handle.stop()
        slack_clock.close()
        holder.dispose()
        engine.dispose()


def test_the_scripted_approver_clicks_again_when_told_to(tmp_path: Path, slack: SlackStandin, acme: Engagement) -> None:
    """The demo's approvers do what the answer asks: a click the locked SQLite ledger could not take
    ("... please click again in a minute") is clicked again once the lock is gone, and counts once."""
    import threading

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    engine = make_engine(url, timeout=ENDPOINT_TIMEOUT)
    ledger = sessions(engine)
    gate_id = open_gate(ledger, acme)
    holder = make_engine(url)
    handle = serve_in_thread(create_app(SlackDeps(signing_secret=SECRET, sessions=ledger, chat=slack_chat(slack),
                                                  resume=lambda _: None)))
    sponsor = SlackUser("U0SPONSOR1", endpoint=handle.url, signing_secret=SECRET, slack=slack)
    sent: list[str] = []

    def payload() -> dict[str, object]:
        click = sponsor.click_payload(gate_id, Outcome.GO, acme.slack_channel, "1700000000.000100")
        sent.append(str(click["response_url"]))
        return click

    def recorded() -> bool:
        with transaction(ledger, write=False) as session:  # a read: it does not wait in the writers' line
            return bool(gates.decisions(session, gate_id))

    try:
        with transaction(sessions(holder)) as stuck:
            stuck.connection()  # BEGIN IMMEDIATE: the write lock, held by someone else
            clicking = threading.Thread(target=sponsor.persist, args=(payload, recorded))
            clicking.start()
            wait_until(lambda: bool(sent) and NOT_RECORDED in slack.said_to(sent[0]), what="the first answer")
        clicking.join(30)
        assert len(sent) == 2 and slack.said_to(sent[1]) == []
        with transaction(ledger) as session:
            assert [(d.approver, d.outcome) for d in gates.decisions(session, gate_id)] == [("U0SPONSOR1", Outcome.GO)]
    finally:
        handle.stop()
        holder.dispose()
        engine.dispose()

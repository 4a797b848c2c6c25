"""The ledger's PostgreSQL is frozen (SIGSTOP: its processes stop, their sockets stay open, the kernel
still accepts connections and acknowledges what is sent), on a cluster of this test's own, never the
shared one at :5432. A server-side timeout can do nothing then; the endpoint's own bound must answer
the clicker within Slack's 3 s, and must say what happened."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import open_gate, wait_until
from sqlalchemy import text
from test_ledger_down import BIN, Cluster, cluster, slack_chat  # noqa: F401 (cluster is a fixture)

from phasegate.configs.schema import Engagement
from phasegate.ledger import gates
from phasegate.ledger.db import ENDPOINT_TIMEOUT, make_engine, sessions, transaction, upgrade
from phasegate.ops.servers import serve_in_thread
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.deps import NOT_RECORDED, SlackDeps
from phasegate.slack.unconfirmed import CONFIRMED, NOT_CONFIRMED
from phasegate.states import GateState, Outcome, Via

SECRET = "test-secret"
RUN = "7d3c1f2e-0000-4000-8000-000000000001"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not BIN, reason="needs PostgreSQL's initdb and pg_ctl")]


def cluster_pids(data: Path) -> list[int]:
    """The postmaster (first line of postmaster.pid) and every process it started."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


class Freezer:
    def __init__(self, pg: Cluster) -> None:
        self.data, self.stopped = pg.dir / "data", list[int]()

    def freeze(self) -> None:
        self.stopped = cluster_pids(self.data)
        for pid in self.stopped:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in {*self.stopped, *cluster_pids(self.data)}:  # and whatever stopped itself
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.stopped = []


@pytest.fixture
def freezer(cluster: Cluster) -> Iterator[Freezer]:  # noqa: F811
    frozen = Freezer(cluster)
    yield frozen
    frozen.thaw()  # before the cluster fixture stops it


def test_a_click_on_a_frozen_ledger_is_answered_in_time_and_not_recorded_later(
        cluster: Cluster, freezer: Freezer, slack: SlackStandin, acme: Engagement) -> None:  # noqa: F811
    """The endpoint's pooled connection is alive when PostgreSQL freezes: its pre-ping, the reconnect
    and every statement are bounded on the client side, the clicker hears "not recorded" while the
    server is still frozen, and nothing the click sent is committed when the server comes back."""
    upgrade(cluster.url)
    engine = make_engine(cluster.url, timeout=ENDPOINT_TIMEOUT)
    ledger = sessions(engine)
    gate_id = open_gate(ledger, acme)
    handle = serve_in_thread(create_app(SlackDeps(signing_secret=SECRET, sessions=ledger, chat=slack_chat(slack),
                                                  resume=lambda _: None)))
    slack_clock = httpx.Client(timeout=3.0)  # Slack gives up on an endpoint after 3 s
    sponsor = SlackUser("U0SPONSOR1", endpoint=handle.url, signing_secret=SECRET, slack=slack, http=slack_clock)
    try:
        assert slack_clock.get(handle.url + "/healthz").status_code == 200  # the pool holds a live connection
        freezer.freeze()
        click = sponsor.click(gate_id, Outcome.GO, acme.slack_channel, "1700000000.000100")
        health = slack_clock.get(handle.url + "/healthz")
        assert click.status_code == 200
        wait_until(lambda: NOT_RECORDED in [r["text"] for r in slack.responses], what="the ephemeral answer")
        assert health.status_code == 503 and health.json()["ledger"].startswith("no answer: ")
        freezer.thaw()
        handle.stop()  # every request the endpoint took has finished
        with transaction(ledger) as session:
            assert gates.decisions(session, gate_id) == []
    finally:
        freezer.thaw()
        handle.stop()
        slack_clock.close()
        engine.dispose()


def test_a_click_whose_commit_goes_unanswered_is_told_so_and_then_told_which(
        cluster: Cluster, freezer: Freezer, slack: SlackStandin, acme: Engagement) -> None:  # noqa: F811
    """PostgreSQL freezes while it carries out the click's COMMIT (a deferred trigger on decisions stops
    the backend and the postmaster, for real, with SIGSTOP). The clicker hears in time that the answer
    may or may not be recorded, and once the server is back, which it was: the same as the ledger."""
    upgrade(cluster.url)
    engine = make_engine(cluster.url, timeout=ENDPOINT_TIMEOUT)
    ledger = sessions(engine)
    gate_id = open_gate(ledger, acme, flow_run_id=RUN)
    with transaction(ledger) as session:  # the vendor's GO is in: the sponsor's decides the gate
        gates.answer(session, gate_id, approver="U0VENDLEAD", outcome=Outcome.GO, reason="", via=Via.CLI,
                     delivery_id="vendor-go")
    postmaster = cluster_pids(cluster.dir / "data")[0]
    admin = make_engine(cluster.url)
    with admin.begin() as conn:
        conn.execute(text(f"""CREATE FUNCTION freeze_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN COPY (SELECT 1) TO PROGRAM 'kill -STOP $PPID {postmaster}'; RETURN NULL; END $$"""))
        conn.execute(text("CREATE CONSTRAINT TRIGGER freeze_at_commit AFTER INSERT ON decisions "
                          "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION freeze_at_commit()"))
    admin.dispose()
    woken: list[str] = []
    handle = serve_in_thread(create_app(SlackDeps(signing_secret=SECRET, sessions=ledger, chat=slack_chat(slack),
                                                  resume=woken.append)))
    slack_clock = httpx.Client(timeout=3.0)  # Slack gives up on an endpoint after 3 s
    sponsor = SlackUser("U0SPONSOR1", endpoint=handle.url, signing_secret=SECRET, slack=slack, http=slack_clock)
    try:
        click = sponsor.click_payload(gate_id, Outcome.GO, acme.slack_channel, "1700000000.000100")
        url = str(click["response_url"])
        assert sponsor.send(click).status_code == 200
        wait_until(lambda: slack.said_to(url) == [NOT_CONFIRMED], what="the clicker told it is not confirmed")
        freezer.thaw()
        said = wait_until(lambda: (lambda s: s if len(s) == 2 else None)(slack.said_to(url)), timeout=30,
                          what="the clicker told which it was")
        with transaction(ledger, write=False) as session:
            recorded = [(d.approver, d.outcome) for d in gates.decisions(session, gate_id)]
            state = gates.by_id(session, gate_id).state
        assert recorded in ([("U0VENDLEAD", Outcome.GO)], [("U0VENDLEAD", Outcome.GO), ("U0SPONSOR1", Outcome.GO)])
        assert said[1] == (CONFIRMED if len(recorded) == 2 else NOT_RECORDED)
        if state is not GateState.OPEN:  # the late answer decided the gate: its run is woken as a click's would be
            wait_until(lambda: woken == [RUN], what="the run woken")
    finally:
        freezer.thaw()
        handle.stop()
        slack_clock.close()
        engine.dispose()

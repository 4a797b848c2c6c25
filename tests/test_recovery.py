"""Runs that die or are stopped while a gate is open, against a real Prefect server and runner: a
flow run deleted or cancelled in Prefect for real, then the gate watch and the CLI recover from the
ledger. Every decision recorded is carried out by some run, or the people concerned are told."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from click.testing import Result
from helpers import ok, process_tree, refused, wait_until, with_changes
from prefect.client.orchestration import get_client
from prefect.states import Cancelled
from prefect_seed import seeded
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.schema import Phase
from phasegate.errors import GateClosed
from phasegate.gates import operations
from phasegate.gates.watch import WatchReport, watch
from phasegate.ledger import audit, engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.models import GateRow, utcnow
from phasegate.ops.serve_flows import parent_of
from phasegate.orchestration.runs import PrefectRuns
from phasegate.sandbox.world import Demo, demo_engagements, local_world
from phasegate.settings import Settings
from phasegate.states import AuditKind, EngagementState, GateState, Outcome, RunHealth, Via

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The served gate watch runs once a day here: the tests run each pass themselves."""
    settings = Settings(home=tmp_path_factory.mktemp("recovery"), database_url="", watch_interval_seconds=86400)
    with local_world(seeded(settings)) as demo:
        yield demo


def begin(world: Demo, engagement_id: str, *, gate: bool = True,
          wait_kickoff: bool = True) -> tuple[str, GateRow | None]:
    """A copy of acme-churn with its PoC run started and, with `gate`, G1 open and the run paused on it;
    without, the run waits for a timebox that has just begun."""
    changes: dict[str, object] = {} if gate else {"start_date": utcnow().date().isoformat()}  # timebox not over
    copy = with_changes(demo_engagements()["acme-churn"], id=engagement_id,
                        name=f"ACME {engagement_id}", **changes)
    with transaction(world.rt.sessions) as session:
        engagements.register(session, copy)
    world.jira[engagement_id] = world.jira["acme-churn"]
    run_id = operations.start_phase(world.rt, engagement_id, Phase.POC, "U0PMACME01")
    if not wait_kickoff:
        return run_id, None
    world.wait_phase_run(engagement_id, Phase.POC)
    if not gate:
        return run_id, None
    world.finish_jira_work(engagement_id, Phase.POC)
    world.review(engagement_id)
    row = world.open_gate(engagement_id, Phase.POC)
    paused(run_id)
    return run_id, row


def paused(run_id: str) -> None:
    def check() -> bool:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(run_id)).state
        return state is not None and state.is_paused()
    wait_until(check, timeout=60, what=f"flow run {run_id} to pause", interval=0.2)


def no_go(world: Demo, gate_id: int) -> None:
    """Both sides answer NO-GO, straight into the ledger (the run that would act on it is gone)."""
    with transaction(world.rt.sessions) as session:
        for user in ("U0SPONSOR1", "U0VENDLEAD"):
            gates.answer(session, gate_id, approver=user, outcome=Outcome.NO_GO, reason="the data is not there",
                         via=Via.CLI)
        assert gates.by_id(session, gate_id).state is GateState.DECIDED


def state_of(world: Demo, engagement_id: str) -> EngagementState:
    with transaction(world.rt.sessions) as session:
        return engagements.get(session, engagement_id).state


def current_run(world: Demo, engagement_id: str) -> str:
    with transaction(world.rt.sessions) as session:
        run_id = phases.phase_run(session, engagement_id, Phase.POC).flow_run_id
    assert run_id is not None
    return run_id


def one_pass(world: Demo) -> WatchReport:
    runs = PrefectRuns()
    return watch(world.rt, utcnow(), runs.wake, runs=runs)


def channel(world: Demo) -> list[str]:
    return [m.text for m in world.slack.messages("C0ACMECHURN") if m.thread_ts is None]


def cli(world: Demo, *args: str) -> Result:
    env = world.rt.settings.as_env() | {"PREFECT_API_URL": world.api, "COLUMNS": "200"}
    return CliRunner(env=env).invoke(app, list(args))


def test_a_deleted_run_blocks_no_one_and_a_new_run_carries_its_decision_out(world: Demo) -> None:
    deleted, gate = begin(world, "rec-a-deleted")
    waiting, _ = begin(world, "rec-b-waiting", gate=False)
    assert gate is not None
    with get_client(sync_client=True) as client:
        client.delete_flow_run(UUID(deleted))
    no_go(world, gate.id)
    paused(waiting)
    with transaction(world.rt.sessions) as session:  # the PM's early review, recorded without a nudge
        phases.current_timebox(session, "rec-b-waiting", Phase.POC).review_requested = True

    report = one_pass(world)

    assert report.problems == []
    assert waiting in report.woken  # the engagement after the broken one still gets its nudge
    replacement = current_run(world, "rec-a-deleted")
    assert report.restarted == [f"rec-a-deleted: {replacement}"] and replacement != deleted
    wait_until(lambda: state_of(world, "rec-a-deleted") is EngagementState.CLOSED, timeout=90,
               what="the new run to carry out the NO-GO", interval=0.3)
    world.open_gate("rec-b-waiting", Phase.POC)
    assert any(f"started flow run {replacement}" in t and "G1 NO-GO" in t for t in channel(world))
    with transaction(world.rt.sessions) as session:
        lost = audit.events(session, "rec-a-deleted", AuditKind.RUN_LOST)
        assert [(e.subject, e.payload["health"]) for e in lost] == [(deleted, "missing")]
    assert "rec-a-deleted" not in str(one_pass(world).restarted)  # once closed, nothing more to do


def test_a_cancelled_run_with_a_decided_gate_is_replaced_not_called_woken(world: Demo) -> None:
    cancelled, gate = begin(world, "rec-c-decided")
    assert gate is not None
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(cancelled), Cancelled(message="stopped in the UI"), force=True)
    for user in ("U0SPONSOR1", "U0VENDLEAD"):
        world.click(gate, user, Outcome.NO_GO, "not worth it")  # the approvers are told "decided NO-GO"

    report = one_pass(world)

    assert cancelled not in report.woken
    replacement = current_run(world, "rec-c-decided")
    assert report.restarted == [f"rec-c-decided: {replacement}"]
    wait_until(lambda: state_of(world, "rec-c-decided") is EngagementState.CLOSED, timeout=90,
               what="the new run to carry out the NO-GO", interval=0.3)
    told = [t for t in channel(world) if "rec-c-decided" in t and "cancelled (Cancelled: stopped in the UI)" in t]
    assert len(told) == 1 and "G1 NO-GO" in told[0]


def test_a_cancelled_run_is_reported_once_and_retried_from_the_cli(world: Demo) -> None:
    cancelled, gate = begin(world, "rec-d-cancelled")
    assert gate is not None
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(cancelled), Cancelled(message="stopped in the UI"), force=True)

    first, second = one_pass(world), one_pass(world)

    assert first.cancelled == ["rec-d-cancelled"] and cancelled not in first.woken + second.woken
    assert first.restarted == [] and second.restarted == []
    told = [t for t in channel(world) if "rec-d-cancelled" in t and "was cancelled in Prefect" in t]
    assert len(told) == 1 and "phasegate phase retry rec-d-cancelled" in told[0]
    shown = ok(cli(world, "engagement", "show", "rec-d-cancelled"))
    assert f"flow run {cancelled}: cancelled (Cancelled: stopped in the UI)" in shown
    assert "`phasegate phase retry` starts it again" in shown
    refused(cli(world, "phase", "start", "rec-d-cancelled", "poc"), "has already started", "cancelled",
            "phase retry rec-d-cancelled")

    retried = ok(cli(world, "phase", "retry", "rec-d-cancelled"))
    replacement = current_run(world, "rec-d-cancelled")
    assert f"flow run {replacement} started" in retried
    paused(replacement)  # found G1 open in the ledger and waits on it again
    refused(cli(world, "phase", "retry", "rec-d-cancelled"), "nothing to retry")
    with transaction(world.rt.sessions) as session:
        assert gates.by_id(session, gate.id).flow_run_id == replacement
    for user in ("U0SPONSOR1", "U0VENDLEAD"):
        world.click(gate, user, Outcome.NO_GO, "not worth it")
    wait_until(lambda: state_of(world, "rec-d-cancelled") is EngagementState.CLOSED, timeout=90,
               what="the retried run to carry out the NO-GO", interval=0.3)
    shown = ok(cli(world, "engagement", "show", "rec-d-cancelled"))
    assert f"poc run {cancelled} replaced by {replacement}" in shown


def test_cancel_closes_the_engagement_under_the_audit_trail(world: Demo, tmp_path: Path) -> None:
    run_id, gate = begin(world, "rec-e-stopped")
    assert gate is not None
    refused(cli(world, "engagement", "cancel", "rec-e-stopped", "--reason", " "), "needs a --reason")

    ok(cli(world, "engagement", "cancel", "rec-e-stopped", "--reason", "the client ended the contract"))

    with transaction(world.rt.sessions) as session:
        row = engagements.get(session, "rec-e-stopped")
        assert row.state is EngagementState.CANCELLED
        assert row.closed_reason is not None and row.closed_reason.endswith("the client ended the contract")
        closed = audit.events(session, "rec-e-stopped", AuditKind.ENGAGEMENT_CLOSED)
        assert [e.payload["reason"] for e in closed] == [row.closed_reason]
    assert PrefectRuns().status(run_id).health is RunHealth.CANCELLED
    with pytest.raises(GateClosed, match="was cancelled"), transaction(world.rt.sessions) as session:
        gates.answer(session, gate.id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="", via=Via.CLI)
    assert "rec-e-stopped" not in one_pass(world).cancelled  # an ended engagement has no run to expect
    refused(cli(world, "phase", "retry", "rec-e-stopped"), "is cancelled")
    refused(cli(world, "engagement", "cancel", "rec-e-stopped", "--reason", "again"), "already ended")
    assert ok(cli(world, "audit", "verify", "rec-e-stopped"))


def test_a_run_whose_posts_lose_their_answers_posts_each_once(world: Demo) -> None:
    """Slack stores the kickoff, and later the gate prompt, but the connection drops before either
    answer arrives (the stand-in's drop_after). The run, in the runner's process, finds each post in
    the channel by its mark and records that ts: one kickoff, one prompt, and the prompt the
    approvers click is the one updated with their decision."""
    world.slack.drop_after("chat.postMessage")  # the kickoff
    run_id, _ = begin(world, "rec-g-dropped", gate=False)
    world.finish_jira_work("rec-g-dropped", Phase.POC)
    world.slack.drop_after("chat.postMessage")  # the gate prompt, the run's next post
    world.review("rec-g-dropped")
    gate = world.open_gate("rec-g-dropped", Phase.POC)
    paused(run_id)

    mine = [m for m in world.slack.messages("C0ACMECHURN") if m.thread_ts is None and "ACME rec-g-dropped" in m.text]
    kickoffs = [m.ts for m in mine if "started for *" in m.text]
    prompts = [m.ts for m in mine if "Your answer is asked for" in m.text]
    assert kickoffs == [current_kickoff(world, "rec-g-dropped")] and prompts == [gate.message_ts]
    for user in ("U0SPONSOR1", "U0VENDLEAD"):
        world.click(gate, user, Outcome.NO_GO, "not worth it")
    wait_until(lambda: state_of(world, "rec-g-dropped") is EngagementState.CLOSED, timeout=90,
               what="the run to carry out the NO-GO", interval=0.3)
    assert gate.message_ts is not None
    decided = world.slack.message("C0ACMECHURN", gate.message_ts)
    assert "decided NO-GO" in decided.text and not any(b["type"] == "actions" for b in decided.blocks)


def current_kickoff(world: Demo, engagement_id: str) -> str | None:
    with transaction(world.rt.sessions) as session:
        return phases.phase_run(session, engagement_id, Phase.POC).kickoff_ts


@pytest.mark.xdist_group("recovery-kill")  # the longest test: its own worker and world
def test_a_runner_killed_mid_task_is_marked_crashed_and_its_phase_run_again(world: Demo) -> None:
    """The runner and its flow-run process are SIGKILLed while the run waits on Jira: no one is left
    to tell Prefect. The run's heartbeats stop, Prefect's automation marks it Crashed, and the gate
    watch starts a new run that finds the kickoff in the ledger and goes on to the gate."""
    assert world.stack is not None and world.stack.runner is not None
    jira = world.jira["acme-churn"]
    seen = len(jira.requests)
    jira.latency = 60.0  # the run hangs in its first Jira call
    run_id, _ = begin(world, "rec-f-killed", wait_kickoff=False)

    def mid_task() -> bool:
        with transaction(world.rt.sessions) as session:
            run = phases.find_phase_run(session, "rec-f-killed", Phase.POC)
            kicked_off = run is not None and run.kickoff_ts is not None
        return kicked_off and len(jira.requests) > seen and PrefectRuns().status(run_id).why.startswith("Running")
    wait_until(mid_task, timeout=60, what="the run to wait on Jira", interval=0.2)
    runner = world.stack.runner
    # the run's process was forked from the runner's warm forkserver, not started as a new interpreter
    (warm,) = [pid for pid in process_tree(runner.pid)[1:]
               if b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
               and parent_of(pid) == runner.pid]
    assert process_tree(warm)[1:], "no flow-run process forked from the warm server"
    for pid in process_tree(runner.pid):
        os.kill(pid, signal.SIGKILL)
    runner.wait()
    jira.latency = 0.0

    wait_until(lambda: PrefectRuns().status(run_id).health is RunHealth.CRASHED, timeout=300,
               what="Prefect to mark the silent run crashed", interval=2)
    world.stack.flows()  # the runner is back, as a restarted `phasegate up` brings it
    report = one_pass(world)

    replacement = current_run(world, "rec-f-killed")
    assert report.restarted == [f"rec-f-killed: {replacement}"] and replacement != run_id
    world.review("rec-f-killed")  # the timebox is open: G1 opens at the PM's review, in the replacement
    world.open_gate("rec-f-killed", Phase.POC)
    kickoffs = [t for t in channel(world) if "started for *ACME rec-f-killed*" in t]
    assert len(kickoffs) == 1

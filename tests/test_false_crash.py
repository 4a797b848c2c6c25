"""Issue 21 item 4: a Prefect server restart must not cost healthy runs a false "crashed".

Against a real Prefect server, runner and heartbeat automation (beats every 30 s, Prefect's least,
so a run is marked Crashed 75 s after its last beat): runs suspended on a gate before the server is
restarted and woken after it suspend again, and Prefect's automation marks them Crashed all the same
(phasegate.orchestration.resume says why). They are suspended again, not replaced: no new run, no
restart used, nothing said in the channel, and their gates' decisions are carried out by them. A run
whose runner is killed mid-task in the same minutes is still replaced."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from uuid import UUID

import pytest
from helpers import process_tree, wait_until
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect_seed import seeded
from test_recovery import begin, channel, current_run, one_pass, state_of

from phasegate.configs.schema import Phase
from phasegate.ledger import audit, phases
from phasegate.ledger.db import transaction
from phasegate.ops.local import stop_process
from phasegate.orchestration.runs import PrefectRuns
from phasegate.sandbox.world import Demo, local_world
from phasegate.settings import Settings
from phasegate.states import AuditKind, EngagementState, Outcome, RunHealth

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The served gate watch runs once a day here: the test runs each pass itself."""
    settings = Settings(home=tmp_path_factory.mktemp("false-crash"), database_url="", watch_interval_seconds=86400,
                        heartbeat_seconds=30)
    with local_world(seeded(settings)) as demo:
        yield demo


def states(run_id: str) -> list[State]:
    with get_client(sync_client=True) as client:
        return client.read_flow_run_states(UUID(run_id))


def suspended_again(run_id: str, after: int) -> bool:
    """Woken (it ran) and suspended again since the run had `after` states."""
    now = states(run_id)
    return len(now) > after and now[-1].is_paused() and any(s.is_running() for s in now[after:])


def crashed(run_id: str) -> bool:
    return PrefectRuns().status(run_id).health is RunHealth.CRASHED


def told_of(world: Demo, engagement_id: str) -> list[str]:
    return [t for t in channel(world) if engagement_id in t and ":arrows_counterclockwise:" in t]


def replacements(world: Demo, engagement_id: str) -> list[str]:
    with transaction(world.rt.sessions) as session:
        return [e.kind.value for kind in (AuditKind.RUN_LOST, AuditKind.RUN_RESTARTED)
                for e in audit.events(session, engagement_id, kind)]


def test_runs_woken_after_a_prefect_restart_are_not_replaced_and_a_killed_one_is(world: Demo) -> None:
    assert world.stack is not None and world.stack.server is not None and world.stack.runner is not None
    by_watch, gate_w = begin(world, "fc-watch")  # suspended on G1 before the restart
    by_click, gate_c = begin(world, "fc-click")
    assert gate_w is not None and gate_c is not None
    stop_process(world.stack.server)
    world.stack.start_server()  # the same port and database; the trigger service starts afresh

    before = {run: len(states(run)) for run in (by_watch, by_click)}
    for run in (by_watch, by_click):  # a nudge: the gate is still open, so the run suspends again
        assert PrefectRuns(wake_wait=30).wake(run)
    for run in (by_watch, by_click):
        wait_until(lambda run=run: suspended_again(run, before[run]), timeout=90,
                   what=f"{run} to suspend again", interval=0.5)

    # the real case, meanwhile: a run started after the restart whose runner is killed mid-task
    jira = world.jira["acme-churn"]
    seen = len(jira.requests)
    jira.latency = 60.0
    killed, _ = begin(world, "fc-killed", wait_kickoff=False)

    def mid_task() -> bool:
        with transaction(world.rt.sessions) as session:
            run = phases.find_phase_run(session, "fc-killed", Phase.POC)
            kicked_off = run is not None and run.kickoff_ts is not None
        return kicked_off and len(jira.requests) > seen and PrefectRuns().status(killed).why.startswith("Running")
    wait_until(mid_task, timeout=90, what="the run to wait on Jira", interval=0.2)
    runner = world.stack.runner
    for pid in process_tree(runner.pid):
        os.kill(pid, signal.SIGKILL)
    runner.wait()
    jira.latency = 0.0

    for run in (by_watch, by_click, killed):  # the fault: all three are marked Crashed by the automation
        wait_until(lambda run=run: crashed(run), timeout=240,
                   what=f"Prefect's automation to mark {run} crashed", interval=2)
    assert "no heartbeat" in PrefectRuns().status(by_watch).why
    world.stack.flows()  # the runner is back, as a restarted `phasegate up` brings it

    # a click on a falsely crashed run wakes it: it is suspended again, then resumed, and decides
    for user in ("U0SPONSOR1", "U0VENDLEAD"):
        world.click(gate_c, user, Outcome.NO_GO, "not worth it")
    wait_until(lambda: state_of(world, "fc-click") is EngagementState.CLOSED, timeout=120,
               what="the woken run to carry out the NO-GO", interval=0.5)

    report = one_pass(world)

    replacement = current_run(world, "fc-killed")
    assert replacement != killed and report.restarted == [f"fc-killed: {replacement}"]
    assert len(told_of(world, "fc-killed")) == 1
    assert current_run(world, "fc-watch") == by_watch and current_run(world, "fc-click") == by_click
    status = PrefectRuns().status(by_watch)
    assert status.health is RunHealth.ALIVE and states(by_watch)[-1].name == "Suspended", status
    assert report.problems == []
    for engagement_id in ("fc-watch", "fc-click"):
        assert replacements(world, engagement_id) == [] and told_of(world, engagement_id) == []

    for user in ("U0SPONSOR1", "U0VENDLEAD"):  # the suspend put back waits for the gate as before
        world.click(gate_w, user, Outcome.NO_GO, "not worth it")
    wait_until(lambda: state_of(world, "fc-watch") is EngagementState.CLOSED, timeout=120,
               what="the restored run to carry out the NO-GO", interval=0.5)
    assert current_run(world, "fc-watch") == by_watch

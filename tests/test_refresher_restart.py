"""The work after an answer survives the death of the process that would have done it: the sandbox's
own stack (a real Prefect server and runner, the Slack endpoint, the refresher as a process of its
own), the refresher SIGKILLed, then the deciding clicks. Before the ledger was the queue, the
endpoint's in-memory follow-ups died with their process and the prompt kept its buttons until some
later click; now the marks wait in the ledger, and the refresher started again draws the prompt and
wakes the paused run."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from uuid import UUID

import pytest
from helpers import wait_until
from prefect.client.orchestration import get_client
from prefect_seed import seeded
from sqlalchemy import select

from phasegate.configs.schema import Phase
from phasegate.gates import operations
from phasegate.ledger import gates, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.models import FollowUpRow
from phasegate.sandbox.world import Demo, local_world
from phasegate.settings import Settings
from phasegate.states import GateState, Outcome

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The served gate watch runs once a day here: no watch pass wakes the run behind the test's back."""
    settings = Settings(home=tmp_path_factory.mktemp("refresher"), database_url="", watch_interval_seconds=86400)
    with local_world(seeded(settings)) as demo:
        demo.metrics.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)  # G1's exit criteria pass
        yield demo


def paused(run_id: str) -> bool:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    return state is not None and state.is_paused()


def buttons(world: Demo, gate_id: int) -> bool:
    with transaction(world.rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    assert gate.message_ts is not None
    return '"actions"' in json.dumps(world.slack.message(gate.channel, gate.message_ts).blocks)


def marks(world: Demo) -> list[tuple[int, bool]]:
    with transaction(world.rt.sessions) as session:
        return [(row.target, row.wake) for row in session.execute(select(FollowUpRow.target, FollowUpRow.wake))]


def development_kicked_off(world: Demo) -> bool:
    with transaction(world.rt.sessions) as session:
        run = phases.find_phase_run(session, "acme-churn", Phase.DEVELOPMENT)
        return run is not None and run.kickoff_ts is not None


def test_a_refresher_killed_before_the_refresh_draws_the_prompt_and_wakes_the_run_once_started_again(
        world: Demo) -> None:
    run_id = operations.start_phase(world.rt, "acme-churn", Phase.POC, "U0PMACME01")
    world.wait_phase_run("acme-churn", Phase.POC)
    world.finish_jira_work("acme-churn", Phase.POC)
    world.review("acme-churn")
    gate = world.open_gate("acme-churn", Phase.POC)
    wait_until(lambda: paused(run_id), timeout=60, what="the PoC run to pause on G1", interval=0.3)
    stack = world.stack
    assert stack is not None and stack.refresh is not None
    refresher = stack.refresh
    os.kill(refresher.pid, signal.SIGKILL)
    assert refresher.wait(10) == -signal.SIGKILL

    world.click(gate, "U0SPONSOR1", Outcome.GO)
    world.click(gate, "U0VENDLEAD", Outcome.GO)
    with transaction(world.rt.sessions) as session:
        assert gates.by_id(session, gate.id).state is GateState.DECIDED
    time.sleep(2)  # what the refresher would have done by now, had it lived
    assert marks(world) == [(gate.id, True)]  # the work, waiting in the ledger
    assert buttons(world, gate.id) and paused(run_id)

    stack.refresher()  # started again, as `phasegate up` does (phasegate/ops/supervise.py)
    wait_until(lambda: not buttons(world, gate.id), timeout=30, what="the prompt drawn decided")
    wait_until(lambda: not paused(run_id), timeout=30, what="the PoC run woken")
    wait_until(lambda: marks(world) == [], timeout=30, what="the mark cleared")
    wait_until(lambda: development_kicked_off(world), timeout=240, interval=0.5,
               what="the woken run to carry out the GO")

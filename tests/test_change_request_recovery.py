"""A change request's flow run killed for real after the approving answer, against a real Prefect
server and runner: the runner and the run's process are SIGKILLed while the run labels the Jira
issue, Prefect marks the run Crashed, and `phasegate cr prompt` starts a new run that announces the
outcome once. (The gate watch's side of the same rules: tests/test_change_request_runs.py.)"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from uuid import UUID

import pytest
from helpers import ok, process_tree, wait_until, with_changes
from prefect.client.orchestration import get_client
from prefect.states import Crashed
from prefect_seed import seeded
from test_recovery import cli, one_pass

from phasegate.changes import operations as cr_operations
from phasegate.configs.schema import Phase
from phasegate.gates import operations
from phasegate.ledger import change_requests as crs
from phasegate.ledger import engagements
from phasegate.ledger.db import transaction
from phasegate.orchestration.runs import PrefectRuns
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.world import Demo, demo_engagements, local_world
from phasegate.settings import Settings
from phasegate.states import ChangeSource, Outcome, RunHealth

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ENGAGEMENT, PM = "crrec-killed", "U0PMACME01"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    settings = Settings(home=tmp_path_factory.mktemp("cr-recovery"), database_url="", watch_interval_seconds=86400)
    with local_world(seeded(settings)) as demo:
        yield demo


def cr_row(world: Demo, cr_id: int) -> tuple[str | None, str | None, bool]:
    with transaction(world.rt.sessions) as session:
        cr = crs.by_id(session, cr_id)
        return cr.flow_run_id, cr.message_ts, cr.announced


def test_a_run_killed_after_the_approval_is_started_again_by_cr_prompt(world: Demo) -> None:
    assert world.stack is not None and world.stack.runner is not None
    copy = with_changes(demo_engagements()["acme-churn"], id=ENGAGEMENT, name="ACME crrec")
    with transaction(world.rt.sessions) as session:
        engagements.register(session, copy)
    jira = world.jira[ENGAGEMENT] = world.jira["acme-churn"]
    operations.start_phase(world.rt, ENGAGEMENT, Phase.POC, PM)
    world.wait_phase_run(ENGAGEMENT, Phase.POC)

    def linked() -> str | None:  # the milestones linked and the baseline recorded, as the run does
        with transaction(world.rt.sessions) as session:
            if crs.baseline(session, ENGAGEMENT) is None:
                return None
            return next(iter(engagements.links(session, ENGAGEMENT, Phase.POC).values()), None)
    issue = wait_until(linked, timeout=60, what="the milestones' Jira issues", interval=0.2)
    filed = cr_operations.file(world.rt.sessions, ENGAGEMENT, Draft(title="Explainability report",
                               scope_added=("shap-report",), jira_issue=issue), requested_by=PM,
                               source=ChangeSource.CLI)
    first = cr_operations.start_flow(ENGAGEMENT, filed.number)
    wait_until(lambda: cr_row(world, filed.cr_id)[1], timeout=60, what="the prompt", interval=0.2)

    jira.latency = 60.0  # the woken run hangs labelling the issue
    seen = len(jira.requests)
    for approver in ("U0SPONSOR1", "U0VENDLEAD"):
        cr_operations.decide(world.rt, filed.cr_id, approver=approver, outcome=Outcome.APPROVE, reason="",
                             operator=None)
    wait_until(lambda: len(jira.requests) > seen and PrefectRuns().status(first).why.startswith("Running"),
               timeout=60, what="the run to label the Jira issue", interval=0.2)
    runner = world.stack.runner
    for pid in process_tree(runner.pid):
        os.kill(pid, signal.SIGKILL)
    runner.wait()
    jira.latency = 0.0
    with get_client(sync_client=True) as client:  # what Prefect's automation does once the heartbeats stop
        client.set_flow_run_state(UUID(first), Crashed(message="the flow run's process was killed"), force=True)
    assert PrefectRuns().status(first).health is RunHealth.CRASHED
    assert cr_row(world, filed.cr_id)[2] is False
    world.stack.flows()  # the runner is back, as a restarted `phasegate up` brings it

    shown = ok(cli(world, "cr", "prompt", ENGAGEMENT, str(filed.number)))

    replacement = cr_row(world, filed.cr_id)[0]
    assert replacement is not None and replacement != first
    assert f"flow run {first} is crashed" in shown and f"started flow run {replacement}" in shown
    wait_until(lambda: cr_row(world, filed.cr_id)[2], timeout=90, what="the new run to announce", interval=0.3)
    _, prompt_ts, _ = cr_row(world, filed.cr_id)
    assert prompt_ts is not None
    announced = [m for m in world.slack.thread("C0ACMECHURN", prompt_ts) if "is approved: baseline" in m.text]
    assert len(announced) == 1
    assert "phasegate-cr-approved" in jira.issue(issue)["fields"]["labels"]
    assert ENGAGEMENT not in str(one_pass(world).restarted)  # announced: nothing left for the watch

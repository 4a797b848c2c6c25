"""B-RESUME: the click that decides a gate, to the next task and to the next phase's kickoff in Slack,
beside a bare Prefect suspend/resume flow.

    .venv/bin/python -m bench.resume                 # 10 gates, 10 anchor resumes
    .venv/bin/python -m bench.resume --quick         # 1 of each (the CI smoke run)

Everything runs as `phasegate demo` runs it (sandbox/demo.py): a local Prefect server, the flows
served by a runner (1 s poll, phasegate's default), the Slack endpoint, and the Slack, Jira and
metric stand-ins over HTTP, with a SQLite ledger. Each sample is G1 of its own copy of acme-churn,
started today so that its gate opens at the PM's review with every exit criterion passing; one
approver clicks GO, then the deciding GO is sent as a signed request and the clock starts:

- click -> run resumed: the phase run's first state after the click in Prefect (the endpoint
  records the answer, refreshes the prompt, then resumes the run);
- click -> next task: the first task run of the phase run that starts after the click (Prefect's
  task run start time, written by the flow-run process on this machine);
- click -> kickoff: the development kickoff as the Slack stand-in received it (its ts is the
  arrival time).

The anchor is a flow that only suspends and then runs one task (bench/bare_flow.py), served by the
same kind of runner with the same poll interval: resume call -> that task's start. Samples
alternate, anchor then phasegate, so load on the machine hits both alike. Target (SPEC 11, issue
12): click -> kickoff under 4 s median.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from bench.bare_flow import DEPLOYMENT as ANCHOR_DEPLOYMENT
from bench.results import Run, add_argument
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement, Phase
from phasegate.gates import operations
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.models import GateRow
from phasegate.ops.local import stop_process
from phasegate.sandbox import world as sandbox_world
from phasegate.sandbox.world import Demo, local_world, wait_for
from phasegate.settings import Settings
from phasegate.states import Outcome

TARGET = 4.0  # seconds, click -> next phase's kickoff, median
ROOT = Path(__file__).resolve().parent.parent
CLIENT, VENDOR = "U0SPONSOR1", "U0VENDLEAD"  # G1's quorum: one from each side; the second decides


def paused(client: SyncPrefectClient, run_id: str, timeout: float = 120) -> None:
    def probe() -> bool:
        state = client.read_flow_run(UUID(run_id)).state
        return state is not None and state.is_paused()
    wait_for(f"flow run {run_id} to pause", probe, timeout)


def first_task_after(client: SyncPrefectClient, run_id: str, after: float, timeout: float = 120) -> float:
    """Seconds from `after` (epoch) to the start of the run's first task run that started later."""
    def probe() -> float | None:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)])))
        starts = [r.start_time.timestamp() for r in runs if r.start_time and r.start_time.timestamp() > after]
        return min(starts) - after if starts else None
    return wait_for(f"a task of flow run {run_id} to start", probe, timeout)


def resumed_after(client: SyncPrefectClient, run_id: str, after: float) -> float:
    """Seconds from `after` to the run's first state after it (the resume moves it out of Paused)."""
    stamps = [state.timestamp.timestamp() for state in client.read_flow_run_states(UUID(run_id))]
    return min(t for t in stamps if t > after) - after


def prepared_gate(world: Demo, template: Engagement, n: int) -> tuple[str, GateRow]:
    """An engagement at an open G1 whose criteria all pass, its PoC run paused on the gate."""
    engagement_id = f"resume-{n:02d}"
    copy = Engagement.model_validate(template.model_dump(mode="json") | {
        "id": engagement_id, "name": f"Resume {n:02d}", "slack_channel": f"C0RESUME{n:02d}",
        "start_date": dt.date.today().isoformat()})  # the timebox runs: the gate waits for the review
    with transaction(world.rt.sessions) as session:
        engagements.register(session, copy)
    world.jira[engagement_id] = world.jira["acme-churn"]
    run_id = operations.start_phase(world.rt, engagement_id, Phase.POC, copy.pm_slack_user)
    world.wait_phase_run(engagement_id, Phase.POC)
    world.finish_jira_work(engagement_id, Phase.POC)
    world.review(engagement_id)
    gate = world.open_gate(engagement_id, Phase.POC)
    with transaction(world.rt.sessions) as session:
        unmet = gates.snapshot_of(session, gates.by_id(session, gate.id)).unmet
    if unmet:
        raise SystemExit(f"{engagement_id}: G1 has unmet criteria {unmet}; the bench needs a plain GO")
    return run_id, gate


def kickoff_seen(world: Demo, channel: str) -> float | None:
    """Arrival time (epoch) of the development kickoff in `channel`, once it is there."""
    for message in world.slack.messages(channel):
        if message.thread_ts is None and Phase.DEVELOPMENT.heading in message.text:
            return float(message.ts)
    return None


def phasegate_sample(world: Demo, client: SyncPrefectClient, run_id: str,
                     gate: GateRow) -> tuple[float, float, float]:
    assert gate.message_ts is not None
    paused(client, run_id)
    world.user(CLIENT).click(gate.id, Outcome.GO, gate.channel, gate.message_ts).raise_for_status()
    time.sleep(1)  # the first answer's prompt refresh is done before the clock starts
    deciding = world.user(VENDOR)
    started = time.time()
    deciding.click(gate.id, Outcome.GO, gate.channel, gate.message_ts).raise_for_status()
    kickoff = wait_for("the development kickoff", lambda: kickoff_seen(world, gate.channel), 120) - started
    next_task = first_task_after(client, run_id, started)
    resumed = resumed_after(client, run_id, started)
    with transaction(world.rt.sessions) as session:
        run = phases.phase_run(session, gate.engagement_id, Phase.DEVELOPMENT).flow_run_id
    paused(client, str(run))  # development waits for its timebox: the machine is quiet again
    return resumed, next_task, kickoff


def anchor_sample(client: SyncPrefectClient) -> float:
    run = run_deployment(ANCHOR_DEPLOYMENT, timeout=0, as_subflow=False)
    run_id = str(run.id)  # type: ignore[union-attr]
    paused(client, run_id)
    started = time.time()
    client.resume_flow_run(UUID(run_id))
    return first_task_after(client, run_id, started)


def serve_anchor(world: Demo) -> subprocess.Popen[bytes]:
    """bench/bare_flow.py served from the repository, with the environment the phase flows get."""
    assert world.stack is not None
    log = (world.log_dir / "bench-anchor.log").open("ab")
    world.stack.callback(log.close)
    process = subprocess.Popen([sys.executable, "-m", "bench.bare_flow"], cwd=ROOT, env=world.stack.child_env(),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    world.stack.callback(stop_process, process)
    with get_client(sync_client=True) as client:
        def registered() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"serving the anchor flow failed (exit {process.returncode}); see {log.name}")
            try:
                client.read_deployment_by_name(ANCHOR_DEPLOYMENT)
                return True
            except ObjectNotFound:
                return False
        wait_for("the anchor deployment", registered, 90)
    return process


def line(name: str, values: list[float], anchor: float | None) -> str:
    median = statistics.median(values)
    ratio = f"{median / anchor:8.2f}" if anchor else f"{'(anchor)':>8}"
    return f"{name:<36} {median:7.2f} s {max(values):7.2f} s {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10, help="gates decided, and anchor resumes")
    parser.add_argument("--quick", action="store_true", help="1 sample (a smoke run)")
    parser.add_argument("--home", type=Path, help="the world's home, its logs kept there (default: a new temporary directory)")
    add_argument(parser)
    args = parser.parse_args()
    if args.quick:
        args.samples = 1
    run = Run("resume", quick=args.quick, results=args.results, sizes={"samples": args.samples})
    sandbox_world.console.quiet = True  # the demo's narration; this prints a table
    home = args.home or Path(tempfile.mkdtemp(prefix="phasegate-bench-"))
    settings = Settings(home=home, database_url="", watch_interval_seconds=86400)  # no watch nudges mid-sample
    template = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")
    load_before = os.getloadavg()
    with local_world(settings, files=[ENGAGEMENTS_DIR / "acme-churn.yaml"]) as world:
        world.metrics.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)
        serve_anchor(world)
        prepared = [prepared_gate(world, template, n) for n in range(args.samples)]
        anchors, resumes, next_tasks, kickoffs = [], [], [], []
        with get_client(sync_client=True) as client:
            for run_id, gate in prepared:
                anchors.append(anchor_sample(client))
                resumed, next_task, kickoff = phasegate_sample(world, client, run_id, gate)
                resumes.append(resumed)
                next_tasks.append(next_task)
                kickoffs.append(kickoff)
    load_after = os.getloadavg()
    anchor = statistics.median(anchors)
    print(f"B-RESUME, {args.samples} samples; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"({os.cpu_count()} CPUs)")
    print(f"{'':<36} {'median':>9} {'worst':>9} {'x anchor':>8}")
    print(line("bare suspend/resume: resume -> task", anchors, None))
    print(line("phasegate: click -> run resumed", resumes, anchor))
    print(line("phasegate: click -> next task", next_tasks, anchor))
    print(line("phasegate: click -> next kickoff", kickoffs, anchor))
    median = statistics.median(kickoffs)
    print(f"click -> next phase's kickoff: median {median:.2f} s, target < {TARGET:g} s   "
          f"{'ok' if median < TARGET else 'MISS'}")
    bare = "bare served suspend/resume: resume -> next task"
    run.figure("B-RESUME click -> run resumed (median)", round(statistics.median(resumes), 2), "s",
               anchor=(bare, round(anchor, 2)))
    run.figure("B-RESUME click -> next task (median)", round(statistics.median(next_tasks), 2), "s",
               anchor=(bare, round(anchor, 2)), note=f"worst {max(next_tasks):.2f} s")
    run.figure("B-RESUME click -> next phase's kickoff in Slack (median)", round(median, 2), "s",
               anchor=(bare, round(anchor, 2)), target=f"< {TARGET:g} s", met=median < TARGET,
               note=f"worst {max(kickoffs):.2f} s")
    run.write()


if __name__ == "__main__":
    main()

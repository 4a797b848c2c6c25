"""phasegate at scale, the way the README's "Running at scale" section sets it up: a Prefect server on
PostgreSQL, the deployments from prefect.yaml (`prefect deploy --all`) on a process work pool served by
two `prefect worker` processes, two `phasegate serve-slack` replicas on one PostgreSQL ledger, and
`phasegate crash-detection`. Every part is a real process; the worker executing a phase run is killed
mid-task, and the approvers click on both replicas at once."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from conftest import PG_ADMIN
from helpers import process_tree, wait_until, with_changes
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from sqlalchemy import create_engine, text

from phasegate.configs.loader import ENGAGEMENTS_DIR, engagement_files, load_engagement
from phasegate.configs.schema import Phase
from phasegate.gates import operations
from phasegate.ledger import audit, engagements, gates, phases
from phasegate.ledger.db import transaction, upgrade
from phasegate.ops.local import Stack, prefect_api, wait_healthy
from phasegate.ops.servers import free_port
from phasegate.orchestration.names import WATCH_DEPLOYMENT_NAME, WATCH_FLOW, WORK_POOL
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.sandbox.world import SECRET, Demo, world_settings
from phasegate.settings import Settings
from phasegate.states import AuditKind, Outcome, Via

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Cluster:
    demo: Demo
    stack: Stack
    replicas: list[str]
    workers: dict[str, subprocess.Popen[bytes]]  # by worker name


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str]]:
    """Fresh PostgreSQL databases for the Prefect server and for the ledger, dropped afterwards."""
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    names = [f"phasegate_scale_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("prefect", "ledger")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{names[0]}".replace("postgresql://", "postgresql+asyncpg://"), f"{base}/{names[1]}"
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def spawn(stack: Stack, name: str, args: list[str], **extra: str) -> subprocess.Popen[bytes]:
    """A child in its own session (so a kill takes its children too), logging to the stack's log dir."""
    log = (stack.log_dir / f"{name}.log").open("ab")
    stack.callback(log.close)
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=stack.child_env() | extra,
                               cwd=REPO, start_new_session=True)

    def stop() -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    stack.callback(stop)
    return process


def start_worker(stack: Stack, name: str) -> subprocess.Popen[bytes]:
    """`prefect worker start`, with the environment every part shares (PREFECT_FLOWS_HEARTBEAT_FREQUENCY too)."""
    return spawn(stack, name, [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--name", name],
                 PREFECT_WORKER_QUERY_SECONDS="1")


def crash_detection(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / "phasegate"), "crash-detection"], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done
    return done


def prefect_cli(stack: Stack, *args: str) -> str:
    done = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], env=stack.child_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def cluster(databases: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    prefect_db, ledger_url = databases
    home = tmp_path_factory.mktemp("scale")
    slack, metrics, cloud, dc = SlackStandin(), MetricsStandin(), JiraStandin("cloud"), JiraStandin("datacenter")
    for standin in (slack, metrics, cloud, dc):
        standin.start()
    cloud.add_project("ACME")
    settings = world_settings(Settings(home=home, database_url=ledger_url), slack, metrics, cloud, dc)
    upgrade(ledger_url)  # `phasegate db upgrade`, once
    try:
        with Stack(settings, prefect_home=home / "prefect") as stack:
            stack.api_url = f"http://127.0.0.1:{free_port()}/api"
            port = stack.api_url.split(":")[-1].removesuffix("/api")
            server = spawn(stack, "prefect-server",
                           [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port],
                           PREFECT_API_DATABASE_CONNECTION_URL=prefect_db,
                           PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false")  # no hourly/interval runs mid-test
            wait_healthy(stack.api_url + "/health", 120, server)
            stack.enter_context(prefect_api(stack.api_url))
            prefect_cli(stack, "work-pool", "create", WORK_POOL, "--type", "process")
            prefect_cli(stack, "deploy", "--all")
            installed = crash_detection(stack.child_env())
            assert installed.stdout.startswith("installed:") and installed.stderr == "", installed
            # once per server; a shell without the heartbeat setting is warned that its runs would look dead
            again = crash_detection({k: v for k, v in stack.child_env().items() if "HEARTBEAT" not in k})
            assert again.stdout.startswith("already installed:") and "would be marked Crashed" in again.stderr
            workers = {name: start_worker(stack, name) for name in ("worker-1", "worker-2")}
            replicas = []
            for i in (1, 2):
                replica_port = free_port()
                process = spawn(stack, f"replica-{i}", [str(BIN / "phasegate"), "serve-slack", "--port",
                                                        str(replica_port)])
                replicas.append(f"http://127.0.0.1:{replica_port}")
                wait_healthy(replicas[-1] + "/readyz", 30, process)
            rt = Runtime(settings)
            stack.callback(rt.close)
            with transaction(rt.sessions) as session:
                for path in engagement_files():
                    engagements.register(session, load_engagement(path))
            yield Cluster(Demo(rt, slack, cloud, dc, metrics, replicas[0], stack.api_url, stack.log_dir),
                          stack, replicas, workers)
    finally:
        for standin in (slack, metrics, cloud, dc):
            standin.stop()


def runs_named(prefix: str) -> dict[str, tuple[str, UUID]]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=prefix)))
    return {r.name: (r.state.type.value if r.state else "", r.id) for r in runs}


def state_of(run_id: UUID | str) -> str:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(str(run_id))).state
    return state.type.value if state else ""


def worker_of(run_id: UUID | str) -> str:
    """The worker that last took the run from the pool, as Prefect labels the run."""
    with get_client(sync_client=True) as client:
        return str(client.read_flow_run(UUID(str(run_id))).labels.get("prefect.worker.name", ""))


def flow_run_processes(run_id: str) -> set[int]:
    """The processes executing a flow run: the worker starts them with PREFECT__FLOW_RUN_ID set."""
    marker, found = f"PREFECT__FLOW_RUN_ID={run_id}".encode(), set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if marker in environ.read_bytes().split(b"\0"):
                found.add(int(environ.parent.name))
    return found


def resumes(run_id: UUID) -> int:
    with get_client(sync_client=True) as client:
        return sum(s.name == "Resuming" for s in client.read_flow_run_states(run_id))


def test_deployments_from_prefect_yaml_are_on_the_work_pool(cluster: Cluster) -> None:
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments()
    assert {(d.name, d.work_pool_name, d.entrypoint) for d in deployments} == {
        ("engagement", WORK_POOL, "phasegate.flows.phases.run_phase"), ("scheduled", WORK_POOL, "phasegate.flows.gate_watch.gate_watch"),
        ("request", WORK_POOL, "phasegate.flows.change_request.run_change_request"),
        ("hourly", WORK_POOL, "phasegate.flows.weekly_status.weekly_status")}
    for replica in cluster.replicas:
        assert httpx.get(replica + "/readyz").json() == {"status": "ready"}


def kill_the_worker_running(cluster: Cluster, run_id: str) -> str:
    """SIGKILL the worker whose process tree holds the flow run's process, with all it started (the
    flow run has a session of its own, so its process group alone would not take it); the survivor's name."""
    running = flow_run_processes(run_id)
    holders = [name for name, worker in cluster.workers.items() if running & set(process_tree(worker.pid))]
    assert holders == [worker_of(run_id)]  # /proc and Prefect agree on which worker runs it
    killed = cluster.workers.pop(holders[0])
    for pid in process_tree(killed.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed.wait()
    wait_until(lambda: not flow_run_processes(run_id), timeout=10, what="the flow-run process to be gone")
    [survivor] = cluster.workers
    return survivor


def one_scheduled_watch_pass() -> str:
    """What the gate watch's schedule does every 300 s (the scheduler is off in this test): a run of
    the `scheduled` deployment, on whichever worker polls the pool; the worker that ran it."""
    watch = run_deployment(f"{WATCH_FLOW}/{WATCH_DEPLOYMENT_NAME}", timeout=0, as_subflow=False)
    assert isinstance(watch, FlowRun)
    wait_until(lambda: state_of(watch.id) == "COMPLETED", timeout=120, what="the gate watch run", interval=0.5)
    return worker_of(watch.id)


def kickoffs(world: Demo) -> int:
    return sum("started for *ACME churn prediction*" in m.text for m in world.slack.messages("C0ACMECHURN")
               if m.thread_ts is None)


def test_a_worker_killed_mid_run_then_clicks_on_both_replicas_one_decision_each_one_resume(cluster: Cluster) -> None:
    world, e = cluster.demo, "acme-scale"
    # acme-churn's dates lie in the past, so its gate would open at once on evidence not yet done
    # (and GO would need a waiver); a copy starting today waits for the review asked for below
    copy = with_changes(load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml"), id=e, start_date=dt.date.today())
    with transaction(world.rt.sessions) as session:
        engagements.register(session, copy)
    jira = world.jira[e] = world.jira["acme-churn"]
    seen = len(jira.requests)
    jira.latency = 60.0  # the PoC run hangs in its first Jira call (linking milestones), after its kickoff
    first = operations.start_phase(world.rt, e, Phase.POC, "U0PMACME01")

    def mid_task() -> bool:
        with transaction(world.rt.sessions) as session:
            run = phases.find_phase_run(session, e, Phase.POC)
            kicked_off = run is not None and run.kickoff_ts is not None
        return kicked_off and len(jira.requests) > seen and state_of(first) == "RUNNING"
    wait_until(mid_task, timeout=90, what="the PoC run to wait on Jira", interval=0.2)
    survivor = kill_the_worker_running(cluster, first)  # the fault: a worker (its machine) gone mid-run
    jira.latency = 0.0
    assert state_of(first) == "RUNNING"  # no one is left to tell Prefect otherwise

    wait_until(lambda: state_of(first) == "CRASHED", timeout=240, what="Prefect to mark the silent run crashed",
               interval=2)  # the automation `phasegate crash-detection` installed, after 2.5 missed heartbeats
    assert one_scheduled_watch_pass() == survivor
    with transaction(world.rt.sessions) as session:
        replacement = phases.phase_run(session, e, Phase.POC).flow_run_id
        lost = [(ev.subject, ev.payload["health"]) for ev in audit.events(session, e, AuditKind.RUN_LOST)]
        restarted = [(ev.payload["old"], ev.payload["new"]) for ev in audit.events(session, e, AuditKind.RUN_RESTARTED)]
    assert replacement is not None and replacement != first
    assert lost == [(first, "crashed")] and restarted == [(first, replacement)]

    world.finish_jira_work(e, Phase.POC)  # the milestones the replacement run linked
    world.metrics.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)  # every exit criterion passes
    world.review(e)
    g1 = world.open_gate(e, Phase.POC)
    assert g1.message_ts is not None and g1.flow_run_id == replacement
    with transaction(world.rt.sessions) as session:
        assert gates.snapshot_of(session, g1).unmet == [], "a GO click would need a waiver"
        assert len(gates.open_gates(session, e)) == 1
    poc_run = UUID(g1.flow_run_id)
    wait_until(lambda: state_of(poc_run) == "PAUSED", timeout=60, what="the PoC run to suspend at G1", interval=0.5)
    assert worker_of(poc_run) == survivor and state_of(first) == "CRASHED"
    assert kickoffs(world) == 1  # the replacement found the kickoff in the ledger
    told = [m.text for m in world.slack.messages("C0ACMECHURN") if f"The {e} poc flow run is crashed" in m.text]
    assert len(told) == 1 and "no heartbeat" in told[0] and f"started flow run {replacement}" in told[0]
    resumed_before = resumes(poc_run)

    # a fresh worker for the lost one; then the survivor is killed while the run waits at G1, which
    # loses nothing (a suspended run has no process): the resumed run goes to the fresh worker
    cluster.workers["worker-3"] = start_worker(cluster.stack, "worker-3")
    waiting = cluster.workers.pop(survivor)
    os.killpg(waiting.pid, signal.SIGKILL)
    waiting.wait()

    sponsor = [SlackUser("U0SPONSOR1", endpoint=r, signing_secret=SECRET, slack=world.slack) for r in cluster.replicas]
    lead = [SlackUser("U0VENDLEAD", endpoint=r, signing_secret=SECRET, slack=world.slack) for r in cluster.replicas]
    same_click = sponsor[0].click_payload(g1.id, Outcome.GO, g1.channel, g1.message_ts)  # delivered to both
    sends = [(sponsor[0], same_click), (sponsor[1], same_click)]
    sends += [(lead[i], lead[i].click_payload(g1.id, Outcome.GO, g1.channel, g1.message_ts)) for i in (0, 1)]
    barrier, statuses = threading.Barrier(len(sends)), []

    def send(user: SlackUser, payload: dict[str, object]) -> None:
        barrier.wait()
        statuses.append(user.send(payload).status_code)

    threads = [threading.Thread(target=send, args=pair) for pair in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    assert world.decided(g1).outcome is Outcome.GO
    with transaction(world.rt.sessions) as session:
        answers = sorted((d.approver, d.outcome, d.via) for d in gates.decisions(session, g1.id))
    assert answers == [("U0SPONSOR1", Outcome.GO, Via.SLACK), ("U0VENDLEAD", Outcome.GO, Via.SLACK)]

    world.wait_phase_run(e, Phase.DEVELOPMENT)  # the surviving worker ran the resumed PoC run, which carried on
    wait_until(lambda: state_of(poc_run) == "PAUSED", timeout=90,
               what="the run to wait for development's timebox", interval=0.5)
    assert resumes(poc_run) - resumed_before == 1
    assert list(runs_named(f"{e}-")) == [f"{e}-poc"]  # no second deployment run for development
    with transaction(world.rt.sessions) as session:
        development = phases.phase_run(session, e, Phase.DEVELOPMENT)
        assert development.kickoff_ts is not None and development.flow_run_id == str(poc_run)
    assert kickoffs(world) == 2  # the PoC and the development kickoff, once each

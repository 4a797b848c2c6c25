"""`phasegate up` as its user runs it: the console script in a process of its own, against the Slack,
Jira and metric stand-ins, with its children (and itself) killed for real.

- its ports taken by something else: it refuses to start, in one line naming the holder;
- its Prefect server SIGKILLed: it starts it again, the approvers who decide meanwhile are told the
  decision is recorded and acted on when the orchestrator is back, and the run goes on as soon as the
  API answers (the gate watch runs once a day here, so it is not the watch that wakes it);
- itself SIGKILLed: its Prefect server and runner go with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
from helpers import process_tree, wait_until
from prefect.client.orchestration import get_client
from prefect_seed import seed
from pydantic import SecretStr

from phasegate.configs.schema import Phase
from phasegate.gates import operations
from phasegate.ledger import engagements, gates, phases
from phasegate.ledger.db import transaction
from phasegate.ops.local import prefect_api
from phasegate.ops.readiness import prefect_problem
from phasegate.ops.servers import free_port
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.world import Demo, demo_engagements, seed_jira, world_settings
from phasegate.settings import Settings
from phasegate.states import GateState, Outcome

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PHASEGATE = Path(sys.executable).parent / "phasegate"
TOLD = "Recorded; the next step starts when the orchestrator is back."


def up_env(settings: Settings) -> dict[str, str]:
    """The environment a user's shell gives `phasegate up`: no Prefect profile or API URL of the
    test run's, the settings as PHASEGATE_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHASEGATE_", "PREFECT_"))}
    seed(settings.home / "prefect")  # its Prefect server starts from a migrated database (tests/prefect_seed.py)
    return env | settings.as_env() | {"PREFECT_HOME": str(settings.home / "prefect"), "PYTHONUNBUFFERED": "1",
                                      "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "200"}


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    out: Path
    settings: Settings

    @property
    def api(self) -> str:
        return self.settings.prefect_api_url

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"`phasegate up` exited with {self.process.returncode}:\n{self.output()}")
        return "Ctrl-C stops everything." in self.output()

    def child(self, *words: str) -> int:
        """The pid of up's child whose command line has all `words`."""
        for pid in process_tree(self.process.pid)[1:]:
            if all(word in command_line(pid) for word in words):
                return pid
        raise AssertionError(f"no child of `phasegate up` runs {' '.join(words)}")


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent (in a container, pid 1 may never reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_up(settings: Settings) -> Up:
    """`phasegate up`, once it says it is ready; its console (stdout and stderr) in <home>/up.out."""
    out = settings.home / "up.out"
    with out.open("wb") as sink:
        process = subprocess.Popen([str(PHASEGATE), "up"], env=up_env(settings), stdout=sink,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    up = Up(process, out, settings)
    try:
        wait_until(up.ready, timeout=240, what="`phasegate up` to start", interval=0.5)
    except BaseException:
        process.kill()
        raise
    return up


@dataclass
class World:
    up: Up
    demo: Demo


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("up")
    slack, metrics, jira = SlackStandin(), MetricsStandin(), JiraStandin("cloud")
    for standin in (slack, metrics, jira):
        standin.start()
    acme = demo_engagements()["acme-churn"]  # its PoC timebox open today: G1 opens at the review, on the work done
    seed_jira(jira, acme)
    metrics.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)
    base = Settings(home=home, database_url="", watch_interval_seconds=86400, evidence_retry_seconds=0)
    settings = world_settings(base, slack, metrics, jira, jira, {acme.jira.url: jira.url}).model_copy(
        update={"slack_port": free_port(), "prefect_port": free_port()})
    up = start_up(settings)
    process = up.process
    rt = Runtime(settings)
    try:
        with transaction(rt.sessions) as session:
            engagements.register(session, acme)
        endpoint = f"http://{settings.slack_host}:{settings.slack_port}"
        demo = Demo(rt, slack, jira, jira, metrics, endpoint, up.api, home / "logs")
        with prefect_api(up.api):
            yield World(up, demo)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(60)
        rt.close()
        for standin in (slack, metrics, jira):
            standin.stop()


def paused(run_id: str) -> bool:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    return state is not None and state.is_paused()


def development_kicked_off(world: World) -> bool:
    with transaction(world.demo.rt.sessions) as session:
        run = phases.find_phase_run(session, "acme-churn", Phase.DEVELOPMENT)
        return run is not None and run.kickoff_ts is not None


def test_ports_taken_by_something_else_are_refused_in_one_line(tmp_path: Path) -> None:
    """Before anything starts, so that no Prefect server or runner of this `up` is left running."""
    for what, setting in (("the Slack endpoint", "slack_port"), ("the Prefect server", "prefect_port")):
        home = tmp_path / setting
        home.mkdir()
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            port = held.getsockname()[1]
            settings = Settings(home=home, slack_signing_secret=SecretStr("s"), slack_port=free_port(),
                                prefect_port=free_port()).model_copy(update={setting: port})
            result = subprocess.run([str(PHASEGATE), "up"], env=up_env(settings), capture_output=True, text=True,
                                    timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 1, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(f"phasegate: port {port}, where `phasegate up` runs {what}, is taken by "
                                   f"pid {os.getpid()} (")
        assert lines[0].endswith(f"stop that process or set PHASEGATE_{setting.upper()} to a free port")
        assert not (home / "logs" / "prefect-server.log").exists()  # nothing was started


def test_a_prefect_server_killed_under_up_comes_back_and_a_decision_taken_meanwhile_is_acted_on(
        world: World) -> None:
    demo, up = world.demo, world.up
    run_id = operations.start_phase(demo.rt, "acme-churn", Phase.POC, "U0PMACME01")
    demo.wait_phase_run("acme-churn", Phase.POC)
    demo.finish_jira_work("acme-churn", Phase.POC)
    demo.review("acme-churn")
    gate = demo.open_gate("acme-churn", Phase.POC)
    wait_until(lambda: paused(run_id), timeout=60, what="the PoC run to pause on G1", interval=0.3)

    os.kill(up.child("prefect", "server", "start"), signal.SIGKILL)
    wait_until(lambda: prefect_problem(up.api) is not None, what="the Prefect API to stop answering")
    demo.click(gate, "U0SPONSOR1", Outcome.GO)
    demo.click(gate, "U0VENDLEAD", Outcome.GO)

    said = lambda: [r.get("text") for r in demo.slack.responses] + [e.get("text") for e in demo.slack.ephemeral]  # noqa: E731
    wait_until(lambda: TOLD in said(), timeout=30, what="the approver to be told when the next step starts")
    with transaction(demo.rt.sessions) as session:
        assert gates.by_id(session, gate.id).state is GateState.DECIDED
    try:
        wait_until(lambda: development_kicked_off(world), timeout=240, interval=0.5,
                   what="the PoC run to be woken and carry out the GO")
    except AssertionError as exc:  # what `up` and its children said, to see which step did not come
        logs = up.settings.home / "logs"
        said = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}"
                         for log in sorted(logs.glob("*.log")) if log.name != "prefect-server.log")
        raise AssertionError(f"{exc}\n--- up\n{up.output()}\n{said}") from None
    output = up.output()
    assert "the Prefect server was killed by SIGKILL; starting it again" in output
    assert f"woke 1 flow run(s): {run_id}" in output  # the catch-up's one summary line


def test_up_killed_takes_its_prefect_server_and_runner_with_it(world: World) -> None:
    up = world.up
    children = process_tree(up.process.pid)[1:]
    assert up.child("prefect", "server", "start") in children and up.child("phasegate.ops.serve_flows") in children

    os.kill(up.process.pid, signal.SIGKILL)
    up.process.wait()

    wait_until(lambda: not any(alive(pid) for pid in children), timeout=60, interval=0.2,
               what=f"up's children {[(pid, command_line(pid)) for pid in children if alive(pid)]} to end")
    settings = up.settings
    assert is_free(settings.slack_host, settings.slack_port) and is_free("127.0.0.1", settings.prefect_port)


def test_a_prefect_server_that_keeps_dying_makes_up_stop_loudly(tmp_path: Path) -> None:
    """Restarted three times within ten minutes, then `up` stops everything and says why in one line."""
    settings = Settings(home=tmp_path, slack_signing_secret=SecretStr("s"), slack_port=free_port(),
                        prefect_port=free_port())
    up = start_up(settings)
    children = process_tree(up.process.pid)[1:]
    killed: set[int] = set()

    def kill_the_server() -> bool:
        """Each new server as soon as it shows; True once `up` has exited."""
        for pid in process_tree(up.process.pid)[1:]:
            if pid not in killed and "prefect server start" in command_line(pid):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                children.append(pid)
        return up.process.poll() is not None
    try:
        wait_until(kill_the_server, timeout=120, interval=0.05, what="`up` to give up")
    finally:
        if up.process.poll() is None:
            up.process.send_signal(signal.SIGINT)
            up.process.wait(60)

    assert up.process.returncode == 1 and len(killed) == 4
    lines = up.output().strip().splitlines()
    assert lines[-1] == (f"phasegate: the Prefect server was killed by SIGKILL, after 3 restarts within 10 minutes; "
                         f"`phasegate up` stopped everything (see {tmp_path / 'logs' / 'prefect-server.log'})")
    assert "Traceback" not in up.output()
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=60, what="up's children to end")

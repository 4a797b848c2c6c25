"""Serve the phase flow (and the gate watch, the change-request flow and the weekly status) to the Prefect API in
PREFECT_API_URL until Ctrl-C.

With `--die-with-parent` (how `phasegate up` starts it) the runner also ends when its parent does,
even one killed with SIGKILL, and takes the flow-run processes it started with it: the kernel's
SIGTERM (phasegate/ops/local.py's launcher) alone is not enough, as Prefect's graceful shutdown then
waits on a Prefect server that died with the parent.

Each flow run (a start, and every resume of a suspended one) is a process of its own. Prefect starts
it with multiprocessing's "spawn", a new interpreter that imports Prefect and the flows again (about
2 s of CPU before the run's first step); where the platform has it, the runner instead forks each
run from a forkserver that imported them once, when the runner started (`warm_flow_runs`).
"""

from __future__ import annotations

import asyncio
import copyreg
import importlib
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import prefect.flow_engine
from prefect.exceptions import TerminationSignal
from prefect.flows import Flow
from prefect.runner import Runner

from phasegate.flows.change_request import run_change_request
from phasegate.flows.gate_watch import gate_watch
from phasegate.flows.phases import run_phase
from phasegate.flows.weekly_status import weekly_status
from phasegate.orchestration.names import (
    CR_DEPLOYMENT_NAME,
    PHASE_DEPLOYMENT_NAME,
    WATCH_DEPLOYMENT_NAME,
    WEEKLY_CRON,
    WEEKLY_DEPLOYMENT_NAME,
)
from phasegate.settings import Settings


def parent_of(pid: int) -> int:
    """The parent process id of `pid`, from /proc (Linux); OSError if it is gone."""
    return _ppid(Path(f"/proc/{pid}/stat").read_text())


def _ppid(stat: str) -> int:
    return int(stat.rsplit(")", 1)[1].split()[1])  # after the command name, which may hold spaces


def descendants(pid: int) -> list[int]:
    """The processes below `pid`, from /proc (Linux; none elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = _ppid(stat.read_text())
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def die_with_parent(poll: float = 0.5) -> None:
    """End this runner, and every process it started, as soon as its parent is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


# What a flow run imports before its first step, imported once by the forkserver.
PRELOAD = ["prefect.flow_engine", "prefect.engine", "phasegate.flows.phases", "phasegate.flows.gate_watch",
           "phasegate.flows.change_request", "phasegate.flows.weekly_status"]


def served_flow(module: str, name: str) -> Flow[Any, Any]:
    """A served flow in its flow-run process, found by its module and name."""
    flow: Flow[Any, Any] = getattr(importlib.import_module(module), name)
    return flow


def send_by_name(flows: Sequence[Flow[Any, Any]]) -> None:
    """Send these flows to their runs' processes by name, as `python -m prefect.engine` finds a
    deployment's flow. Prefect sends a run its flow with cloudpickle, and a module's function wrapped
    by `@flow` goes by value: a copy that keeps only the globals its code names, so the types its
    annotations name are gone (pydantic cannot validate the parameters) and the module's own state
    is a copy beside the real one."""
    named = {id(flow): (flow.fn.__module__, flow.fn.__name__) for flow in flows}

    def reduce(flow: Flow[Any, Any]) -> str | tuple[Any, ...]:
        found = named.get(id(flow))
        return (served_flow, found) if found is not None else flow.__reduce_ex__(pickle.DEFAULT_PROTOCOL)

    copyreg.pickle(Flow, reduce)


class _WarmContexts:
    """`multiprocessing` as `prefect.flow_engine` sees it: the "spawn" context it asks for, to start a
    flow run in a process of its own, is the warm forkserver. A forkserver child starts as a spawned
    one does (its arguments and environment are sent to it, not inherited from the runner: Prefect
    sets the run's environment in the child), only without importing everything again."""

    def __init__(self, warm: multiprocessing.context.BaseContext) -> None:
        self._warm = warm

    def get_context(self, method: str | None = None) -> multiprocessing.context.BaseContext:
        return self._warm if method == "spawn" else multiprocessing.get_context(method)

    def __getattr__(self, name: str) -> object:
        return getattr(multiprocessing, name)


def warm_flow_runs() -> None:
    """Start flow runs by forking them from a forkserver that has imported Prefect's engine and the
    flows (`PRELOAD`), started now, while the runner starts; nothing changes where the platform has
    no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    warm = multiprocessing.get_context("forkserver")
    warm.set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()
    prefect.flow_engine.multiprocessing = _WarmContexts(warm)  # type: ignore[assignment,attr-defined]


def main() -> None:
    if "--die-with-parent" in sys.argv[1:]:
        die_with_parent()
    settings = Settings()
    runner = Runner(pause_on_shutdown=True)
    send_by_name([run_phase, gate_watch, run_change_request, weekly_status])
    # Added as flows, not as deployments: the runner then starts each run from the flow it holds
    # (`run_flow_in_subprocess`, which `warm_flow_runs` forks) instead of `python -m prefect.engine`.
    runner.add_flow(run_phase, name=PHASE_DEPLOYMENT_NAME)
    runner.add_flow(gate_watch, name=WATCH_DEPLOYMENT_NAME, interval=settings.watch_interval_seconds)
    runner.add_flow(run_change_request, name=CR_DEPLOYMENT_NAME)
    runner.add_flow(weekly_status, name=WEEKLY_DEPLOYMENT_NAME, cron=WEEKLY_CRON)
    warm_flow_runs()
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        pass  # Ctrl-C or SIGTERM: the runner has shut down


if __name__ == "__main__":
    main()

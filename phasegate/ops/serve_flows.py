"""Serve the phase flow (and the gate watch and the change-request flow) to the Prefect API in PREFECT_API_URL until Ctrl-C.

With `--die-with-parent` (how `phasegate up` starts it) the runner also ends when its parent does,
even one killed with SIGKILL, and takes the flow-run processes it started with it: the kernel's
SIGTERM (phasegate/ops/local.py's launcher) alone is not enough, as Prefect's graceful shutdown then
waits on a Prefect server that died with the parent.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from phasegate.errors import InternalError
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


def descendants(pid: int) -> list[int]:
    """The processes below `pid`, from /proc (Linux; none elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
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


def main() -> None:
    if "--die-with-parent" in sys.argv[1:]:
        die_with_parent()
    settings = Settings()
    phases = run_phase.to_deployment(name=PHASE_DEPLOYMENT_NAME)
    watch = gate_watch.to_deployment(name=WATCH_DEPLOYMENT_NAME, interval=settings.watch_interval_seconds)
    changes = run_change_request.to_deployment(name=CR_DEPLOYMENT_NAME)
    weekly = weekly_status.to_deployment(name=WEEKLY_DEPLOYMENT_NAME, cron=WEEKLY_CRON)
    deployments = (phases, watch, changes, weekly)
    if not all(isinstance(d, RunnerDeployment) for d in deployments):  # sync context
        raise InternalError("to_deployment returned a coroutine; serve_flows must run outside an event loop")
    serve(*deployments, print_starting_message=False)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

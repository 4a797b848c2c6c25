"""Serve the phase flow (and the gate watch and the change-request flow) to the Prefect API in PREFECT_API_URL until Ctrl-C."""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.change_request import run_change_request
from flows.gate_watch import gate_watch
from flows.phases import run_phase
from flows.weekly_status import weekly_status
from phasegate.deployments import (
    CR_DEPLOYMENT_NAME,
    PHASE_DEPLOYMENT_NAME,
    WATCH_DEPLOYMENT_NAME,
    WEEKLY_CRON,
    WEEKLY_DEPLOYMENT_NAME,
)
from phasegate.errors import InternalError
from phasegate.settings import Settings


def main() -> None:
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

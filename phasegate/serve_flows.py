"""Serve the phase flow (and the gate watch) to the Prefect API in PREFECT_API_URL until Ctrl-C."""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.gate_watch import gate_watch
from flows.phases import run_phase
from flows.weekly_status import weekly_status
from phasegate.deployments import PHASE_DEPLOYMENT_NAME, WATCH_DEPLOYMENT_NAME, WEEKLY_CRON, WEEKLY_DEPLOYMENT_NAME
from phasegate.settings import Settings


def main() -> None:
    settings = Settings()
    phases = run_phase.to_deployment(name=PHASE_DEPLOYMENT_NAME)
    watch = gate_watch.to_deployment(name=WATCH_DEPLOYMENT_NAME, interval=settings.watch_interval_seconds)
    weekly = weekly_status.to_deployment(name=WEEKLY_DEPLOYMENT_NAME, cron=WEEKLY_CRON)
    assert isinstance(phases, RunnerDeployment) and isinstance(watch, RunnerDeployment)  # sync context
    assert isinstance(weekly, RunnerDeployment)
    serve(phases, watch, weekly, print_starting_message=False)


if __name__ == "__main__":
    main()

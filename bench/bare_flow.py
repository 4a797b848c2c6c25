"""B-RESUME's anchor: the least a served Prefect flow does between a resume and its next task.

    .venv/bin/python -m bench.bare_flow      # serves it (bench.resume starts this as a child process)

The flow suspends at once (no process held, as phasegate's phase flow does at a gate); on resume
Prefect re-runs it from the top, the repeated suspend with the same key returns at once, and the
next task starts. Served by `serve`, the same kind of runner as `phasegate up`, with the same poll
interval (the child gets the environment the phase flows get).
"""

from __future__ import annotations

from prefect import flow, serve, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments.runner import RunnerDeployment
from prefect.flow_runs import suspend_flow_run

FLOW_NAME, DEPLOYMENT_NAME = "bench-bare-resume", "anchor"
DEPLOYMENT = f"{FLOW_NAME}/{DEPLOYMENT_NAME}"


@task(cache_policy=NO_CACHE)
def after_resume() -> None:
    """The next task: its start time is what the anchor measures."""


@flow(name=FLOW_NAME)
def bare_resume() -> None:
    suspend_flow_run(key="wait", timeout=None)
    after_resume()


def main() -> None:
    deployment = bare_resume.to_deployment(name=DEPLOYMENT_NAME)
    if not isinstance(deployment, RunnerDeployment):
        raise SystemExit("to_deployment returned a coroutine; run this outside an event loop")
    serve(deployment, print_starting_message=False)


if __name__ == "__main__":
    main()

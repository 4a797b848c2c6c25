"""Serve the phase flow (and the gate watch) to the Prefect API in PREFECT_API_URL until Ctrl-C."""

from __future__ import annotations

from prefect import serve

from flows.phases import DEPLOYMENT_NAME, run_phase


def main() -> None:
    serve(run_phase.to_deployment(name=DEPLOYMENT_NAME), print_starting_message=False)


if __name__ == "__main__":
    main()

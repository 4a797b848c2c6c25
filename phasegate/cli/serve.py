"""The commands for running the parts separately (docs/operations.md, "Running at scale"): `phasegate
serve-slack`, the Slack endpoint alone, for replicas behind a load balancer; and `phasegate
crash-detection`, the Prefect automation that `phasegate up` installs itself."""

from __future__ import annotations

from typing import Annotated

import typer

from phasegate.cli.base import err, fail, out


def serve_slack(host: Annotated[str | None, typer.Option(help="Address to listen on (default: PHASEGATE_SLACK_HOST).")]
                = None,
                port: Annotated[int | None, typer.Option(help="Port (default: PHASEGATE_SLACK_PORT).")] = None) -> None:
    """Run only the Slack endpoint (and Socket Mode, with PHASEGATE_SLACK_APP_TOKEN); /healthz and /readyz."""
    from phasegate.errors import EXPECTED
    from phasegate.ops.stack import run_serve_slack
    from phasegate.settings import Settings

    settings = Settings()
    try:
        run_serve_slack(settings, host or settings.slack_host, settings.slack_port if port is None else port)
    except EXPECTED as exc:
        fail(str(exc))


def crash_detection() -> None:
    """Install, once per Prefect server, the automation that marks a flow run Crashed when its
    heartbeats stop (its worker was killed); the gate watch then replaces the run."""
    from prefect.settings import get_current_settings

    from phasegate.ops.crash_detection import NAME, ensure_crash_detection, silence_allowed
    from phasegate.ops.local import cli_prefect_api
    from phasegate.orchestration.runs import PREFECT_DOWN, unavailable
    from phasegate.settings import Settings

    settings = Settings()
    beat, silence = settings.heartbeat_seconds, silence_allowed(settings.heartbeat_seconds).seconds
    try:
        with cli_prefect_api(settings):
            installed = ensure_crash_detection(beat)
            prefect_beat = get_current_settings().flows.heartbeat_frequency
    except PREFECT_DOWN as exc:
        fail(str(unavailable("install the crash-detection automation", exc)))
        return
    out.print(f'{"installed" if installed else "already installed"}: "{NAME}" (a flow run silent for {silence} s '
              f"is marked Crashed); run every worker with PREFECT_FLOWS_HEARTBEAT_FREQUENCY={beat}",
              markup=False, highlight=False)
    if prefect_beat is None or prefect_beat > beat:
        err.print(f"warning: PREFECT_FLOWS_HEARTBEAT_FREQUENCY is {prefect_beat} here: flow runs started with "
                  f"this environment beat less often than every {beat} s and would be marked Crashed while alive",
                  markup=False, highlight=False)

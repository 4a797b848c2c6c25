"""`phasegate serve-slack`: the Slack endpoint alone, for replicas behind a load balancer."""

from __future__ import annotations

from typing import Annotated

import typer

from phasegate.cli_base import fail


def serve_slack(host: Annotated[str | None, typer.Option(help="Address to listen on (default: PHASEGATE_SLACK_HOST).")]
                = None,
                port: Annotated[int | None, typer.Option(help="Port (default: PHASEGATE_SLACK_PORT).")] = None) -> None:
    """Run only the Slack endpoint (and Socket Mode, with PHASEGATE_SLACK_APP_TOKEN); /healthz and /readyz."""
    from phasegate.errors import EXPECTED
    from phasegate.settings import Settings
    from phasegate.stack import run_serve_slack

    settings = Settings()
    try:
        run_serve_slack(settings, host or settings.slack_host, settings.slack_port if port is None else port)
    except EXPECTED as exc:
        fail(str(exc))

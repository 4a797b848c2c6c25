"""`phasegate up`: everything on one machine until Ctrl-C."""

from __future__ import annotations

import threading

from rich.console import Console

from phasegate.errors import ConfigError
from phasegate.ledger.db import ENDPOINT_TIMEOUT, make_engine, sessions, upgrade
from phasegate.local import Stack, configured_prefect_api
from phasegate.resume import resume_when_paused
from phasegate.runtime import Runtime
from phasegate.servers import ServerHandle
from phasegate.settings import Settings
from phasegate.slack_app import SlackDeps, create_app


def signing_secret(settings: Settings) -> str:
    secret = settings.slack_signing_secret.get_secret_value()
    if not secret:
        raise ConfigError(["PHASEGATE_SLACK_SIGNING_SECRET is not set: the Slack endpoint cannot verify requests"])
    return secret


def start_endpoint(stack: Stack, rt: Runtime) -> ServerHandle:
    secret = signing_secret(rt.settings)
    engine = make_engine(rt.settings.ledger_url, timeout=ENDPOINT_TIMEOUT)  # every call under Slack's 3 s
    stack.callback(engine.dispose)
    deps = SlackDeps(signing_secret=secret, sessions=sessions(engine), chat=rt.chat, resume=resume_when_paused)
    return stack.slack_endpoint(create_app(deps), rt.settings.slack_host, rt.settings.slack_port)


def run_up(settings: Settings) -> None:
    console = Console()
    signing_secret(settings)  # before starting anything
    upgrade(settings.ledger_url)
    rt = Runtime(settings)
    with Stack(settings) as stack:
        stack.callback(rt.close)
        with console.status("starting the Prefect server, the flows and the Slack endpoint"):
            api = stack.prefect_server(configured_prefect_api())
            stack.flows()
            endpoint = start_endpoint(stack, rt)
        console.print(f"Prefect UI      {api.removesuffix('/api')}")
        console.print(f"Slack endpoint  {endpoint.url}/slack/interactions")
        console.print(f"ledger          {settings.ledger_url}")
        console.print(f"logs            {stack.log_dir}")
        console.print("Ctrl-C stops everything.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("stopping")

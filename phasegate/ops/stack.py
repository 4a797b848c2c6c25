"""`phasegate up`: everything on one machine until Ctrl-C."""

from __future__ import annotations

import datetime as dt
import gc
import time
from collections.abc import Callable

from rich.console import Console
from sqlalchemy import Engine

from phasegate.errors import ConfigError
from phasegate.integrations.slack_chat import SlackChat
from phasegate.ledger.db import CLICK_PATIENCE, ENDPOINT_TIMEOUT, make_engine, sessions, upgrade
from phasegate.ops.local import Stack, configured_prefect_api, prefect_api
from phasegate.ops.ports import require_free
from phasegate.ops.readiness import add_readiness
from phasegate.ops.servers import ServerHandle
from phasegate.ops.supervise import Supervisor, catch_up_lines, how_it_ended
from phasegate.orchestration.runs import PrefectRuns
from phasegate.orchestration.runtime import Runtime
from phasegate.settings import Settings
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps

REFRESHER_PAUSE = 5.0  # seconds before `serve-slack` starts an exited refresher again
SANDBOX_HINT = "to try an engagement without Slack or Jira accounts, run `phasegate sandbox FILE`"


def signing_secret(settings: Settings) -> str:
    secret = settings.slack_signing_secret.get_secret_value()
    if not secret:
        raise ConfigError([f"PHASEGATE_SLACK_SIGNING_SECRET is not set: the Slack endpoint cannot verify requests "
                           f"(the Slack app's Basic Information page shows it); {SANDBOX_HINT}"])
    return secret


def missing_credentials(settings: Settings) -> list[str]:
    """Credentials `up` can start without, but whose absence fails the first flow run that needs them."""
    missing = []
    if not settings.slack_bot_token.get_secret_value():
        missing.append("PHASEGATE_SLACK_BOT_TOKEN is not set: kickoffs and gate prompts cannot be posted")
    cloud = settings.jira_email and settings.jira_api_token and settings.jira_api_token.get_secret_value()
    if not cloud and not (settings.jira_pat and settings.jira_pat.get_secret_value()):
        missing.append("no Jira credentials: set PHASEGATE_JIRA_EMAIL and PHASEGATE_JIRA_API_TOKEN (Cloud) or "
                       "PHASEGATE_JIRA_PAT (Data Center); milestones cannot be linked or checked")
    return missing


def endpoint_deps(url: str, secret: str, chat: SlackChat, resume: Callable[[str], object], *,
                  audit_key: bytes | None = None, refresh_here: bool = False) -> tuple[SlackDeps, list[Engine]]:
    """What the Slack endpoint's handlers are given, and the engines to dispose of when it stops.
    The clicks' engine bounds every ledger wait by ENDPOINT_TIMEOUT, and gives up on the line of
    writers once the database fails them and it has not moved for that long; a click waits in line behind other clicks while it moves, CLICK_PATIENCE at most (its
    answer does not wait: phasegate.slack.acknowledge; forms and commands have a request deadline
    within Slack's 3 s); the work after the answer has an
    engine of its own (the default, longer bounds), so that it never holds a connection a click is
    waiting for. The prompt redraws and the wakes are marked in the ledger with each answer and done by
    the refresher, a process of its own (`Stack.refresher`); `refresh_here` runs one on a thread of
    this process instead, on that engine, waking runs with `resume` (tests that start no process)."""
    clicks, after = make_engine(url, timeout=ENDPOINT_TIMEOUT, patience=CLICK_PATIENCE), make_engine(url)
    deps = SlackDeps(signing_secret=secret, sessions=sessions(clicks, audit_key=audit_key), chat=chat, resume=resume,
                     refresh_here=refresh_here, followup_sessions=sessions(after, audit_key=audit_key))
    return deps, [clicks, after]


def start_endpoint(stack: Stack, rt: Runtime, port: int | None = None, *, refresher: bool = True) -> ServerHandle:
    """The Slack endpoint (with `/readyz` against the stack's Prefect API), when an app-level token is
    set the same handlers over Socket Mode, and (unless not `refresher`) the refresher's process."""
    deps, engines = endpoint_deps(rt.settings.ledger_url, signing_secret(rt.settings), rt.chat,
                                  PrefectRuns(wake_wait=30).wake, audit_key=rt.settings.audit_key_bytes)
    if refresher:
        stack.refresher()
    for engine in engines:
        stack.callback(engine.dispose)
    app = create_app(deps)
    add_readiness(app, deps.sessions, stack.api_url or rt.settings.prefect_api_url)
    app_token = rt.settings.slack_app_token.get_secret_value()
    if app_token:
        from phasegate.slack.socket import start_socket_mode

        client = start_socket_mode(deps, app_token, rt.chat.client)
        stack.callback(client.close)
    return stack.slack_endpoint(app, rt.settings.slack_host, rt.settings.slack_port if port is None else port)


def quiet_collector() -> None:
    """Keep Python's cyclic garbage collector from pausing `serve-slack`'s endpoint mid-burst (`up`,
    which also supervises and catches up, keeps the defaults): what the process has
    loaded by now (Prefect, SQLAlchemy, the app) is frozen out of its sight (`gc.freeze`), and it runs
    every 20,000 allocations rather than 700, its older generations as rarely in proportion (a click's
    objects are freed by reference counting; the collector is for cycles). bench.ack's burst on
    SQLite, 2026-12-05: with the defaults p99 1.7-2.4 x the durable-write floor's and 0.6-0.8 x its
    throughput; with this p99 0.9-1.4 x and 0.9-1.0 x."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def check_ports(settings: Settings, configured_api: str | None) -> None:
    """Refuse, in one line naming the holder, ports `up` needs that something else has taken (a fixed
    port only: 0 means any free one)."""
    if settings.slack_port:
        require_free(settings.slack_host, settings.slack_port, what="the Slack endpoint",
                     setting="PHASEGATE_SLACK_PORT")
    if configured_api is None and settings.prefect_port:
        require_free("127.0.0.1", settings.prefect_port, what="the Prefect server", setting="PHASEGATE_PREFECT_PORT")


def run_up(settings: Settings) -> None:
    console = Console(soft_wrap=True)  # the supervisor's lines are log lines: one line each
    signing_secret(settings)  # before starting anything
    configured = configured_prefect_api()
    check_ports(settings, configured)
    missing = missing_credentials(settings)
    for problem in missing:
        console.print(f"warning: {problem}", markup=False, highlight=False)
    if missing:
        console.print(f"({SANDBOX_HINT})", markup=False, highlight=False)
    upgrade(settings.ledger_url)
    rt = Runtime(settings)
    with Stack(settings) as stack:
        stack.callback(rt.close)
        with console.status("starting the Prefect server, the flows and the Slack endpoint"):
            api = stack.prefect_server(configured)
            stack.flows()
            endpoint = start_endpoint(stack, rt)
        console.print(f"Prefect UI      {api.removesuffix('/api')}")
        console.print(f"Slack endpoint  {endpoint.url}/slack/interactions")
        console.print(f"ledger          {settings.ledger_url}")
        console.print(f"logs            {stack.log_dir}")
        console.print("Ctrl-C stops everything.")

        def say(line: str) -> None:
            console.print(f"{dt.datetime.now():%H:%M:%S} {line}", markup=False, highlight=False)

        try:
            Supervisor(stack, catch_up=lambda: catch_up_lines(rt, stack.log_dir / "catch-up.log"), say=say).run()
        except KeyboardInterrupt:
            console.print("stopping")


def run_serve_slack(settings: Settings, host: str, port: int) -> None:
    """`phasegate serve-slack`: the endpoint alone, one replica of several behind a load balancer.
    The ledger must already be migrated (`phasegate db upgrade`, once, not from every replica) unless
    it is the default SQLite file; the Prefect API is PREFECT_API_URL, which need not answer yet
    (`/readyz` says so until it does)."""
    console = Console()
    signing_secret(settings)
    if not settings.database_url:
        upgrade(settings.ledger_url)
    rt = Runtime(settings.model_copy(update={"slack_host": host}))
    with Stack(settings) as stack:
        stack.callback(rt.close)
        stack.api_url = configured_prefect_api() or settings.prefect_api_url
        stack.enter_context(prefect_api(stack.api_url))
        endpoint = start_endpoint(stack, rt, port)
        quiet_collector()  # a replica's process answers clicks and little else
        console.print(f"Slack endpoint  {endpoint.url}/slack/interactions  (ready: {endpoint.url}/readyz)")
        console.print(f"Prefect API     {stack.api_url}")
        if settings.slack_app_token.get_secret_value():
            console.print("Socket Mode     connected")
        console.print("Ctrl-C stops it.")
        try:
            keep_refreshing(stack, lambda line: console.print(line, markup=False, highlight=False))
        except KeyboardInterrupt:
            console.print("stopping")


def keep_refreshing(stack: Stack, say: Callable[[str], None], *, interval: float = 1.0,
                    pause: float = REFRESHER_PAUSE) -> None:
    """`serve-slack`'s own supervision, until Ctrl-C: its refresher started again when it exits (after
    `pause` seconds, so a refresher that cannot start does not spin); its marks wait in the ledger meanwhile."""
    while True:
        time.sleep(interval)
        if stack.refresh is not None and stack.refresh.poll() is not None:
            say(f"the refresher {how_it_ended(stack.refresh.returncode)}; starting it again in {pause:g} s")
            time.sleep(pause)
            stack.refresher()

"""Running phasegate on one machine: a local Prefect server, the flows served, the Slack endpoint and
the refresher that does the work after each answer.

`Stack` starts what is missing and stops everything it started, in reverse order, on exit or
Ctrl-C. The flows are served from a child process (`python -m phasegate.ops.serve_flows`) so that
their runner owns its own main thread and signals. Nothing here rewrites os.environ: this process
steers its Prefect client with Prefect's settings context, and children get their environment
through `env=`.

Children run in a session of their own (Ctrl-C in the terminal reaches only this process, which
stops them in order) and, on Linux, die with it: each is started through a small launcher that asks
the kernel for SIGTERM when its parent goes (PR_SET_PDEATHSIG), so even a SIGKILLed `up` leaves no
Prefect server or runner behind. The signal follows the *thread* that started the child: start
children from the main thread (everything here does).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from phasegate.errors import ServiceUnavailable
from phasegate.ops.servers import ServerHandle, free_port, serve_in_thread
from phasegate.settings import Settings

# Run as `python -I -c LAUNCHER PARENT_PID COMMAND...`: SIGTERM on the parent's death (Linux), then
# exec the command in place. If the parent died before the request took effect, do not start at all.
LAUNCHER = """
import os, signal, sys
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)
os.execv(sys.argv[2], sys.argv[2:])
"""


PORT_TRIES = 3  # Prefect servers started on a port chosen here, when the one before exited at start


def dies_with_this_process(args: list[str]) -> list[str]:
    """`args`, started so that the process ends when this one does, however this one ends."""
    return [sys.executable, "-I", "-c", LAUNCHER, str(os.getpid()), *args]


def wait_healthy(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(f"{url}: the process exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise ServiceUnavailable(f"{url} did not become healthy within {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10, *, interrupt: bool = True) -> None:
    """Ctrl-C for `process` (unless it was given one already: a second would cut its clean-up short),
    then its exit, killed after `timeout` seconds."""
    if process.poll() is None:
        if interrupt:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def configured_prefect_api() -> str | None:
    """PREFECT_API_URL as Prefect reads it at this moment: the environment, then the active profile.
    Prefect's environment source outranks the others, so a set variable is read as it is; only
    without one are Prefect's settings built (about 50 ms)."""
    if set_url := os.environ.get("PREFECT_API_URL"):
        return set_url
    from prefect.settings import Settings as PrefectSettings

    url = PrefectSettings().api.url
    return str(url) if url else None


_POINTED: dict[str, tuple[Any, Any]] = {}  # url -> (the settings it was made from, those pointed at url)


@contextmanager
def prefect_api(url: str) -> Iterator[str]:
    """This process's Prefect client talks to `url` (never to an ephemeral server started behind the
    user's back) until the block ends. Prefect keeps its settings in a context variable rather than in
    os.environ, so nothing else in the process is changed; threads started inside the block see it
    only if they run in a copy of the context (`serve_in_thread` does that).

    What `prefect.settings.temporary_settings` does, with the updated settings (about 50 ms to
    validate) made once per settings and `url` in a process that enters this again (tests do)."""
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE

    context = get_settings_context()
    base, pointed = _POINTED.get(url, (None, None))
    if base is not context.settings:
        if len(_POINTED) > 16:
            _POINTED.clear()
        base, pointed = _POINTED[url] = (context.settings, context.settings.copy_with_update(
            updates={PREFECT_API_URL: url, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: False}))
    with SettingsContext(profile=context.profile, settings=pointed):
        yield url


def cli_prefect_api(settings: Settings) -> AbstractContextManager[str]:
    """The Prefect API a CLI command talks to: PREFECT_API_URL, or the local server `phasegate up` runs."""
    return prefect_api(configured_prefect_api() or settings.prefect_api_url)


def interrupt_on_sigterm() -> None:
    """Let `kill` (and systemd) stop phasegate the way Ctrl-C does: everything started is stopped."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


class Stack(ExitStack):
    """Child processes get the environment they need through `env=`: this process's own environment,
    the PHASEGATE_ settings this stack runs with, and the Prefect settings for a local server.

    `prefect_home` is where a local Prefect server keeps its database: by default PREFECT_HOME if
    set, else `<phasegate home>/prefect`."""

    def __init__(self, settings: Settings, *, prefect_home: Path | None = None) -> None:
        super().__init__()
        interrupt_on_sigterm()
        self.settings = settings
        self.prefect_home = prefect_home
        self.api_url: str | None = None
        self.server: subprocess.Popen[bytes] | None = None  # the local Prefect server, when this stack started one
        self.runner: subprocess.Popen[bytes] | None = None  # the process serving the flows
        self.refresh: subprocess.Popen[bytes] | None = None  # the refresher: prompts redrawn, runs woken
        self.log_dir = settings.home / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._children: list[subprocess.Popen[bytes]] = []  # spawned here, the Prefect server aside

    def __exit__(self, *exc: Any) -> bool:
        """The children are told to stop all at once, then waited for one by one in the reverse order of
        their start, the Prefect server last (the runner reports its runs to it as it stops): a stack of
        several children stops in the time of its slowest rather than in the sum of theirs."""
        for process in self._children:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        return bool(super().__exit__(*exc))

    def child_env(self) -> dict[str, str]:
        if self.api_url is None:
            raise RuntimeError("start or connect the Prefect server before anything that talks to it")
        env = {key: value for key, value in os.environ.items() if not key.startswith("PHASEGATE_")}
        env.update(self.settings.as_env())
        if self.prefect_home is not None:
            env["PREFECT_HOME"] = str(self.prefect_home)
        env.setdefault("PREFECT_HOME", str(self.settings.home / "prefect"))
        env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        env.update(PREFECT_API_URL=self.api_url, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
                   PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_RUNNER_POLL_FREQUENCY=str(self.settings.runner_poll_seconds),
                   PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(self.settings.heartbeat_seconds))
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        self.callback(log.close)
        # cwd: a directory of phasegate's own, so that a `jira.py` (or any file named like a library)
        # where the user typed `phasegate up` is not imported by `python -m` or the flow runs.
        process = subprocess.Popen(dies_with_this_process(args), stdout=log, stderr=subprocess.STDOUT,
                                   env=self.child_env(), start_new_session=True, cwd=self.settings.home)
        server = name == "prefect-server"
        self.callback(stop_process, process, interrupt=server)  # the others were told in __exit__
        if not server:
            self._children.append(process)
        return process

    def prefect_server(self, configured: str | None = None) -> str:
        """The Prefect API URL: `configured` (which must answer), or a local server started now. This
        process's Prefect client talks to it until the stack closes."""
        if configured:
            wait_healthy(configured.rstrip("/") + "/health", 10)
            self.api_url = configured
        elif self.settings.prefect_port:
            self.api_url = f"http://127.0.0.1:{self.settings.prefect_port}/api"
            self.start_server()
        else:
            self.api_url = self._server_on_a_free_port()
        return self.enter_context(prefect_api(self.api_url))

    def _server_on_a_free_port(self) -> str:
        """The API URL of a server started on a port chosen here: another process can take a free
        port before the server binds it, so a server that exits at start is tried on another one."""
        for attempt in range(1, PORT_TRIES + 1):
            url = self.api_url = f"http://127.0.0.1:{free_port()}/api"
            try:
                self.start_server()
                return url
            except ServiceUnavailable:
                if attempt == PORT_TRIES or self.server is None or self.server.poll() is None:  # not an exit at start
                    raise
        raise AssertionError("unreachable")

    def start_server(self) -> subprocess.Popen[bytes]:
        """The local Prefect server on the stack's port, once it answers (again, after it died)."""
        if self.api_url is None:
            raise RuntimeError("prefect_server() chooses the port first")
        port = self.api_url.removesuffix("/api").rsplit(":", 1)[1]
        self.server = self._spawn("prefect-server", [sys.executable, "-m", "prefect", "server", "start",
                                                     "--host", "127.0.0.1", "--port", port])
        wait_healthy(self.api_url + "/health", 90, self.server)
        return self.server

    def flows(self) -> subprocess.Popen[bytes]:
        """The runner serving the flows, its runs sending heartbeats that Prefect watches for silence."""
        from phasegate.ops.crash_detection import ensure_crash_detection

        ensure_crash_detection(self.settings.heartbeat_seconds)
        process = self._spawn("flows", [sys.executable, "-m", "phasegate.ops.serve_flows", "--die-with-parent"])
        wait_deployment(process)
        self.runner = process
        return process

    def refresher(self) -> subprocess.Popen[bytes]:
        """The refresher (phasegate/ops/refresher.py): the work after each answer, marked in the ledger,
        done in this child rather than in the process answering Slack."""
        self.refresh = self._spawn("refresher", [sys.executable, "-m", "phasegate.ops.refresher"])
        return self.refresh

    def slack_endpoint(self, app: object, host: str, port: int) -> ServerHandle:
        handle = serve_in_thread(app, host, port)
        self.callback(handle.stop)
        return handle


def wait_deployment(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until every served deployment is registered with the Prefect API (the runner registers them
    one after another: the phase deployment alone is not yet the weekly one)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from phasegate.orchestration.names import SERVED

    deadline = time.monotonic() + timeout
    waiting = list(SERVED)
    with get_client(sync_client=True) as client:
        while waiting:
            if process.poll() is not None:
                raise ServiceUnavailable(f"serving the flows failed (exit {process.returncode}); see the flows log")
            try:
                client.read_deployment_by_name(waiting[0])
                waiting.pop(0)
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"the deployment {waiting[0]} did not register in time") from None
                time.sleep(0.3)

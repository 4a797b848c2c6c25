"""Running phasegate on one machine: a local Prefect server, the flows served, the Slack endpoint.

`Stack` starts what is missing and stops everything it started, in reverse order, on exit or
Ctrl-C. The flows are served from a child process (`python -m phasegate.serve_flows`) so that
their runner owns its own main thread and signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack

import httpx

from phasegate.errors import ServiceUnavailable
from phasegate.servers import ServerHandle, free_port, serve_in_thread
from phasegate.settings import Settings


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


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def use_prefect_api(settings: Settings) -> str:
    """The Prefect API this process talks to: PREFECT_API_URL, or the local server `phasegate up`
    runs. Never an ephemeral server started behind the user's back."""
    os.environ.setdefault("PREFECT_API_URL", settings.prefect_api_url)
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    refresh_prefect_settings()
    return os.environ["PREFECT_API_URL"]


def prefect_env(settings: Settings) -> None:
    """Local-only Prefect: no analytics, fast resume polling, its own home under phasegate's."""
    os.environ.setdefault("PREFECT_HOME", str(settings.home / "prefect"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_RUNNER_POLL_FREQUENCY"] = str(settings.runner_poll_seconds)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    refresh_prefect_settings()


def refresh_prefect_settings() -> None:
    """Prefect reads its settings once at import; make this process see the variables set since."""
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()


def interrupt_on_sigterm() -> None:
    """Let `kill` (and systemd) stop phasegate the way Ctrl-C does: everything started is stopped."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


class Stack(ExitStack):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        interrupt_on_sigterm()
        self.settings = settings
        self.log_dir = settings.home / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        self.callback(log.close)
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
                                   start_new_session=True)
        self.callback(stop_process, process)
        return process

    def prefect_server(self) -> str:
        """The Prefect API URL: the one configured, or a local server started now."""
        prefect_env(self.settings)
        configured = os.environ.get("PREFECT_API_URL")
        if configured:
            wait_healthy(configured.rstrip("/") + "/health", 10)
            return configured
        port = self.settings.prefect_port or free_port()
        process = self._spawn("prefect-server", [sys.executable, "-m", "prefect", "server", "start",
                                                 "--host", "127.0.0.1", "--port", str(port)])
        url = f"http://127.0.0.1:{port}/api"
        wait_healthy(url + "/health", 90, process)
        os.environ["PREFECT_API_URL"] = url
        refresh_prefect_settings()
        return url

    def flows(self) -> None:
        process = self._spawn("flows", [sys.executable, "-m", "phasegate.serve_flows"])
        wait_deployment(process)

    def slack_endpoint(self, app: object, host: str, port: int) -> ServerHandle:
        handle = serve_in_thread(app, host, port)
        self.callback(handle.stop)
        return handle


def wait_deployment(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the served phase deployment is registered with the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from phasegate.deployments import PHASE_DEPLOYMENT

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            if process.poll() is not None:
                raise ServiceUnavailable(f"serving the flows failed (exit {process.returncode}); see the flows log")
            try:
                client.read_deployment_by_name(PHASE_DEPLOYMENT)
                return
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable("the phase deployment did not register in time") from None
                time.sleep(0.3)

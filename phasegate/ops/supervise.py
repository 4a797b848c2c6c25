"""What `phasegate up` does while it runs: keep its Prefect server, its flows runner and its refresher
(the prompt redraws and run wakes after each answer, phasegate/ops/refresher.py) alive, and act on
what was decided while the Prefect API was away.

Every second it looks at its children. A child that exited is started again, with a line on the
console; a child that exits more than `limit` times within `window` seconds makes `up` stop
everything and exit with one line naming the child and its log, rather than restart for ever. The
runner is started again only once the Prefect API answers (it cannot register its flows before).

Whenever the Prefect API answers after it did not (and once at start), the gate watch's follow-ups
run for every active engagement (phasegate/gates/watch.py `catch_up`): a gate decided while Prefect
was down wakes its run now, not at the next scheduled watch. The catch-up runs beside the loop, in a
thread of its own (`CatchUp`), one at a time: with many engagements it takes tens of seconds, and the
loop goes on watching the children meanwhile (a server that dies again is restarted at once). It
says one summary line; each engagement's warning goes to the catch-up log in the logs directory.

    supervisor = Supervisor(stack, catch_up=lambda: catch_up_lines(rt, log), say=print)
    supervisor.run()  # until Ctrl-C (KeyboardInterrupt) or GaveUp
"""

from __future__ import annotations

import contextvars
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from phasegate.errors import ServiceUnavailable
from phasegate.gates.watch import ONE_ENGAGEMENT, catch_up
from phasegate.ledger.models import utcnow
from phasegate.ops.local import Stack
from phasegate.ops.readiness import prefect_problem
from phasegate.orchestration.runs import PrefectRuns
from phasegate.orchestration.runtime import Runtime

SERVER, RUNNER, REFRESHER = "the Prefect server", "the flows runner", "the refresher"
MAX_RESTARTS = 3
WINDOW = 600.0  # seconds
# Seconds the catch-up gives each decided run to show as paused and take its resume. A catch-up that
# looked once, right after the Prefect server came back, woke nothing and said nothing in two of
# about ten full test runs (tests/test_up.py), leaving the run to the gate watch; what Prefect showed
# at that moment was not captured. A run that is already on its way costs the catch-up this long.
CATCH_UP_WAKE_WAIT = 10.0


class GaveUp(ServiceUnavailable):
    """A child of `up` kept exiting: `up` stops rather than restart it for ever."""


def how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class CatchUp:
    """The catch-up in a thread beside the supervision loop, one at a time: asked for while one runs,
    it runs once more after that one (the API may have gone and come back meanwhile)."""

    def __init__(self, work: Callable[[], list[str]], say: Callable[[str], None]) -> None:
        self.work, self.say = work, say
        self.lock = threading.Lock()
        self.running = self.again = False
        self.thread: threading.Thread | None = None

    def request(self) -> None:
        with self.lock:
            if self.running:
                self.again = True
                return
            self.running = True
        context = contextvars.copy_context()  # the Prefect API this process talks to is a context variable
        self.thread = threading.Thread(target=context.run, args=(self.loop,), name="phasegate-catch-up", daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while True:
            try:
                for line in self.work():
                    self.say(line)
            except Exception as exc:  # noqa: BLE001 - said, and left to the gate watch; the loop goes on
                self.say(f"the catch-up failed: {type(exc).__name__}: {exc}; the gate watch will act on decisions")
            with self.lock:
                if not self.again:
                    self.running = False
                    return
                self.again = False


class Supervisor:
    def __init__(self, stack: Stack, *, catch_up: Callable[[], list[str]], say: Callable[[str], None],
                 limit: int = MAX_RESTARTS, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stack, self.say = stack, say
        self.catch_up = CatchUp(catch_up, say)
        self.limit, self.window, self.clock = limit, window, clock
        self.restarts: dict[str, deque[float]] = {SERVER: deque(), RUNNER: deque(), REFRESHER: deque()}
        self.api_down = True  # the first pass catches up on what was decided while nothing ran

    def run(self, interval: float = 1.0) -> NoReturn:
        while True:
            self.check()
            time.sleep(interval)

    def check(self) -> None:
        """One look at the children and the API (see the module doc)."""
        stack = self.stack
        if stack.refresh is not None and stack.refresh.poll() is not None:  # it needs no API: the marks wait
            self.restart(REFRESHER, stack.refresh, stack.refresher, stack.log_dir / "refresher.log")
        if stack.server is not None and stack.server.poll() is not None:
            self.api_down = True
            self.restart(SERVER, stack.server, stack.start_server, stack.log_dir / "prefect-server.log")
        if stack.api_url is None or prefect_problem(stack.api_url) is not None:
            if not self.api_down:
                self.say(f"the Prefect API at {stack.api_url} is not answering; decisions are still recorded "
                         "and their runs are woken when it is back")
            self.api_down = True
            return
        if stack.runner is not None and stack.runner.poll() is not None:
            self.restart(RUNNER, stack.runner, stack.flows, stack.log_dir / "flows.log")
        if self.api_down:
            self.api_down = False
            self.catch_up.request()

    def restart(self, name: str, process: subprocess.Popen[bytes], start: Callable[[], object], log: Path) -> None:
        now = self.clock()
        times = self.restarts[name]
        while times and now - times[0] > self.window:
            times.popleft()
        ended = how_it_ended(process.returncode)
        if len(times) >= self.limit:
            raise GaveUp(f"{name} {ended}, after {len(times)} restarts within {self.window / 60:g} minutes; "
                         f"`phasegate up` stopped everything (see {log})")
        times.append(now)
        self.say(f"{name} {ended}; starting it again (restart {len(times)} of {self.limit} "
                 f"allowed within {self.window / 60:g} minutes)")
        try:
            start()
        except ServiceUnavailable as exc:  # the next pass looks again
            self.say(f"{name} did not come back: {exc}")
            return
        self.say(f"{name} is back")


def catch_up_lines(rt: Runtime, log: Path | None = None) -> list[str]:
    """The catch-up, summarised in one line for the console (none when there was nothing to do); each
    warning is written to `log` (appended, timestamped), which the line names."""
    started = time.monotonic()
    try:
        report = catch_up(rt, PrefectRuns(wake_wait=CATCH_UP_WAKE_WAIT), utcnow())
    except ONE_ENGAGEMENT as exc:  # the ledger or Prefect failing again: said, and left to the gate watch
        return [f"could not look for decisions to act on: {exc}; the gate watch will"]
    if not (report.woken or report.restarted or report.problems):
        return []
    parts = [f"woke {len(report.woken)} flow run(s)" + (f": {', '.join(report.woken)}" if report.woken else "")]
    if report.restarted:
        parts.append(f"started {len(report.restarted)} new run(s): {'; '.join(report.restarted)}")
    if report.problems:
        where = ""
        if log is not None:
            with log.open("a", encoding="utf-8") as out:
                out.writelines(f"{utcnow():%Y-%m-%d %H:%M:%S} {problem}\n" for problem in report.problems)
            where = f", all in {log}"
        parts.append(f"{len(report.problems)} warning(s), left to the gate watch (the first: {report.problems[0]}{where})")
    return [f"caught up in {time.monotonic() - started:.1f} s: " + "; ".join(parts)]

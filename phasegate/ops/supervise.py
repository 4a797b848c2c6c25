"""What `phasegate up` does while it runs: keep its Prefect server and its flows runner alive, and act
on what was decided while the Prefect API was away.

Every second it looks at its children. A child that exited is started again, with a line on the
console; a child that exits more than `limit` times within `window` seconds makes `up` stop
everything and exit with one line naming the child and its log, rather than restart for ever. The
runner is started again only once the Prefect API answers (it cannot register its flows before).

Whenever the Prefect API answers after it did not (and once at start), the gate watch's follow-ups
run at once for every active engagement (phasegate/gates/watch.py `catch_up`): a gate decided while
Prefect was down wakes its run now, not at the next scheduled watch.

    supervisor = Supervisor(stack, catch_up=lambda: catch_up_lines(rt), say=print)
    supervisor.run()  # until Ctrl-C (KeyboardInterrupt) or GaveUp
"""

from __future__ import annotations

import signal
import subprocess
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

SERVER, RUNNER = "the Prefect server", "the flows runner"
MAX_RESTARTS = 3
WINDOW = 600.0  # seconds


class GaveUp(ServiceUnavailable):
    """A child of `up` kept exiting: `up` stops rather than restart it for ever."""


def how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    def __init__(self, stack: Stack, *, catch_up: Callable[[], list[str]], say: Callable[[str], None],
                 limit: int = MAX_RESTARTS, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stack, self.catch_up, self.say = stack, catch_up, say
        self.limit, self.window, self.clock = limit, window, clock
        self.restarts: dict[str, deque[float]] = {SERVER: deque(), RUNNER: deque()}
        self.api_down = True  # the first pass catches up on what was decided while nothing ran

    def run(self, interval: float = 1.0) -> NoReturn:
        while True:
            self.check()
            time.sleep(interval)

    def check(self) -> None:
        """One look at the children and the API (see the module doc)."""
        stack = self.stack
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
            for line in self.catch_up():
                self.say(line)

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


def catch_up_lines(rt: Runtime) -> list[str]:
    """The catch-up, as lines for the console."""
    try:
        report = catch_up(rt, PrefectRuns(wake_wait=0), utcnow())
    except ONE_ENGAGEMENT as exc:  # the ledger or Prefect failing again: said, and left to the gate watch
        return [f"could not look for decisions to act on: {exc}; the gate watch will"]
    return ([f"woke flow run {run}: its engagement may go on" for run in report.woken]
            + [f"started a new run for {line}" for line in report.restarted]
            + [f"warning: {problem}" for problem in report.problems])

"""How a local stack stops its children (`phasegate up`'s Ctrl-C, every test world's teardown): all told at
once, each told once, the Prefect server after the rest have exited."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers import wait_until

from phasegate.ops.local import Stack
from phasegate.settings import Settings

# Says when it is ready, then on each Ctrl-C notes the time; takes a while to clean up, then notes its exit.
CHILD = """
import signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def interrupted(signum, frame):
    log.write(f"sigint {time.time()}\\n")
    time.sleep(1.0)
    log.write(f"exit {time.time()}\\n")
    sys.exit(0)
signal.signal(signal.SIGINT, interrupted)
log.write("ready\\n")
while True:
    time.sleep(0.05)
"""


def events(log: Path) -> list[tuple[str, float]]:
    return [(word, float(at)) for word, at in (line.split() for line in log.read_text().splitlines()[1:])]


def test_children_are_told_together_once_each_and_the_server_after_them(tmp_path: Path) -> None:
    logs = {name: tmp_path / f"{name}.txt" for name in ("prefect-server", "flows", "refresher")}
    with Stack(Settings(home=tmp_path)) as stack:
        stack.api_url = "http://127.0.0.1:9/api"
        for name, log in logs.items():  # in the order phasegate up starts them
            stack._spawn(name, [sys.executable, "-c", CHILD, str(log)])
        wait_until(lambda: all(log.exists() and log.read_text().startswith("ready") for log in logs.values()),
                   timeout=30, what="the children to start")
    seen = {name: dict(events(log)) for name, log in logs.items()}
    assert all([word for word, _ in events(log)] == ["sigint", "exit"] for log in logs.values()), seen
    flows, refresher, server = seen["flows"], seen["refresher"], seen["prefect-server"]
    assert flows["sigint"] < refresher["exit"] and refresher["sigint"] < flows["exit"]  # told before either exited
    assert server["sigint"] >= max(flows["exit"], refresher["exit"])  # the runner may still report to it

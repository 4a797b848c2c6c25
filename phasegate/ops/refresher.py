"""The refresher as a process of its own: `python -m phasegate.ops.refresher`, until SIGTERM or Ctrl-C.

`phasegate up`, `phasegate serve-slack` and the sandbox start it as a child (phasegate/ops/local.py
`Stack.refresher`, which `up`'s supervisor starts again when it exits), so that the work after an
answer (phasegate/gates/refresher.py: prompts redrawn, runs woken) takes no CPU, thread or connection
from the process answering Slack's clicks. It reads its settings from the environment (PHASEGATE_...)
and wakes runs through one long-lived client of the Prefect API in PREFECT_API_URL. It runs at a
lower CPU priority (`NICENESS`): a click's answer is what Slack waits for; the redraws after it wait
for a burst of clicks to be answered rather than share the CPU with it, and catch up once it is.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from phasegate.gates.refresher import Refresher
from phasegate.orchestration.resume import Waker
from phasegate.orchestration.runtime import Runtime
from phasegate.settings import Settings

NICENESS = 5  # added to the refresher's niceness (Unix); the endpoint keeps its own
WAKE_WAIT = 30.0  # seconds a decided run is given to reach its pause before the wake leaves it to the watch


def main() -> None:
    if hasattr(os, "nice"):
        os.nice(NICENESS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per Prefect request
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    rt = Runtime(Settings())
    waker = Waker(wait=WAKE_WAIT)
    refresher = Refresher(rt.sessions, rt.chat, waker.wake)
    logging.getLogger("phasegate.refresher").info("refreshing prompts from %s", rt.settings.ledger_url)
    try:
        refresher.run(stop)
    finally:
        refresher.close()
        waker.close()
        rt.close()


if __name__ == "__main__":
    main()

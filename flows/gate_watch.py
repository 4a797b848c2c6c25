"""The gate watch, served on an interval: reminders in the prompt's thread on business days,
escalation to named contacts, the file's timeout outcome, a nudge for runs that may go on, and a
new run for a phase whose run Prefect lost."""

from __future__ import annotations

from prefect import flow, get_run_logger

from phasegate.gates.watch import watch
from phasegate.ledger.models import utcnow
from phasegate.orchestration.names import WATCH_FLOW
from phasegate.orchestration.runs import PrefectRuns
from phasegate.orchestration.runtime import Runtime
from phasegate.settings import Settings

FLOW_NAME = WATCH_FLOW


@flow(name=FLOW_NAME)
def gate_watch() -> dict[str, list[str]]:
    """One pass over every open gate and every active engagement's phase run: reminders, nudges,
    and a new run for any run Prefect lost (see phasegate/orchestration/recovery.py)."""
    rt = Runtime(Settings())
    runs = PrefectRuns(wake_wait=0)
    try:
        report = watch(rt, utcnow(), runs.wake, runs=runs)
    finally:
        rt.close()
    logger = get_run_logger()
    for problem in report.problems:
        logger.warning(problem)
    return {"reminded": report.reminded, "escalated": report.escalated, "overdue": report.overdue,
            "woken": report.woken, "restarted": report.restarted, "cancelled": report.cancelled,
            "problems": report.problems}

"""The gate watch, served on an interval: reminders in the prompt's thread on business days,
escalation to named contacts, the file's timeout outcome, and a nudge for runs that may go on."""

from __future__ import annotations

from prefect import flow, get_run_logger

from phasegate.deployments import WATCH_FLOW
from phasegate.ledger.models import utcnow
from phasegate.resume import resume_when_paused
from phasegate.runtime import Runtime
from phasegate.settings import Settings
from phasegate.watch import watch

FLOW_NAME = WATCH_FLOW


def nudge(flow_run_id: str) -> bool:
    return resume_when_paused(flow_run_id, wait=0)


@flow(name=FLOW_NAME)
def gate_watch() -> dict[str, list[str]]:
    """One pass over every open gate and every waiting phase run."""
    rt = Runtime(Settings())
    try:
        report = watch(rt, utcnow(), nudge)
    finally:
        rt.close()
    logger = get_run_logger()
    for problem in report.problems:
        logger.warning(problem)
    return {"reminded": report.reminded, "escalated": report.escalated, "overdue": report.overdue,
            "woken": report.woken, "problems": report.problems}

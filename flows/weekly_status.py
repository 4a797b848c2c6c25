"""The weekly status flow, served on an hourly cron: each run reports every week whose own local
report time (Monday 09:00 by default) has passed without the report's post in Slack, late ones
marked late, then posts the portfolio digest once every active engagement has its report."""

from __future__ import annotations

from prefect import flow, get_run_logger

from phasegate.ledger.models import utcnow
from phasegate.orchestration.names import WEEKLY_FLOW
from phasegate.orchestration.runtime import Runtime
from phasegate.settings import Settings
from phasegate.tasks.weekly import collect_reports, deliver_reports, due_engagements, post_digest, save_artifacts


@flow(name=WEEKLY_FLOW)
def weekly_status(engagement_ids: list[str] | None = None, post: bool = True, force: bool = False) -> dict[str, object]:
    """Report the weeks owed (`force`: also this week of the given ones, or all active, whatever the time)."""
    rt = Runtime(Settings())
    logger = get_run_logger()
    try:
        now = utcnow()
        due = due_engagements(rt, now, engagement_ids, force)
        collected = collect_reports(rt, due, now)
        deliveries, failed = deliver_reports(rt, collected.reports, post)
        for report in collected.reports:
            save_artifacts(report)
        for engagement_id, reason in {**collected.failures, **failed}.items():
            logger.warning("weekly report of %s: %s", engagement_id, reason)
        digest = post_digest(rt, now) if post else None
    finally:
        rt.close()
    return {"reported": [d.subject for d in deliveries], "posted": [d.subject for d in deliveries if d.posted_now],
            "failed": sorted({**collected.failures, **failed}), "digest_ts": digest}

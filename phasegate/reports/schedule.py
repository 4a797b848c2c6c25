"""Whether an engagement's weekly report is due: its local weekday and time have passed this ISO
week, and the ledger has no report for that week yet.

Why an hourly run rather than one cron per engagement: a Prefect cron schedule has one timezone,
while each engagement has its own. Running every hour and asking this function is idempotent (a
reported week is never due again) and keeps "Monday 09:00" local across DST changes, because the
local wall time is built with the zone attached and only then compared with the UTC clock.
"""

from __future__ import annotations

import datetime as dt

from phasegate.configs.schema import Engagement
from phasegate.reports.facts import iso_week


def due_moment(engagement: Engagement, now: dt.datetime) -> tuple[str, dt.datetime]:
    """(ISO week, the UTC instant of this local week's report time) for the engagement."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz, when = engagement.tz, engagement.weekly_status
    local_today = now.astimezone(tz).date()
    day = local_today - dt.timedelta(days=local_today.weekday() - when.day.number)
    moment = dt.datetime.combine(day, when.clock, tzinfo=tz).astimezone(dt.UTC)
    return iso_week(local_today), moment


def is_due(engagement: Engagement, now: dt.datetime, reported_weeks: set[str]) -> bool:
    week, moment = due_moment(engagement, now)
    return now >= moment and week not in reported_weeks

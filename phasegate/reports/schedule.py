"""Which weeks' reports an engagement is owed: every local ISO week from the one it was registered in,
from that week's local weekday and time on, until the week's post is in Slack.

Why every week and not only the current one: the hourly run rarely lands on the report time itself.
In Asia/Kolkata (UTC+5:30) the runs at minute 0 UTC fall at :30 local, so "Sunday 23:45" is first
passed by the run at Monday 00:30, in the next local week; an outage from a Friday 16:30 report
time to Monday does the same. Asking only "has this week's time passed?" lost those weeks for good.
Asking "which weeks since registration have no post yet?" reports them, late if need be.

Why an hourly run rather than one cron per engagement: a Prefect cron schedule has one timezone,
while each engagement has its own. The local wall time is built with the zone attached and only
then compared with the UTC clock, so "Monday 09:00" stays 09:00 local across DST changes.

    owed(acme, registered_at=<2026-11-24 10:00 UTC>, now=<2026-12-07 09:00 UTC>, reported={"2026-W48"})
    -> [Due("2026-W49", at=<2026-11-30 08:00 UTC>, late=True), Due("2026-W50", at=<2026-12-07 08:00 UTC>)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from phasegate.configs.schema import Engagement
from phasegate.reports.facts import iso_week

# A report built within this long after its time is on time: the first hourly run that reaches the
# time (up to an hour later, and Prefect may start it a little late) and the run after it, which
# retries a post Slack refused. Later than that, the report says it is late.
LATE_AFTER = dt.timedelta(hours=2)
WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class Due:
    """One week's report: its local ISO week, the UTC instant it is due, and whether it is late at the
    moment it was asked for."""

    week: str
    at: dt.datetime
    late: bool = False


def _aware(moment: dt.datetime, name: str) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


def _monday(engagement: Engagement, moment: dt.datetime) -> dt.date:
    local = moment.astimezone(engagement.tz).date()
    return local - dt.timedelta(days=local.weekday())


def report_time(engagement: Engagement, monday: dt.date) -> dt.datetime:
    """The UTC instant of the engagement's local report weekday and time in the week of `monday`.

    A wall time DST skips (02:30 on the night clocks go forward) is read with the offset before the
    change, so it still falls on its day; a repeated one is the first of the two."""
    when = engagement.weekly_status
    day = monday + dt.timedelta(days=when.day.number)
    return dt.datetime.combine(day, when.clock, tzinfo=engagement.tz).astimezone(dt.UTC)


def due_moment(engagement: Engagement, now: dt.datetime) -> tuple[str, dt.datetime]:
    """(ISO week, the UTC instant of its report time) for the local week `now` falls in."""
    _aware(now, "now")
    monday = _monday(engagement, now)
    return iso_week(monday), report_time(engagement, monday)


def current(engagement: Engagement, now: dt.datetime) -> Due:
    """This local week's report, due or not yet (what `report weekly` sends whatever the time)."""
    week, at = due_moment(engagement, now)
    return Due(week, at, late=now - at > LATE_AFTER)


def owed(engagement: Engagement, registered_at: dt.datetime, now: dt.datetime,
         reported: Collection[str]) -> list[Due]:
    """The weeks whose report is due by `now` and not `reported` (its post is in Slack), oldest first.

    The first week is the local week of `registered_at`; when its report time had passed before
    the engagement was registered, its report is due at the registration.
    """
    _aware(now, "now")
    _aware(registered_at, "registered_at")
    found = []
    monday, last = _monday(engagement, registered_at), _monday(engagement, now)
    while monday <= last:
        week = iso_week(monday)
        if week not in reported:
            at = max(report_time(engagement, monday), registered_at)
            if at <= now:
                found.append(Due(week, at, late=now - at > LATE_AFTER))
        monday += WEEK
    return found

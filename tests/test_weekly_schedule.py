"""The weekly schedule over months of hourly runs, with an injected clock: every local ISO week from
registration on gets exactly one report, on time or marked late.

The zones are the ones where an hourly run at minute 0 UTC does not land on a local full hour, or
where DST moves the clock by 30 minutes: Asia/Kolkata (+5:30), Australia/Lord_Howe (+10:30, +11 in
summer), America/St_Johns (-3:30/-2:30), Pacific/Chatham (+12:45/+13:45), and Europe/London. The runs
are simulated as the Prefect cron starts them (every hour at minute 0 UTC, plus a start delay),
through outages (no run at all) and failed posts (Slack answered 500: the week stays unreported).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

import pytest
from helpers import with_changes
from hypothesis import given, settings
from hypothesis import strategies as st

from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement
from phasegate.configs.weekly import Weekday
from phasegate.reports import schedule

ZONES = ("Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham", "Europe/London")
WEEKS = 34
HOUR, DAY, WEEK = dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(weeks=1)
SETTLE = 2 * DAY  # the runs go on this long after the last week, with no outage, so its report is out
ACME = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")


@dataclass(frozen=True)
class Post:
    week: str
    due_at: dt.datetime
    posted_at: dt.datetime
    late: bool


def owed(engagement: Engagement, since: dt.datetime, now: dt.datetime,
         reported: Collection[str]) -> list[tuple[str, dt.datetime, bool]]:
    """(week, due at, late) for each week the schedule says to report in the run at `now`."""
    return [(due.week, due.at, due.late) for due in schedule.owed(engagement, since, now, reported)]


def hourly_runs(engagement: Engagement, since: dt.datetime, weeks: int, *, delay: dt.timedelta,
                outages: Collection[tuple[dt.datetime, dt.datetime]] = (),
                failing: Collection[int] = ()) -> tuple[list[Post], dt.datetime]:
    """Every post the hourly runs make from `since` (registration) for `weeks` weeks and SETTLE more,
    and the last run's time. `failing`: the numbers of the post attempts Slack answers with a 500."""
    end = since + weeks * WEEK + SETTLE
    now = since.replace(minute=0, second=0, microsecond=0) + delay  # the first cron run from `since` on
    if now < since:
        now += HOUR
    posts: list[Post] = []
    reported: dict[str, Post] = {}
    attempts = 0
    last = now
    while now < end:
        if not any(start <= now < stop for start, stop in outages):
            for week, due_at, late in owed(engagement, since, now, reported):
                attempts += 1
                if attempts in failing:
                    continue
                post = Post(week, due_at, now, late)
                posts.append(post)
                reported[week] = post
        last = now
        now += HOUR
    return posts, last


def report_time(engagement: Engagement, monday: dt.date) -> dt.datetime:
    """The engagement's local report time in the week starting `monday`, as a UTC instant."""
    day = monday + dt.timedelta(days=engagement.weekly_status.day.number)
    return dt.datetime.combine(day, engagement.weekly_status.clock, tzinfo=engagement.tz).astimezone(dt.UTC)


def weeks_owed(engagement: Engagement, since: dt.datetime, until: dt.datetime) -> dict[str, dt.datetime]:
    """Each local ISO week from the one `since` falls in whose report time has come by `until`, with
    that time (the registration itself for a week whose time had passed before it)."""
    local = since.astimezone(engagement.tz).date()
    monday = local - dt.timedelta(days=local.weekday())
    found = {}
    while (moment := report_time(engagement, monday)) <= until:
        year, number, _ = monday.isocalendar()
        found[f"{year}-W{number:02d}"] = max(moment, since)
        monday += dt.timedelta(days=7)
    return found


def engagement_at(zone: str, day: str, time: str) -> Engagement:
    return with_changes(ACME, timezone=zone, weekly_status={"day": day, "time": time})


def check(engagement: Engagement, since: dt.datetime, posts: list[Post], last_run: dt.datetime,
          *, delayed: bool) -> None:
    """Exactly one report per owed week, none before its time; late exactly when more than
    LATE_AFTER after it, and (`delayed` False: no outage, no failed post) never late."""
    expected = weeks_owed(engagement, since, last_run)
    counts = Counter(p.week for p in posts)
    missing = sorted(set(expected) - set(counts))
    assert not missing, f"{len(missing)} of {len(expected)} weeks never reported: {missing[:5]}"
    assert counts == Counter(list(expected)), "weeks reported more than once, or not owed"
    for post in posts:
        assert post.due_at == expected[post.week]
        assert post.posted_at >= post.due_at, f"{post.week} reported before its time"
        assert post.late == (post.posted_at - post.due_at > schedule.LATE_AFTER), post
        if not delayed:
            assert post.posted_at - post.due_at < HOUR and not post.late, post


@pytest.mark.parametrize(("zone", "day", "time", "first"), [
    ("Asia/Kolkata", "sunday", "23:45", dt.date(2026, 1, 5)),  # runs fall at :30 local; 23:45 is never reached
    ("Australia/Lord_Howe", "sunday", "23:30", dt.date(2026, 1, 5)),  # +11 in summer: runs at :00 local
    ("Pacific/Chatham", "sunday", "23:50", dt.date(2026, 3, 2)),  # runs at :45 local
    ("America/St_Johns", "sunday", "23:45", dt.date(2026, 2, 2)),  # runs at :30 local
])
def test_a_report_time_late_in_the_local_week_is_reached_every_week(zone: str, day: str, time: str,
                                                                    first: dt.date) -> None:
    engagement = engagement_at(zone, day, time)
    since = dt.datetime.combine(first, dt.time(0), tzinfo=engagement.tz).astimezone(dt.UTC)  # a local Monday
    posts, last = hourly_runs(engagement, since, WEEKS, delay=dt.timedelta(minutes=1))
    end = dt.datetime.combine(first + WEEKS * WEEK, dt.time(0), tzinfo=engagement.tz)  # a local Monday too
    in_window = [p for p in posts if p.due_at < end]
    assert len(in_window) == WEEKS, f"{len(in_window)} reports in {WEEKS} weeks"
    check(engagement, since, posts, last, delayed=False)


def test_a_weekend_outage_after_a_friday_report_time_is_reported_late_not_dropped() -> None:
    engagement = engagement_at("Europe/London", "friday", "16:30")
    since = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    down = (dt.datetime(2026, 3, 13, 16, 5, tzinfo=dt.UTC), dt.datetime(2026, 3, 16, 8, 30, tzinfo=dt.UTC))
    posts, last = hourly_runs(engagement, since, 4, delay=dt.timedelta(minutes=2), outages=[down])
    (outage_week,) = [p for p in posts if p.week == "2026-W11"]
    assert outage_week.late and outage_week.posted_at == dt.datetime(2026, 3, 16, 9, 2, tzinfo=dt.UTC)
    check(engagement, since, posts, last, delayed=True)


START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
EXAMPLES = 15  # per zone


@dataclass(frozen=True)
class Scenario:
    day: str
    time: str
    since: dt.datetime  # registration
    delay: dt.timedelta  # how late after minute 0 UTC Prefect starts each run
    outages: list[tuple[dt.datetime, dt.datetime]]  # no run at all from start to stop
    failing: set[int]  # the post attempts Slack answers with a 500


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Any weekday and time (minutes around the half and quarter hours the zones' offsets land on),
    registration anywhere in 2025-2027, up to five outages of an hour to five days (over before the
    last two weeks), up to five refused posts."""
    since = START + dt.timedelta(minutes=draw(st.integers(0, 3 * 365 * 24 * 60)))
    down = []
    for _ in range(draw(st.integers(0, 5))):
        start = since + dt.timedelta(hours=draw(st.integers(0, (WEEKS - 3) * 7 * 24)))
        down.append((start, start + dt.timedelta(hours=draw(st.integers(1, 5 * 24)))))
    return Scenario(day=draw(st.sampled_from([d.value for d in Weekday])),
                    time=f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 1, 15, 29, 30, 31, 44, 45, 46, 59])):02d}",
                    since=since, delay=dt.timedelta(minutes=draw(st.integers(0, 10))), outages=down,
                    failing=set(draw(st.lists(st.integers(1, WEEKS), max_size=5))))


@pytest.mark.parametrize("zone", ZONES)
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True)
@given(scenario=scenarios())
def test_every_week_gets_exactly_one_report_in_every_zone(zone: str, scenario: Scenario) -> None:
    engagement = engagement_at(zone, scenario.day, scenario.time)
    posts, last = hourly_runs(engagement, scenario.since, WEEKS, delay=scenario.delay, outages=scenario.outages,
                              failing=scenario.failing)
    check(engagement, scenario.since, posts, last, delayed=bool(scenario.outages or scenario.failing))

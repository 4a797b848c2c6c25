"""The business-day schedule behind gate reminders, escalation and timeout.

Why: these moments decide when approvers get pinged and when a gate times out on its own, so a
weekend reminder, a reminder that drifts an hour at DST, or a flood of catch-up messages would be
visible to clients. Every "now" is injected; nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

from phasegate.rules.calendar import (
    Action,
    GateTimes,
    business_days_elapsed,
    business_moment,
    due,
    next_reminder,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
AUCKLAND = ZoneInfo("Pacific/Auckland")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
UTC = dt.timezone.utc
HOUR = 9

# January 2026 in Berlin is CET (UTC+1) throughout: Thu 8, Fri 9, Sat 10, Sun 11, Mon 12, Tue 13.


def at(tz: ZoneInfo, month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> dt.datetime:
    """A local wall time, as the aware UTC instant the scheduler works with."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)


def utc(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def opened(
    when: dt.datetime, *, reminders_sent: int = 0, escalated: bool = False, timed_out: bool = False
) -> GateTimes:
    return GateTimes(opened_at=when, reminders_sent=reminders_sent, escalated=escalated, timed_out=timed_out)


def due_berlin(times: GateTimes, now: dt.datetime, *, every: int = 1, escalate_after: int = 99,
               timeout_after: int | None = None) -> list[Action]:
    return due(times, now, BERLIN, every=every, hour=HOUR, escalate_after=escalate_after, timeout_after=timeout_after)


FRIDAY_AFTERNOON = at(BERLIN, 1, 9, 16)


def test_opened_friday_afternoon_first_reminder_is_monday_at_the_hour() -> None:
    monday_nine = at(BERLIN, 1, 12, HOUR)
    assert monday_nine == utc(1, 12, 8)
    assert business_moment(FRIDAY_AFTERNOON, 1, BERLIN, HOUR) == monday_nine
    assert next_reminder(opened(FRIDAY_AFTERNOON), BERLIN, every=1, hour=HOUR) == monday_nine


@pytest.mark.parametrize(
    "now",
    [at(BERLIN, 1, 9, 23, 59), at(BERLIN, 1, 10, HOUR), at(BERLIN, 1, 10, 18), at(BERLIN, 1, 11, HOUR),
     at(BERLIN, 1, 11, 23, 59), at(BERLIN, 1, 12, 8, 59)],
    ids=["friday-night", "saturday-9", "saturday-18", "sunday-9", "sunday-midnight", "monday-8:59"],
)
def test_nothing_is_due_over_the_weekend(now: dt.datetime) -> None:
    times = opened(FRIDAY_AFTERNOON)
    assert due_berlin(times, now, escalate_after=1, timeout_after=1) == []
    assert business_days_elapsed(FRIDAY_AFTERNOON, now, BERLIN, HOUR) == 0


def test_monday_at_the_hour_everything_due_after_one_business_day_fires() -> None:
    now = at(BERLIN, 1, 12, HOUR)
    assert due_berlin(opened(FRIDAY_AFTERNOON), now, escalate_after=1, timeout_after=1) == [
        Action.REMIND, Action.ESCALATE, Action.TIMEOUT,
    ]


@pytest.mark.parametrize(
    "opened_local", [(1, 10, 8), (1, 10, 20), (1, 11, 12)], ids=["sat-morning", "sat-night", "sunday"]
)
def test_opened_on_the_weekend_first_reminder_is_monday(opened_local: tuple[int, int, int]) -> None:
    start = at(BERLIN, *opened_local)
    assert next_reminder(opened(start), BERLIN, every=1, hour=HOUR) == at(BERLIN, 1, 12, HOUR)


def test_the_opening_day_never_counts_even_before_the_hour() -> None:
    monday_early = at(BERLIN, 1, 12, 7)
    assert business_moment(monday_early, 1, BERLIN, HOUR) == at(BERLIN, 1, 13, HOUR)


@pytest.mark.parametrize(
    ("reminders_sent", "expected"),
    [(0, at(BERLIN, 1, 13, HOUR)), (1, at(BERLIN, 1, 15, HOUR)), (2, at(BERLIN, 1, 19, HOUR))],
    ids=["tuesday", "thursday", "next-monday"],
)
def test_every_two_business_days_skips_a_day(reminders_sent: int, expected: dt.datetime) -> None:
    times = opened(FRIDAY_AFTERNOON, reminders_sent=reminders_sent)
    assert next_reminder(times, BERLIN, every=2, hour=HOUR) == expected


def test_every_two_business_days_monday_is_skipped_by_due() -> None:
    times = opened(FRIDAY_AFTERNOON)
    assert due_berlin(times, at(BERLIN, 1, 12, 17), every=2) == []
    assert due_berlin(times, at(BERLIN, 1, 13, HOUR), every=2) == [Action.REMIND]


def test_local_date_not_utc_date_decides_the_schedule() -> None:
    # 23:30 UTC on Friday 27 November: Saturday 12:30 in Auckland (NZDT, +13), Friday 15:30 in LA (PST, -8).
    start = utc(11, 27, 23, 30)
    assert start.astimezone(AUCKLAND).weekday() == 5
    assert start.astimezone(LOS_ANGELES).weekday() == 4

    auckland = [business_moment(start, n, AUCKLAND, HOUR) for n in (1, 2)]
    los_angeles = [business_moment(start, n, LOS_ANGELES, HOUR) for n in (1, 2)]
    # Auckland: Monday 30 and Tuesday 1 December at 09:00 NZDT, i.e. 20:00 UTC the day before.
    assert auckland == [utc(11, 29, 20), utc(11, 30, 20)]
    # Los Angeles: Monday 30 November and Tuesday 1 December at 09:00 PST, i.e. 17:00 UTC.
    assert los_angeles == [utc(11, 30, 17), utc(12, 1, 17)]

    sunday_evening_utc = utc(11, 29, 20)
    times = opened(start)
    assert due(times, sunday_evening_utc, AUCKLAND, every=1, hour=HOUR, escalate_after=9, timeout_after=None) == [
        Action.REMIND
    ]
    assert due(times, sunday_evening_utc, LOS_ANGELES, every=1, hour=HOUR, escalate_after=9, timeout_after=None) == []


@pytest.mark.parametrize(
    ("tz", "first_reminder"),
    [(AUCKLAND, utc(11, 29, 20)), (LOS_ANGELES, utc(11, 27, 17))],
    ids=["auckland-friday-noon", "los-angeles-thursday-afternoon"],
)
def test_local_date_decides_which_business_day_comes_first(tz: ZoneInfo, first_reminder: dt.datetime) -> None:
    # 23:30 UTC on Thursday 26 November: already Friday in Auckland (so next is Monday), still Thursday in LA.
    start = utc(11, 26, 23, 30)
    assert next_reminder(opened(start), tz, every=1, hour=HOUR) == first_reminder


@pytest.mark.parametrize(
    ("tz", "start", "before_change", "after_change"),
    [
        # Berlin leaves CEST (+2) for CET (+1) on Sunday 25 October 2026.
        (BERLIN, utc(10, 22, 14), utc(10, 23, 7), utc(10, 26, 8)),
        # New York leaves EDT (-4) for EST (-5) on Sunday 1 November 2026.
        (NEW_YORK, utc(10, 29, 20), utc(10, 30, 13), utc(11, 2, 14)),
    ],
    ids=["europe-berlin", "america-new-york"],
)
def test_reminder_stays_at_nine_local_across_dst(
    tz: ZoneInfo, start: dt.datetime, before_change: dt.datetime, after_change: dt.datetime
) -> None:
    times = opened(start)
    first = next_reminder(times, tz, every=1, hour=HOUR)
    second = next_reminder(dataclasses.replace(times, reminders_sent=1), tz, every=1, hour=HOUR)
    assert (first, second) == (before_change, after_change)
    assert [m.astimezone(tz).hour for m in (first, second)] == [HOUR, HOUR]
    # Exactly a UTC hour before the real 09:00 is still 08:00 local: the second business day has not begun.
    assert business_days_elapsed(start, after_change - dt.timedelta(minutes=1), tz, HOUR) == 1
    assert business_days_elapsed(start, after_change, tz, HOUR) == 2


def test_escalation_after_three_business_days_opened_thursday_lands_on_tuesday() -> None:
    thursday = at(BERLIN, 1, 8, 10)
    assert business_moment(thursday, 3, BERLIN, HOUR) == at(BERLIN, 1, 13, HOUR)
    times = opened(thursday, reminders_sent=99)
    assert due_berlin(times, at(BERLIN, 1, 12, 23, 59), escalate_after=3) == []
    assert due_berlin(times, at(BERLIN, 1, 13, HOUR), escalate_after=3) == [Action.ESCALATE]


@pytest.mark.parametrize(
    ("now", "elapsed"),
    [(at(BERLIN, 1, 12, 8, 59), 0), (at(BERLIN, 1, 12, HOUR), 1), (at(BERLIN, 1, 16, 10), 5),
     (at(BERLIN, 1, 18, 23), 5), (at(BERLIN, 1, 19, HOUR), 6), (at(BERLIN, 1, 1, 0), 0)],
    ids=["before-first", "first", "full-week", "weekend-after", "second-monday", "before-opening"],
)
def test_business_days_elapsed_counts_moments_at_or_before_now(now: dt.datetime, elapsed: int) -> None:
    assert business_days_elapsed(FRIDAY_AFTERNOON, now, BERLIN, HOUR) == elapsed


FRIDAY_AFTER_A_WEEK = at(BERLIN, 1, 16, 10)  # five reminder moments (Mon-Fri) have passed


@pytest.mark.parametrize("reminders_sent", [0, 1, 4])
def test_missed_reminders_give_one_remind_not_a_flood(reminders_sent: int) -> None:
    times = opened(FRIDAY_AFTERNOON, reminders_sent=reminders_sent)
    assert due_berlin(times, FRIDAY_AFTER_A_WEEK) == [Action.REMIND]


@pytest.mark.parametrize("reminders_sent", [5, 6])
def test_no_remind_once_reminders_sent_catches_up(reminders_sent: int) -> None:
    times = opened(FRIDAY_AFTERNOON, reminders_sent=reminders_sent)
    assert due_berlin(times, FRIDAY_AFTER_A_WEEK) == []
    assert next_reminder(times, BERLIN, every=1, hour=HOUR) > FRIDAY_AFTER_A_WEEK


@pytest.mark.parametrize(
    ("escalated", "timed_out", "expected"),
    [(False, False, [Action.ESCALATE, Action.TIMEOUT]), (True, False, [Action.TIMEOUT]),
     (False, True, [Action.ESCALATE]), (True, True, [])],
)
def test_escalate_and_timeout_only_while_not_yet_done(escalated: bool, timed_out: bool, expected: list[Action]) -> None:
    times = opened(FRIDAY_AFTERNOON, reminders_sent=5, escalated=escalated, timed_out=timed_out)
    assert due_berlin(times, FRIDAY_AFTER_A_WEEK, escalate_after=2, timeout_after=4) == expected


def run_hourly(
    times: GateTimes, until: dt.datetime, *, escalate_after: int, timeout_after: int | None
) -> tuple[list[tuple[dt.datetime, Action]], GateTimes]:
    """Drive due() like a worker waking every hour, recording what fires and updating the gate."""
    fired: list[tuple[dt.datetime, Action]] = []
    now = times.opened_at
    while now <= until:
        for action in due_berlin(times, now, escalate_after=escalate_after, timeout_after=timeout_after):
            fired.append((now, action))
            if action is Action.REMIND:
                times = dataclasses.replace(times, reminders_sent=times.reminders_sent + 1)
            elif action is Action.ESCALATE:
                times = dataclasses.replace(times, escalated=True)
            else:
                times = dataclasses.replace(times, timed_out=True)
        now += dt.timedelta(hours=1)
    return fired, times


def test_two_weeks_of_hourly_checks_fire_each_action_once_at_the_right_moment() -> None:
    fired, final = run_hourly(opened(FRIDAY_AFTERNOON), at(BERLIN, 1, 25, 23), escalate_after=3, timeout_after=7)
    reminders = [when for when, action in fired if action is Action.REMIND]
    assert reminders == [at(BERLIN, 1, d, HOUR) for d in (12, 13, 14, 15, 16, 19, 20, 21, 22, 23)]
    assert [(when, a) for when, a in fired if a is not Action.REMIND] == [
        (at(BERLIN, 1, 14, HOUR), Action.ESCALATE),
        (at(BERLIN, 1, 20, HOUR), Action.TIMEOUT),
    ]
    assert (final.reminders_sent, final.escalated, final.timed_out) == (10, True, True)


def test_timeout_none_never_fires() -> None:
    times = opened(FRIDAY_AFTERNOON, reminders_sent=10_000, escalated=True)
    a_year_later = at(BERLIN, 1, 11, 12, year=2027)
    assert due_berlin(times, a_year_later, timeout_after=None) == []


NAIVE = dt.datetime(2026, 1, 9, 16)

NAIVE_CALLS: dict[str, Callable[[], object]] = {
    "business_moment": lambda: business_moment(NAIVE, 1, BERLIN, HOUR),
    "elapsed-start": lambda: business_days_elapsed(NAIVE, FRIDAY_AFTER_A_WEEK, BERLIN, HOUR),
    "elapsed-now": lambda: business_days_elapsed(FRIDAY_AFTERNOON, NAIVE, BERLIN, HOUR),
    "due-now": lambda: due_berlin(opened(FRIDAY_AFTERNOON), NAIVE),
    "gate-times": lambda: opened(NAIVE),
}


@pytest.mark.parametrize("call", NAIVE_CALLS.values(), ids=NAIVE_CALLS.keys())
def test_naive_datetimes_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


@pytest.mark.parametrize(
    "call",
    [lambda: business_moment(FRIDAY_AFTERNOON, 0, BERLIN, HOUR),
     lambda: business_moment(FRIDAY_AFTERNOON, 1, BERLIN, 24),
     lambda: next_reminder(opened(FRIDAY_AFTERNOON), BERLIN, every=0, hour=HOUR),
     lambda: due_berlin(opened(FRIDAY_AFTERNOON), FRIDAY_AFTER_A_WEEK, escalate_after=0),
     lambda: opened(FRIDAY_AFTERNOON, reminders_sent=-1)],
    ids=["n-zero", "hour-24", "every-zero", "escalate-zero", "negative-reminders"],
)
def test_out_of_range_policy_values_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()

"""The business-day schedule for gate reminders, escalation and timeout.

Approvers should be nudged during their working week, not at 3 a.m. on a Sunday, so every
moment here is "the n-th business day (Monday-Friday) after the gate opened, at a local hour",
in the engagement's own timezone. Days are counted on the local calendar and the wall time is
built with the zone attached before converting to UTC, so 09:00 stays 09:00 across DST changes.

Everything is a pure function of the datetimes passed in: callers inject "now", tests never sleep,
and a flow that wakes up late simply sees what is due rather than replaying what it missed.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_SATURDAY = 5  # date.weekday(): Monday is 0, so 5 and 6 are the weekend


class Action(str, enum.Enum):
    REMIND = "remind"
    ESCALATE = "escalate"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class GateTimes:
    """What has happened to an open gate so far; `due` compares it with the schedule."""

    opened_at: dt.datetime
    reminders_sent: int
    escalated: bool
    timed_out: bool

    def __post_init__(self) -> None:
        # Fail where the bad value enters, not later inside a scheduling loop.
        _require_aware("opened_at", self.opened_at)
        if self.reminders_sent < 0:
            raise ValueError(f"reminders_sent must be >= 0, got {self.reminders_sent}")


def business_moment(start: dt.datetime, n: int, tz: ZoneInfo, hour: int) -> dt.datetime:
    """The n-th business day strictly after start's local date, at `hour`:00 local, in UTC.

    The day on which the gate opened never counts, even if it opened before `hour`: a prompt
    posted at 08:00 should not be chased an hour later.
    """
    _require_aware("start", start)
    _require_positive("n", n)
    _require_hour(hour)
    day = start.astimezone(tz).date()
    for _ in range(n):
        day = _next_business_day(day)
    return _local_moment(day, tz, hour)


def business_days_elapsed(start: dt.datetime, now: dt.datetime, tz: ZoneInfo, hour: int) -> int:
    """How many business moments (n = 1, 2, ...) after start are at or before now."""
    _require_aware("start", start)
    _require_aware("now", now)
    _require_hour(hour)
    # Walk the days once instead of calling business_moment for each n (which would be quadratic).
    elapsed = 0
    day = start.astimezone(tz).date()
    while True:
        day = _next_business_day(day)
        if _local_moment(day, tz, hour) > now:
            return elapsed
        elapsed += 1


def due(
    times: GateTimes,
    now: dt.datetime,
    tz: ZoneInfo,
    *,
    every: int,
    hour: int,
    escalate_after: int,
    timeout_after: int | None,
) -> list[Action]:
    """The actions to take now, in the order REMIND, ESCALATE, TIMEOUT; each at most once.

    A single REMIND is returned however many reminders were missed (say the worker was down over
    a long weekend): catching up must not flood the channel. Escalation and timeout fire only
    while the matching flag in `times` is still False, so calling this repeatedly is safe.
    """
    _require_positive("every", every)
    _require_positive("escalate_after", escalate_after)
    if timeout_after is not None:
        _require_positive("timeout_after", timeout_after)
    elapsed = business_days_elapsed(times.opened_at, now, tz, hour)
    actions: list[Action] = []
    # Reminder k falls on business moment k * every; moments only move forward in time,
    # so the reminders due by now are exactly elapsed // every.
    if elapsed // every > times.reminders_sent:
        actions.append(Action.REMIND)
    if not times.escalated and elapsed >= escalate_after:
        actions.append(Action.ESCALATE)
    if timeout_after is not None and not times.timed_out and elapsed >= timeout_after:
        actions.append(Action.TIMEOUT)
    return actions


def next_reminder(times: GateTimes, tz: ZoneInfo, *, every: int, hour: int) -> dt.datetime:
    """When reminder number reminders_sent + 1 falls due, in UTC, for "next reminder at ..." text."""
    _require_positive("every", every)
    return business_moment(times.opened_at, (times.reminders_sent + 1) * every, tz, hour)


def _next_business_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= _SATURDAY:
        day += dt.timedelta(days=1)
    return day


def _local_moment(day: dt.date, tz: ZoneInfo, hour: int) -> dt.datetime:
    # Attaching tz to the wall time (rather than adding hours to a UTC instant) is what keeps the
    # hour fixed across DST. An hour skipped by a spring-forward change resolves with fold=0,
    # i.e. it lands one hour later in local time.
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(dt.timezone.utc)


def _require_aware(name: str, value: dt.datetime) -> None:
    # A naive datetime has no instant; guessing its zone would silently shift the whole schedule.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


def _require_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _require_hour(hour: int) -> None:
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be between 0 and 23, got {hour}")

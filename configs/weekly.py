"""When an engagement's weekly status report is due: a weekday and a local time.

Kept apart from `schema.py` so the schedule's rules read in one place; `Engagement.weekly_status`
uses it, defaulting to Monday 09:00 in the engagement's own timezone.
"""

from __future__ import annotations

import datetime as dt
import enum
import re

from pydantic import BaseModel, ConfigDict, field_validator

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Weekday(str, enum.Enum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """date.weekday() numbering: Monday is 0."""
        return list(Weekday).index(self)


class WeeklyStatus(BaseModel):
    """`weekly_status: {day: monday, time: "09:00"}` in the engagement file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: Weekday = Weekday.MONDAY
    time: str = "09:00"

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _TIME.match(value):
            raise ValueError("must be a 24-hour local time such as 09:00")
        return value

    @property
    def clock(self) -> dt.time:
        hour, minute = self.time.split(":")
        return dt.time(int(hour), int(minute))

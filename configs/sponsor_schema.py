"""The parts of the engagement file a sponsor reads beside the build (issue 20): the vendor's named
team, how the client's data is handled, and what a metric means in business terms.

All optional and left out of the stored file when not given, so a file written before them keeps
its digest.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, FiniteFloat, field_validator

from phasegate.configs.schema_base import SLACK_USER_ID, Strict

NAME = 80  # a person's name, as the roster and the audit trail hold it
ROLE = 60


class TeamMember(Strict):
    """One named individual the vendor commits (the guide: "named individuals with proven
    experience, not a rotating bench of junior developers")."""

    name: str = Field(min_length=1, max_length=NAME)
    role: str = Field(min_length=1, max_length=ROLE)
    slack_user: str | None = Field(default=None, exclude_if=lambda v: v is None)

    @field_validator("slack_user")
    @classmethod
    def _slack_user(cls, value: str | None) -> str | None:
        if value is not None and not SLACK_USER_ID.match(value):
            raise ValueError("must be a Slack user id such as U012ABCDEF")
        return value


class DataHandling(Strict):
    """What the data-handling agreement says (the guide: "encryption standards and deletion timelines
    post-engagement"): the weekly report reminds before `deletion_deadline` and, after it, asks the
    client side to attest that the vendor's copies are deleted."""

    encryption: str = Field(min_length=1, max_length=200)  # e.g. "AES-256 at rest, TLS 1.2+ in transit"
    deletion_deadline: dt.date
    remind_days_before: int = Field(default=14, ge=1, le=90)


class BusinessMeaning(Strict):
    """A metric in the sponsor's words (the guide: "93 % precision means nothing to the CEO").

    The report shows `label: value × scale unit` beside the raw figure, then `means`: with
    `{label: Churners caught early, unit: "% of churners", scale: 100}` an F1 of 0.88 reads
    "Churners caught early: 88 % of churners"."""

    label: str = Field(min_length=1, max_length=80)
    unit: str = Field(default="", max_length=40)
    scale: FiniteFloat = Field(default=1.0, gt=0)
    means: str = Field(default="", max_length=300)  # what the value means for the business, one sentence

    def figure(self, value: float) -> str:
        scaled = value * self.scale
        shown = f"{scaled:,.0f}" if abs(scaled) >= 10 or float(scaled).is_integer() else f"{scaled:.2g}"
        return f"{self.label}: {shown} {self.unit}".rstrip()

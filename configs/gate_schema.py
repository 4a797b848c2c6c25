"""A gate's policy in the engagement file: its approvers, the quorum and the reminders, escalation
and timeout the gate watch applies."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from phasegate.configs import checks, limits
from phasegate.configs.schema_base import SLACK_USER_ID, Side, Strict


class Approver(Strict):
    slack_user: str = Field(max_length=limits.SLACK_USER)
    name: str
    side: Side
    role: str = Field(default="approver", max_length=limits.ROLE)
    # Who this person is in Jira, so a change request they file there is theirs (and not theirs to
    # approve): the Cloud accountId (or Data Center user name or key), and/or the account's email.
    # Left out of the stored file when not given, so a file written before them keeps its digest.
    jira_account_id: str | None = Field(default=None, min_length=1, max_length=128, exclude_if=lambda v: v is None)
    jira_email: str | None = Field(default=None, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$",
                                   exclude_if=lambda v: v is None)

    @field_validator("slack_user")
    @classmethod
    def _slack_user(cls, value: str) -> str:
        if not SLACK_USER_ID.match(value):
            raise ValueError("must be a Slack user id such as U012ABCDEF")
        return value


class Quorum(Strict):
    """How many approvers must agree on one outcome: `all`, `any`, or a number.

    `quorum: 2` is shorthand for `quorum: {count: 2}`; so people write it, and a bare number
    read as a type error hid what was really wrong with it (more than the approvers)."""

    count: Literal["all", "any"] | Annotated[int, Field(ge=1)] = "all"
    one_from_each_side: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        return {"count": data} if isinstance(data, int | str) else data


class TimeoutOutcome(str, enum.Enum):
    STAY_OPEN = "stay_open"  # reported overdue; never a silent approval
    NO_GO = "no_go"


class GatePolicy(Strict):
    approvers: list[Approver] = Field(min_length=1)
    quorum: Quorum = Quorum()
    reminder_every_business_days: int = Field(default=1, ge=1)
    reminder_hour: int = Field(default=9, ge=0, le=23)
    escalate_after_business_days: int = Field(default=3, ge=1)
    escalation_contacts: list[str] = []
    timeout_business_days: int | None = Field(default=None, ge=1)
    timeout_outcome: TimeoutOutcome = TimeoutOutcome.STAY_OPEN
    cli_answers: bool = True  # false: `gate decide`, `cr decide` (under change_requests:) and the Prefect UI's form are refused; Slack answers
    allow_waivers: bool = True  # false: no GO/ACCEPT while an exit criterion fails or is missing

    @model_validator(mode="after")
    def _quorum_fits(self, info: ValidationInfo) -> GatePolicy:
        if not checks.rechecks(info.context):
            return self
        checks.raise_if(checks.gate_problems(self.model_dump(mode="json")))
        for contact in self.escalation_contacts:
            if not SLACK_USER_ID.match(contact):
                raise ValueError(f"escalation contact {contact!r} is not a Slack user id")
        return self

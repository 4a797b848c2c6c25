"""The ids phasegate's Slack messages carry, declared once for the builders and the endpoint.

A button's `action_id` says what was clicked (`gate:go`, `attest:data-deletion`) and its value
names only the gate revision or engagement it belongs to; who clicked comes from the verified
payload. A modal's `callback_id` says which form was submitted.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Action(str, enum.Enum):
    GATE = "gate"  # gate:<outcome>, value: the gate id
    ATTEST = "attest"  # attest:<milestone key>, value: "<engagement id>:<phase>" (see attest_value)
    CHANGE = "cr"  # cr:<approve|reject>, value: the change request id; cr:draft-drift, value: the engagement id


class View(str, enum.Enum):
    GATE_REASON = "gate_reason"  # private_metadata: "<gate id>:<outcome>"
    CR_REASON = "cr_reason"  # private_metadata: "<change request id>:<outcome>"
    CR_SUBMIT = "cr_submit"  # private_metadata: "<engagement id>:<channel it was opened in>" (see form_metadata)


class CrField(str, enum.Enum):
    """The inputs of the change-request form; each is the block_id and action_id of its input, and
    the key an InvalidRequest names, so a refusal shows next to the field it is about."""

    TITLE = "title"
    RATIONALE = "rationale"
    PHASE = "phase"
    SCOPE_ADDED = "scope_added"
    SCOPE_REMOVED = "scope_removed"
    EFFORT_DAYS = "effort_days"
    SCHEDULE_DAYS = "schedule_days"
    COST = "cost"


DRAFT_DRIFT = "draft-drift"  # cr:draft-drift, the weekly report's "Draft change request" button
DIGEST_MENU = "digest"  # the overflow menu showing a gate's full evidence digest; selecting it does nothing
REASON_INPUT = "reason"  # block_id and action_id of the reason field in the gate_reason modal


class ActionId(NamedTuple):
    action: Action
    argument: str


def action_id(action: Action, argument: str) -> str:
    return f"{action.value}:{argument}"


def parse_action_id(text: str) -> ActionId | None:
    """The action and its argument, or None for an action_id that is not one of phasegate's."""
    prefix, sep, argument = text.partition(":")
    try:
        return ActionId(Action(prefix), argument) if sep else None
    except ValueError:
        return None


def gate_block_id(gate_id: int) -> str:
    return f"gate-{gate_id}"


def cr_block_id(cr_id: int) -> str:
    return f"cr-{cr_id}"


def form_metadata(engagement_id: str, channel: str) -> str:
    """What the change-request form carries back: its engagement, and the channel it was opened in,
    which must still be that engagement's when the form is submitted (Slack returns private_metadata
    as the app set it)."""
    return f"{engagement_id}:{channel}"


def parse_form_metadata(text: str) -> tuple[str, str | None]:
    """(engagement id, channel); no channel from a form opened before forms named theirs."""
    engagement_id, sep, channel = text.partition(":")
    return engagement_id, channel if sep else None


def attest_value(engagement_id: str, phase: str) -> str:
    return f"{engagement_id}:{phase}"


def parse_attest_value(value: str) -> tuple[str, str]:
    """(engagement id, phase); a value without a phase is from a handover kickoff posted before
    buttons named their phase."""
    engagement_id, sep, phase = value.partition(":")
    return (engagement_id, phase) if sep else (engagement_id, "handover")

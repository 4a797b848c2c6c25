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
    ATTEST = "attest"  # attest:<milestone key>, value: the engagement id


class View(str, enum.Enum):
    GATE_REASON = "gate_reason"  # private_metadata: "<gate id>:<outcome>"


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

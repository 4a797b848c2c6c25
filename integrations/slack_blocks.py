"""Block Kit builders that keep every element inside Slack's limits (50 blocks a message,
3,000-character sections, 150-character headers, 75-character button texts, 2,000-character
button values, 255-character ids, 25 elements an actions block).

They take plain text and ids only: what a gate or its evidence means is rendered by the core
(`phasegate.messages.gates`), which hands the finished strings here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Block = dict[str, Any]
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
ID_LIMIT = 255
ACTIONS_PER_BLOCK = 25
MODAL_TITLE_LIMIT = 24


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
OVERFLOW_OPTIONS = 5


def section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def overflow(action_id: str, options: Sequence[tuple[str, str]]) -> Block:
    """A "⋯" menu of up to 5 (text, value) options: a way to keep a long value one click away."""
    if len(action_id) > ID_LIMIT:
        raise ValueError(f"overflow {action_id[:40]!r}: action_id over Slack's limit")
    return {"type": "overflow", "action_id": action_id,
            "options": [{"text": {"type": "plain_text", "text": clip(text, OPTION_TEXT_LIMIT)},
                         "value": clip(value, OPTION_VALUE_LIMIT)} for text, value in options[:OVERFLOW_OPTIONS]]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_LIMIT)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 2000)}]}


@dataclass(frozen=True)
class Button:
    action_id: str
    text: str
    value: str
    style: Literal["primary", "danger"] | None = None

    def block(self) -> Block:
        if len(self.action_id) > ID_LIMIT or len(self.value) > BUTTON_VALUE_LIMIT:
            raise ValueError(f"button {self.action_id[:40]!r}: action_id or value over Slack's limit")
        element: Block = {"type": "button", "action_id": self.action_id, "value": self.value,
                          "text": {"type": "plain_text", "text": clip(self.text, BUTTON_TEXT_LIMIT)}}
        if self.style:
            element["style"] = self.style
        return element


def actions(block_id: str, buttons: Sequence[Button]) -> list[Block]:
    """One actions block per 25 buttons (Slack's limit), with block ids `block_id`, `block_id-25`, ..."""
    blocks = []
    for start in range(0, len(buttons), ACTIONS_PER_BLOCK):
        suffix = f"-{start}" if start else ""
        blocks.append({"type": "actions", "block_id": clip(block_id + suffix, ID_LIMIT),
                       "elements": [b.block() for b in buttons[start:start + ACTIONS_PER_BLOCK]]})
    return blocks


def text_input_modal(*, callback_id: str, private_metadata: str, title: str, label: str, input_id: str,
                     submit: str = "Record", max_length: int = 3000) -> dict[str, Any]:
    """A modal asking for one multi-line text, answered to the same input_id as block and action."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": clip(title, MODAL_TITLE_LIMIT)},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": input_id,
            "label": {"type": "plain_text", "text": label},
            "element": {"type": "plain_text_input", "action_id": input_id, "multiline": True,
                        "max_length": max_length},
        }],
    }


def text_input(block_id: str, label: str, *, multiline: bool = False, max_length: int = 3000,
               optional: bool = False, hint: str = "") -> Block:
    """An input block whose element answers to the same id as the block (block_id == action_id)."""
    block: Block = {"type": "input", "block_id": block_id, "optional": optional,
                    "label": {"type": "plain_text", "text": clip(label, 2000)},
                    "element": {"type": "plain_text_input", "action_id": block_id, "multiline": multiline,
                                "max_length": max_length}}
    if hint:
        block["hint"] = {"type": "plain_text", "text": clip(hint, 2000)}
    return block


def number_input(block_id: str, label: str, *, decimal: bool, optional: bool = True, hint: str = "") -> Block:
    block = text_input(block_id, label, optional=optional, hint=hint)
    block["element"] = {"type": "number_input", "action_id": block_id, "is_decimal_allowed": decimal}
    return block


def select_input(block_id: str, label: str, options: Sequence[tuple[str, str]], initial: str | None = None) -> Block:
    """A static select of (value, text) pairs, at most 100 (Slack's limit)."""
    choices = [{"text": {"type": "plain_text", "text": clip(text, 75)}, "value": value}
               for value, text in options[:100]]
    element: Block = {"type": "static_select", "action_id": block_id, "options": choices}
    chosen = next((c for c in choices if c["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": clip(label, 2000)},
            "element": element}


def form_modal(*, callback_id: str, private_metadata: str, title: str, blocks: Sequence[Block],
               submit: str = "Submit") -> dict[str, Any]:
    return {"type": "modal", "callback_id": callback_id, "private_metadata": clip(private_metadata, 3000),
            "title": {"type": "plain_text", "text": clip(title, MODAL_TITLE_LIMIT)},
            "submit": {"type": "plain_text", "text": submit}, "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": list(blocks)[:100]}

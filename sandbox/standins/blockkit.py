"""Block Kit validation for the local Slack stand-in.

Why this exists: the real Slack API bounces a message or modal that breaks Block Kit's limits
(`invalid_blocks` for messages, `invalid_arguments` for views) and names each problem with a
json-pointer. If the stand-in accepted anything, a gate message that is one field too long would
pass every test and then fail in front of the client. So the limits Slack documents for the
blocks and elements phasegate can plausibly send are checked here; a block or element type this
module does not know is rejected, as Slack rejects types it does not know.

    errors = validate_blocks(blocks)               # [] when Slack would accept them
    errors = validate_modal(view)                  # pointers start at /view
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
ID_LIMIT = 255  # action_id, block_id, callback_id

TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
PLAIN = frozenset({"plain_text"})
SELECTS = frozenset({
    "static_select", "multi_static_select", "external_select", "multi_external_select",
    "users_select", "multi_users_select", "conversations_select", "multi_conversations_select",
    "channels_select", "multi_channels_select",
})
ACTION_ELEMENTS = SELECTS | {"button", "overflow", "datepicker", "timepicker", "checkboxes", "radio_buttons"}
ACCESSORY_ELEMENTS = ACTION_ELEMENTS | {"image"}
INPUT_ELEMENTS = (ACTION_ELEMENTS - {"button", "overflow"}) | {
    "plain_text_input", "number_input", "email_text_input", "url_text_input", "rich_text_input",
}


class _Checker:
    """Collects Slack-style "[ERROR] problem [json-pointer:/path]" messages while walking a payload."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, pointer: str, problem: str) -> None:
        self.errors.append(f"[ERROR] {problem} [json-pointer:{pointer}]")

    def string(self, value: object, pointer: str, limit: int, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(pointer, "missing required field")
        elif not isinstance(value, str):
            self.fail(pointer, "must be a string")
        elif len(value) > limit:
            self.fail(pointer, f"must be less than {limit + 1} characters")

    def items(self, value: object, pointer: str, limit: int, *, required: bool = True) -> list[Any]:
        """The list at `pointer`, or [] after recording why it is not an acceptable list."""
        if value is None:
            if required:
                self.fail(pointer, "missing required field")
            return []
        if not isinstance(value, list):
            self.fail(pointer, "must be an array")
            return []
        if required and not value:
            self.fail(pointer, "must provide at least 1 item")
        if len(value) > limit:
            self.fail(pointer, f"no more than {limit} items allowed")
        return value

    def text(self, obj: object, pointer: str, limit: int, *, types: frozenset[str] = TEXT_TYPES,
             required: bool = True) -> None:
        if obj is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(obj, dict):
            self.fail(pointer, "must be an object")
            return
        if obj.get("type") not in types:
            self.fail(f"{pointer}/type", f"must be one of: {', '.join(sorted(types))}")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.fail(f"{pointer}/text", "must be more than 0 characters")
        elif len(text) > limit:
            self.fail(f"{pointer}/text", f"must be less than {limit + 1} characters")

    def option(self, obj: object, pointer: str, text_types: frozenset[str] = PLAIN) -> None:
        if not isinstance(obj, dict):
            self.fail(pointer, "must be an object")
            return
        self.text(obj.get("text"), f"{pointer}/text", 75, types=text_types)
        self.string(obj.get("value"), f"{pointer}/value", 150, required=True)

    def element(self, el: object, pointer: str, allowed: frozenset[str]) -> None:
        if not isinstance(el, dict):
            self.fail(pointer, "must be an object")
            return
        kind = el.get("type")
        if kind not in allowed:
            self.fail(f"{pointer}/type", f"unsupported type: {kind}")
            return
        self.string(el.get("action_id"), f"{pointer}/action_id", ID_LIMIT)
        self.text(el.get("placeholder"), f"{pointer}/placeholder", 150, types=PLAIN, required=False)
        _ELEMENT_RULES.get(str(kind), _no_rules)(self, el, pointer)

    def block(self, block: object, pointer: str) -> None:
        if not isinstance(block, dict):
            self.fail(pointer, "must be an object")
            return
        rule = _BLOCK_RULES.get(str(block.get("type")))
        if rule is None:
            self.fail(f"{pointer}/type", f"unsupported type: {block.get('type')}")
            return
        self.string(block.get("block_id"), f"{pointer}/block_id", ID_LIMIT)
        rule(self, block, pointer)

    def blocks(self, blocks: object, pointer: str, limit: int) -> None:
        items = self.items(blocks, pointer, limit, required=False)
        seen: set[str] = set()
        for index, block in enumerate(items):
            self.block(block, f"{pointer}/{index}")
            block_id = block.get("block_id") if isinstance(block, dict) else None
            if isinstance(block_id, str):
                if block_id in seen:
                    self.fail(f"{pointer}/{index}/block_id", f"duplicate block_id: {block_id}")
                seen.add(block_id)


Rule = Callable[[_Checker, dict[str, Any], str], None]


def _no_rules(c: _Checker, obj: dict[str, Any], p: str) -> None:
    """Types whose own fields are not modelled: only the shared checks apply."""


def _button(c: _Checker, el: dict[str, Any], p: str) -> None:
    c.text(el.get("text"), f"{p}/text", 75, types=PLAIN)
    c.string(el.get("value"), f"{p}/value", 2000)
    c.string(el.get("url"), f"{p}/url", 3000)
    if el.get("style") not in (None, "primary", "danger"):
        c.fail(f"{p}/style", "must be one of: danger, primary")


def _image_element(c: _Checker, el: dict[str, Any], p: str) -> None:
    if el.get("slack_file") is None:
        c.string(el.get("image_url"), f"{p}/image_url", 3000, required=True)
    c.string(el.get("alt_text"), f"{p}/alt_text", 2000, required=True)


def _plain_text_input(c: _Checker, el: dict[str, Any], p: str) -> None:
    c.string(el.get("initial_value"), f"{p}/initial_value", 3000)
    if not isinstance(el.get("multiline", False), bool):
        c.fail(f"{p}/multiline", "must be a boolean")
    for field, low in (("min_length", 0), ("max_length", 1)):
        value = el.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 3000):
            c.fail(f"{p}/{field}", f"must be an integer from {low} to 3000")


def _options(limit: int, text_types: frozenset[str] = PLAIN) -> Rule:
    def rule(c: _Checker, el: dict[str, Any], p: str) -> None:
        if el.get("options") is None and el.get("option_groups") is not None:
            return  # grouped selects are not modelled further
        for i, opt in enumerate(c.items(el.get("options"), f"{p}/options", limit)):
            c.option(opt, f"{p}/options/{i}", text_types)
    return rule


_ELEMENT_RULES: dict[str, Rule] = {
    "button": _button,
    "image": _image_element,
    "plain_text_input": _plain_text_input,
    "overflow": _options(5),
    "static_select": _options(100),
    "multi_static_select": _options(100),
    "checkboxes": _options(10, TEXT_TYPES),
    "radio_buttons": _options(10, TEXT_TYPES),
}


def _section(c: _Checker, b: dict[str, Any], p: str) -> None:
    if b.get("text") is None and b.get("fields") is None:
        c.fail(p, "must provide either text or fields")
    c.text(b.get("text"), f"{p}/text", 3000, required=False)
    for i, field in enumerate(c.items(b.get("fields"), f"{p}/fields", 10, required=False)):
        c.text(field, f"{p}/fields/{i}", 2000)
    if b.get("accessory") is not None:
        c.element(b["accessory"], f"{p}/accessory", ACCESSORY_ELEMENTS)


def _header(c: _Checker, b: dict[str, Any], p: str) -> None:
    c.text(b.get("text"), f"{p}/text", 150, types=PLAIN)


def _context(c: _Checker, b: dict[str, Any], p: str) -> None:
    for i, el in enumerate(c.items(b.get("elements"), f"{p}/elements", 10)):
        if isinstance(el, dict) and el.get("type") == "image":
            c.element(el, f"{p}/elements/{i}", frozenset({"image"}))
        else:
            c.text(el, f"{p}/elements/{i}", 3000)


def _actions(c: _Checker, b: dict[str, Any], p: str) -> None:
    for i, el in enumerate(c.items(b.get("elements"), f"{p}/elements", 25)):
        c.element(el, f"{p}/elements/{i}", ACTION_ELEMENTS)


def _image_block(c: _Checker, b: dict[str, Any], p: str) -> None:
    _image_element(c, b, p)
    c.text(b.get("title"), f"{p}/title", 2000, types=PLAIN, required=False)


def _input(c: _Checker, b: dict[str, Any], p: str) -> None:
    c.text(b.get("label"), f"{p}/label", 2000, types=PLAIN)
    c.text(b.get("hint"), f"{p}/hint", 2000, types=PLAIN, required=False)
    if b.get("element") is None:
        c.fail(f"{p}/element", "missing required field")
    else:
        c.element(b["element"], f"{p}/element", INPUT_ELEMENTS)


def _markdown(c: _Checker, b: dict[str, Any], p: str) -> None:
    c.string(b.get("text"), f"{p}/text", 12000, required=True)


_BLOCK_RULES: dict[str, Rule] = {
    "section": _section, "header": _header, "context": _context, "actions": _actions,
    "image": _image_block, "input": _input, "markdown": _markdown,
    "divider": _no_rules, "rich_text": _no_rules, "video": _no_rules, "file": _no_rules,
}


def validate_blocks(blocks: object, *, limit: int = MAX_MESSAGE_BLOCKS, pointer: str = "/blocks") -> list[str]:
    """Slack's error messages for a message's `blocks`; an empty list means Slack would accept them."""
    checker = _Checker()
    checker.blocks(blocks, pointer, limit)
    return checker.errors


def validate_modal(view: object) -> list[str]:
    """Slack's error messages for a `views.open` view payload (pointers under /view)."""
    c = _Checker()
    if not isinstance(view, dict):
        c.fail("/view", "must be an object")
        return c.errors
    if view.get("type") != "modal":
        c.fail("/view/type", "must be one of: modal")
    c.text(view.get("title"), "/view/title", 24, types=PLAIN)
    for button in ("submit", "close"):
        c.text(view.get(button), f"/view/{button}", 24, types=PLAIN, required=False)
    c.string(view.get("callback_id"), "/view/callback_id", ID_LIMIT)
    c.string(view.get("private_metadata"), "/view/private_metadata", 3000)
    c.string(view.get("external_id"), "/view/external_id", ID_LIMIT)
    if view.get("blocks") is None:
        c.fail("/view/blocks", "missing required field")
    c.blocks(view.get("blocks"), "/view/blocks", MAX_MODAL_BLOCKS)
    blocks = view.get("blocks")
    has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if has_input and view.get("submit") is None:
        c.fail("/view/submit", "must provide submit when the view contains input blocks")
    return c.errors

"""What the Slack stand-in stores and how it reads and writes Slack's wire format: messages, the
errors Slack answers with, form- or JSON-encoded arguments, and rate-limit answers."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from phasegate.sandbox.standins.blockkit import validate_blocks

Args = dict[str, Any]
TEAM_ID, BOT_USER_ID, BOT_ID, APP_ID = "T0PHASEGATE", "U0PHASEBOT", "B0PHASEBOT", "A0PHASEGATE"
MAX_TEXT = 40_000


@dataclass
class Message:
    """A message as posted (and possibly updated) in a channel; copies are handed out."""

    ts: str
    channel: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    edits: int = 0
    metadata: dict[str, Any] | None = None  # {"event_type": ..., "event_payload": {...}} as posted


@dataclass
class _ResponseUrl:
    created: float
    uses: int = 0
    said: list[str] = field(default_factory=list)  # the texts posted to it, in order


class SlackError(Exception):
    """An `{"ok": false}` answer; raised inside method handlers and turned into the HTTP reply."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []


def _parse_args(request: Request, body: bytes, *, form_only: bool = False) -> Args:
    """Arguments from a JSON or form-encoded body (slack_sdk sends both), plus the query string.
    `form_only`: a read method such as conversations.history, for which Slack ignores a JSON body."""
    args: Args = {k: v for k, v in request.query_params.items() if k != "token"}
    if request.headers.get("content-type", "").startswith("application/json"):
        if form_only:
            return args
        try:
            parsed = json.loads(body) if body.strip() else {}
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(parsed, dict):
            raise SlackError("invalid_json")
        args.update(parsed)
    else:
        args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return args


def _content(args: Args) -> tuple[str | None, list[dict[str, Any]] | None]:
    """The message's (text, blocks) as given (None when absent), checked against Slack's limits."""
    text = args.get("text")
    text = None if text is None or text == "" else str(text)
    if text is not None and len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    blocks = args.get("blocks")
    if isinstance(blocks, str):  # form-encoded requests carry blocks as a JSON string
        try:
            blocks = json.loads(blocks) if blocks else None
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if blocks is None:
        return text, None
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    errors = validate_blocks(blocks)
    if errors:
        raise SlackError("invalid_blocks", errors)
    return text, copy.deepcopy(blocks)


def _render(message: Message) -> Args:
    rendered: Args = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID, "team": TEAM_ID,
                      "text": message.text, "blocks": copy.deepcopy(message.blocks), "ts": message.ts}
    if message.thread_ts is not None:
        rendered["thread_ts"] = message.thread_ts
        rendered["parent_user_id"] = BOT_USER_ID
    if message.metadata is not None:
        rendered["metadata"] = copy.deepcopy(message.metadata)
    return rendered


def _copy(message: Message) -> Message:
    return replace(message, blocks=copy.deepcopy(message.blocks), metadata=copy.deepcopy(message.metadata))


def _failure_response(status: int, retry_after: int) -> Response:
    if status == 429:
        return JSONResponse({"ok": False, "error": "ratelimited"}, status_code=429,
                            headers={"Retry-After": str(retry_after)})
    error = "service_unavailable" if status == 503 else "internal_error"
    return JSONResponse({"ok": False, "error": error}, status_code=status)

"""Message metadata and `conversations.history`, as the Slack Web API does them.

Why: phasegate marks each post it records by ts with metadata naming what it is (engagement,
gate, revision) and, before posting where its ledger holds no ts yet, looks for that post in the
channel's history. The stand-in must refuse metadata Slack refuses and page history the way Slack
does (newest first, `limit` at most 999, `has_more` + `response_metadata.next_cursor`), or a test
of that lookup would pass against a Slack that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from phasegate.sandbox.standins.slack_wire import Args, Message, SlackError, _render

EVENT_TYPE = re.compile(r"^[a-zA-Z0-9_]+$")
MAX_EVENT_TYPE = 255
DEFAULT_LIMIT, MAX_LIMIT = 100, 999  # Slack: "maximum of 999", fewer may be returned
CURSOR_PREFIX = "next_ts:"


def metadata_of(args: Args) -> dict[str, Any] | None:
    """`metadata` from chat.postMessage/chat.update arguments (a JSON string when form-encoded), checked:
    an object with a string `event_type` (letters, digits, underscores, at most 255) and an object
    `event_payload`. None when absent."""
    raw = args.get("metadata")
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SlackError("invalid_metadata_format") from None
    if not isinstance(raw, dict):
        raise SlackError("invalid_metadata_format")
    event_type, payload = raw.get("event_type"), raw.get("event_payload")
    problems = []
    if not isinstance(event_type, str) or not EVENT_TYPE.match(event_type) or len(event_type) > MAX_EVENT_TYPE:
        problems.append("[ERROR] event_type must match ^[a-zA-Z0-9_]+$, at most 255 characters "
                        "[json-pointer:/metadata/event_type]")
    if not isinstance(payload, dict):
        problems.append("[ERROR] event_payload must be an object [json-pointer:/metadata/event_payload]")
    if problems:
        raise SlackError("invalid_metadata_schema", problems)
    return {"event_type": event_type, "event_payload": copy.deepcopy(payload)}


def _flag(value: object) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _ts(value: object, error: str) -> Decimal:
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise SlackError(error) from None
    if not parsed.is_finite() or parsed < 0:
        raise SlackError(error)
    return parsed


def _limit(value: object) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(str(value))
    except ValueError:
        raise SlackError("invalid_limit") from None
    if limit < 1:
        raise SlackError("invalid_limit")
    return min(limit, MAX_LIMIT)


def cursor_for(ts: str) -> str:
    return base64.b64encode((CURSOR_PREFIX + ts).encode()).decode()


def _cursor(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        decoded = base64.b64decode(str(value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if not decoded.startswith(CURSOR_PREFIX):
        raise SlackError("invalid_cursor")
    return _ts(decoded[len(CURSOR_PREFIX):], "invalid_cursor")


def history(messages: Iterable[Message], args: Args) -> Args:
    """One page of a channel's top-level messages (thread replies are not in it), newest first.

    `oldest`/`latest` bound the page by ts (exclusive unless `inclusive`); `cursor` continues where
    the previous page's `response_metadata.next_cursor` left off, under the same bounds.
    `metadata` is in each message only with `include_all_metadata`.
    """
    oldest = _ts(args.get("oldest") or "0", "invalid_ts_oldest")
    latest = _ts(args["latest"], "invalid_ts_latest") if args.get("latest") else None
    inclusive, with_metadata = _flag(args.get("inclusive")), _flag(args.get("include_all_metadata"))
    limit, resume = _limit(args.get("limit")), _cursor(args.get("cursor"))

    def wanted(ts: Decimal) -> bool:
        above = ts >= oldest if inclusive else ts > oldest
        below = latest is None or (ts <= latest if inclusive else ts < latest)
        return above and below and (resume is None or ts <= resume)

    found = sorted((m for m in messages if m.thread_ts is None and wanted(Decimal(m.ts))),
                   key=lambda m: Decimal(m.ts), reverse=True)
    page, rest = found[:limit], found[limit:]
    rendered = []
    for message in page:
        shown = _render(message)
        if not with_metadata:
            shown.pop("metadata", None)
        rendered.append(shown)
    return {"messages": rendered, "has_more": bool(rest), "pin_count": 0,
            "response_metadata": {"next_cursor": cursor_for(rest[0].ts) if rest else ""}}

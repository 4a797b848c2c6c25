"""What arrives at the Slack endpoint, as bytes and text, before it is a request: the body read within
its cap, a form or JSON document decoded without trusting its nesting, and the key that names one
delivery. What the decoded document must hold is `phasegate.slack.inbound`'s to check.

Why its own unit: hostile input (deep nesting, NUL, unpaired surrogates, a client that hangs up) must be
refused with a clear 4xx before any handler sees it, never a 500 and never a row; and Socket Mode
envelopes are decoded here too, so that one too deep to decode is still acknowledged.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from urllib.parse import parse_qs

from fastapi import Request
from starlette.requests import ClientDisconnect

from phasegate.text import unstorable

MAX_BODY = 1_000_000  # Slack's interaction payloads are a few kilobytes
MAX_DEPTH = 32  # Slack's deepest payload (view.state.values.<block>.<action>.value) is about 8

_STRUCTURE = re.compile(r'["\[\]{}:,]')  # where a JSON string starts, and the brackets and separators


class Undecodable(ValueError):
    """Not a document Slack sends: not form-encoded, not JSON, nested too deeply, or holding text no
    ledger can store."""


def decode_json(text: str, *, depth: int = MAX_DEPTH) -> object:
    """The JSON document, nested at most `depth` deep, every string in it storable."""
    try:
        document = json.loads(text)
    except RecursionError:  # deeper than the decoder goes (about 1,000 on CPython)
        raise Undecodable("payload nested too deeply") from None
    except ValueError:
        raise Undecodable("expected JSON") from None
    if "\\u" not in text and unstorable(text) is None and text.count("{") + text.count("[") <= depth:
        # No walk needed: only a \u escape can make a NUL or a lone surrogate (the decoder refuses raw
        # control characters), and nothing nests deeper than the document has brackets.
        return document
    problem = malformed(document, depth)
    if problem is not None:
        raise Undecodable(problem)
    return document


def top_level_strings(text: str) -> dict[str, str]:
    """The string members at the top level of a JSON object, read without decoding anything nested:
    how a Socket Mode envelope too deep to decode still names its `envelope_id`. One pass; strings are
    skipped by the decoder's own string scanner, so brackets inside them do not count."""
    found: dict[str, str] = {}
    depth, key, previous, position = 0, None, "", 0
    while (match := _STRUCTURE.search(text, position)) is not None:
        token, position = match.group(), match.end()
        if token == '"':
            try:
                string, position = scanstring(text, position)
            except ValueError:  # an unterminated string: nothing further is readable
                break
            if depth == 1 and previous in ("{", ","):
                key = string
            elif depth == 1 and previous == ":" and key is not None:
                found[key], key = string, None
        elif token in "[{":
            depth += 1
        elif token in "]}":
            depth -= 1
        if depth <= 1:
            previous = token
    return found


@dataclass(frozen=True)
class Envelope:
    """A Socket Mode envelope: what Slack delivered (`kind`: "interactive", "slash_commands", ...) and the
    id its acknowledgement names. `payload` is None when the envelope could not be decoded (`problem`)."""

    envelope_id: str
    kind: object
    payload: object
    problem: str | None = None


def decode_envelope(text: str) -> Envelope | None:
    """The envelope a Socket Mode message carries; None for a message that is not one (hello,
    disconnect). An envelope too deep (or too broken) to decode still yields its id, so it is
    acknowledged: Slack resends an envelope it has no acknowledgement for."""
    try:
        document = json.loads(text)
    except (RecursionError, ValueError) as exc:
        found = top_level_strings(text)
        if "envelope_id" not in found:
            return None
        problem = "payload nested too deeply" if isinstance(exc, RecursionError) else "expected JSON"
        return Envelope(found["envelope_id"], found.get("type"), None, problem)
    if not isinstance(document, dict) or not isinstance(document.get("envelope_id"), str):
        return None
    return Envelope(document["envelope_id"], document.get("type"), document.get("payload"))


def decode_form(body: bytes) -> dict[str, str]:
    """A form-encoded body (an interaction's `payload=...`, a slash command's fields), first values only."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=bool(body), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise Undecodable("expected a form-encoded body") from None
    return {name: values[0] for name, values in fields.items()}


def decode_payload(body: bytes) -> object:
    """An interaction's body: the JSON document in its form field `payload`."""
    try:
        text = decode_form(body)["payload"]
    except (Undecodable, KeyError):
        raise Undecodable("expected a form field `payload` holding JSON") from None
    return decode_json(text)


def malformed(document: object, depth: int = MAX_DEPTH) -> str | None:
    """Why a decoded document is not something Slack sends (too deep, text no ledger can store), or None.

    Iterative, so a hostile document cannot exhaust the stack here either.
    """
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        node, level = stack.pop()
        if level > depth:
            return "payload nested too deeply"
        if isinstance(node, str):
            problem = unstorable(node)
            if problem is not None:
                return f"payload text unusable: {problem}"
        elif isinstance(node, dict):
            stack.extend((item, level + 1) for pair in node.items() for item in pair)
        elif isinstance(node, list):
            stack.extend((item, level + 1) for item in node)
    return None


def delivery_id(kind: str, *parts: object) -> str:
    """A fixed-length key naming one Slack delivery, so a repeat of it is recognised."""
    return f"{kind}:" + hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


class BodyRefused(ValueError):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


async def read_capped(request: Request) -> bytes:
    """The raw body; BodyRefused past MAX_BODY bytes (declared or streamed) without reading the rest,
    or when the client hangs up mid-body (then nothing is recorded and nobody is left to answer)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BodyRefused(413, "body too large")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise BodyRefused(413, "body too large")
    except ClientDisconnect:
        raise BodyRefused(400, "the client hung up before the body ended") from None
    return bytes(body)

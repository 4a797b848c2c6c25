"""What arrives at the Slack endpoint, before anything is recorded: the body read within its cap,
the payload decoded and checked for what Slack never sends, and the few fields taken from it.

Why its own unit: the endpoint must refuse hostile input (deep nesting, NUL, unpaired
surrogates, odd URLs, a client that hangs up) with a clear 4xx, never a 500 and never a row.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from starlette.requests import ClientDisconnect

from phasegate.text import unstorable

MAX_BODY = 1_000_000  # Slack's interaction payloads are a few kilobytes


class BadPayload(ValueError):
    pass


MAX_DEPTH = 32  # Slack's deepest payload (view.state.values.<block>.<action>.value) is about 8


def parse_payload(body: bytes) -> dict[str, Any]:
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise BadPayload("expected a form field `payload` holding JSON") from None
    except RecursionError:
        raise BadPayload("payload nested too deeply") from None
    problem = malformed(payload)
    if problem is not None:
        raise BadPayload(problem)
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), dict):
        raise BadPayload("payload has no user")
    if not isinstance(payload["user"].get("id"), str):
        raise BadPayload("payload has no user id")
    return payload


def malformed(document: object) -> str | None:
    """Why a decoded payload is not something Slack sends (too deep, text no ledger can store), or None.

    Iterative, so a hostile document cannot exhaust the stack here either.
    """
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return "payload nested too deeply"
        if isinstance(node, str):
            problem = unstorable(node)
            if problem is not None:
                return f"payload text unusable: {problem}"
        elif isinstance(node, dict):
            stack.extend((item, depth + 1) for pair in node.items() for item in pair)
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
    return None


def response_url_of(payload: dict[str, Any]) -> str | None:
    """The click's response_url if it is a plain http(s) URL; anything else is ignored, not fetched."""
    url = payload.get("response_url")
    if not isinstance(url, str) or len(url) > 2000:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    return url


def is_gate_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 9  # fits every backend's integer column


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

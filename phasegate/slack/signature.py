"""Slack request verification: HMAC-SHA256 over the raw body, a five-minute window, and a
refusal (never an exception) for anything malformed in the headers.

    verify(secret, body, timestamp_header, signature_header, now=time.time())  -> bool
"""

from __future__ import annotations

import hashlib
import hmac

WINDOW_SECONDS = 300
_MAX_TIMESTAMP_DIGITS = 12  # seconds since 1970 fit in 10 digits until the year 2286


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, timestamp: str | None, signature: str | None, *, now: float) -> bool:
    """True only for a well-formed, fresh request signed with `secret`."""
    if not secret or not timestamp or not signature:
        return False
    if len(timestamp) > _MAX_TIMESTAMP_DIGITS or not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        return False
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)

"""Slack request signatures: only a fresh request signed with the app's secret is accepted, and
anything malformed in the headers is a refusal, never an exception (the endpoint answers 401)."""

from __future__ import annotations

import pytest

from phasegate.slack.signature import sign, verify

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_790_000_000.0
TS = str(int(NOW))
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U0SPONSOR1%22%7D%7D"


def test_a_correctly_signed_body_verifies() -> None:
    assert verify(SECRET, BODY, TS, sign(SECRET, TS, BODY), now=NOW)


def test_signature_has_slack_format() -> None:
    signature = sign(SECRET, TS, BODY)
    assert signature.startswith("v0=") and len(signature) == 3 + 64


@pytest.mark.parametrize("position", [0, len(BODY) // 2, len(BODY) - 1])
def test_a_one_byte_change_to_the_body_fails(position: int) -> None:
    signature = sign(SECRET, TS, BODY)
    tampered = BODY[:position] + bytes([BODY[position] ^ 0x01]) + BODY[position + 1:]
    assert not verify(SECRET, tampered, TS, signature, now=NOW)


def test_a_wrong_secret_fails() -> None:
    assert not verify(SECRET, BODY, TS, sign(SECRET + "x", TS, BODY), now=NOW)


def test_a_signature_without_the_version_prefix_fails() -> None:
    bare = sign(SECRET, TS, BODY).removeprefix("v0=")
    assert not verify(SECRET, BODY, TS, bare, now=NOW)


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    """A captured signature cannot be replayed under a fresher timestamp."""
    old = str(int(NOW) - 200)
    assert not verify(SECRET, BODY, TS, sign(SECRET, old, BODY), now=NOW)


@pytest.mark.parametrize(("age", "ok"), [
    (0, True), (299, True), (300, True), (-299, True), (-300, True), (301, False), (-301, False), (86_400, False),
], ids=["now", "299s-old", "300s-old", "299s-ahead", "300s-ahead", "301s-old", "301s-ahead", "a-day-old"])
def test_the_five_minute_window(age: int, ok: bool) -> None:
    ts = str(int(NOW) - age)
    assert verify(SECRET, BODY, ts, sign(SECRET, ts, BODY), now=NOW) is ok


@pytest.mark.parametrize("timestamp", [
    "abc", "17900000x0", "-5", "", " ", f" {TS}", f"{TS}\n", "1.79e9", f"{TS}.0", "+" + TS, "5" * 5000, "١٢٣",
    "١٧٩٠٠٠٠٠٠٠", "１７９００００００００",
], ids=["letters", "letter-inside", "negative", "empty", "space", "leading-space", "trailing-newline",
        "exponent", "decimal", "plus", "5000-digits", "arabic-indic-123", "arabic-indic-now", "fullwidth-now"])
def test_a_malformed_timestamp_is_refused_without_raising(timestamp: str) -> None:
    """Signed with the malformed value itself, so only the timestamp check can refuse it."""
    assert verify(SECRET, BODY, timestamp, sign(SECRET, timestamp, BODY), now=NOW) is False


def test_a_negative_timestamp_is_refused_even_when_it_is_inside_the_window() -> None:
    assert verify(SECRET, BODY, "-5", sign(SECRET, "-5", BODY), now=0.0) is False


@pytest.mark.parametrize(("timestamp", "signature"), [
    (None, "v0=" + "0" * 64), (TS, None), (None, None), (TS, ""),
], ids=["no-timestamp", "no-signature", "neither", "empty-signature"])
def test_missing_headers_are_refused(timestamp: str | None, signature: str | None) -> None:
    assert verify(SECRET, BODY, timestamp, signature, now=NOW) is False


@pytest.mark.parametrize("signature", [
    "v0=" + "é" * 64, "v0=" + "０" * 64, "v0=🔑", "v0=" + "a" * 63 + "\u00a0",
], ids=["latin", "fullwidth", "emoji", "nbsp"])
def test_a_non_ascii_signature_is_refused_without_raising(signature: str) -> None:
    assert verify(SECRET, BODY, TS, signature, now=NOW) is False


def test_a_signature_of_the_wrong_length_fails() -> None:
    assert not verify(SECRET, BODY, TS, sign(SECRET, TS, BODY)[:-1], now=NOW)


def test_an_empty_signing_secret_never_verifies() -> None:
    """Even a request signed with the empty secret: an unconfigured app must accept nothing."""
    assert verify("", BODY, TS, sign("", TS, BODY), now=NOW) is False

"""Free text that people type (reasons, notes) before it reaches the ledger or a Slack message.

Why: PostgreSQL refuses NUL in text and neither backend can store an unpaired surrogate, so such
text would fail inside the transaction (a 500) instead of being refused; and a reason pasted into
a prompt's mrkdwn unescaped could ping `<!channel>`, fake a link or flip the text's direction for
everyone in the channel.
"""

from __future__ import annotations

from phasegate.errors import PolicyError

MAX_REASON = 3000  # the reason form's max_length in Slack
# Bidirectional overrides and isolates: shown to others, they reorder what the text appears to say.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"))


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored as it is, or None when it can."""
    if "\x00" in text:
        return "it contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it contains an unpaired surrogate (not valid Unicode text)"
    return None


def checked(field: str, text: str, limit: int = MAX_REASON) -> str:
    """`text` if the ledger can store it within `limit` characters; PolicyError saying why not."""
    problem = unstorable(text)
    if problem is not None:
        raise PolicyError(f"the {field} cannot be recorded: {problem}")
    if len(text) > limit:
        raise PolicyError(f"the {field} is {len(text)} characters; at most {limit} are recorded")
    return text


def mrkdwn(text: str) -> str:
    """`text` shown literally in Slack mrkdwn: &, < and > escaped as Slack's formatting rules ask,
    so `<!channel>` or `<http://x|y>` stay text; bidirectional overrides removed."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.translate(_BIDI)

"""Free text from outside (reasons and notes people type, names and titles from an engagement file,
Jira summaries and statuses) before it reaches the ledger or a Slack message.

Why: PostgreSQL refuses NUL in text and neither backend can store an unpaired surrogate, so such
text would fail inside the transaction (a 500) instead of being refused; and outside text put into
a Slack message as it is could ping `<!channel>`, fake a link or flip the text's direction for
everyone in the channel. Every Slack message renders outside text through `literal`.
"""

from __future__ import annotations

from phasegate.errors import PolicyError

MAX_REASON = 3000  # the reason form's max_length in Slack
# Shown to others, these reorder what the text appears to say (bidirectional embeddings, overrides,
# isolates and marks) or hide what it holds (zero-width space, word joiner, byte order mark,
# invisible operators, tag characters). Zero-width joiner and non-joiner stay: emoji sequences and
# several scripts need them, and they hide nothing.
_HIDDEN: dict[int, str | None] = {
    **dict.fromkeys(map(ord, "\u061c\u180e\u200b\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff")),
    **dict.fromkeys(range(0x202A, 0x202F)), **dict.fromkeys(range(0x2066, 0x2070)),
    **dict.fromkeys(range(0xE0000, 0xE0080)),
}
_ESCAPED = {**_HIDDEN, ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}


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


def literal(text: str, *, plain: bool = False) -> str:
    """`text` from outside as Slack should show it: as written, never as markup or a reordering.

    Slack parses mrkdwn and a message's notification `text` (what a push or the channel list shows):
    there &, < and > are escaped as its formatting rules ask, so `<!channel>`, `<@U123>` or
    `<https://x|click>` stay text. A plain_text field (a header, a button or form label) parses
    nothing and would show `&lt;` as typed, so `plain=True` leaves them. Either way, bidirectional
    controls and invisible characters are removed.

        literal("R&D <!here>")  ->  "R&amp;D &lt;!here&gt;"
    """
    return text.translate(_HIDDEN if plain else _ESCAPED)


# In Markdown, these make emphasis, code, links, images, tables, strike-through or HTML out of text
# that is not meant as any; `&` too, since `&#x202e;` is a character reference a renderer would turn
# back into a hidden control. Escaped inline: the exports put outside text after a label or in a cell,
# never at the start of a line, so the block markers (`#`, `>`, `-`, `1.`) mean nothing there.
_MARKDOWN = {**_HIDDEN, **{ord(c): "\\" + c for c in "\\`*_[]|~"}, ord("&"): "&amp;", ord("<"): "&lt;",
             ord(">"): "&gt;", **dict.fromkeys(map(ord, "\r\n\v\f\x85\u2028\u2029"), " ")}
# A spreadsheet takes a cell that starts with one of these for a formula (OWASP's "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def markdown(text: str) -> str:
    """`text` from outside as a Markdown export should show it: one line, as written, never as markup.

        markdown("go *now* <b>|</b>")  ->  "go \\*now\\* &lt;b&gt;\\|&lt;/b&gt;"
    """
    return text.translate(_MARKDOWN)


def csv_cell(text: str) -> str:
    """`text` from outside as a CSV export's cell: hidden controls removed, and a leading `'` where a
    spreadsheet would otherwise run it as a formula (`=HYPERLINK(...)`). The csv module quotes the rest.

        csv_cell("=1+1")  ->  "'=1+1"
    """
    shown = text.translate(_HIDDEN)
    return "'" + shown if shown.startswith(_FORMULA_START) else shown

"""What the person who clicked is told when an answer is refused or cannot be acted on.

An error's words may quote outside text (a cancellation's reason, a milestone named by a button, a
name from the engagement file), so they are shown literally (`phasegate.text.literal`); only the
deciders a GateClosed names stay mentions.

    render(exc, "Not recorded: ")  ->  "Not recorded: acme-churn was cancelled (… &lt;!here&gt; …)"
"""

from __future__ import annotations

from phasegate.errors import GateClosed
from phasegate.text import literal


def render(exc: Exception, prefix: str = "") -> str:
    text = literal(prefix + str(exc))
    for user in exc.mentions if isinstance(exc, GateClosed) else ():
        text = text.replace(literal(f"<@{user}>"), f"<@{user}>")
    return text

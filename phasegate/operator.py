"""Who ran a CLI command, and on which machine.

`--as U…` names a Slack user but proves nothing: anyone with a shell and the ledger can type any
id. So every CLI command that changes the ledger also records the operating-system account and
host that ran it, and the prompt and `gate show` display it beside the Slack id.

The account is the one the process runs as (its real uid in the password database), never
$LOGNAME or $USER: those are the caller's to set, and one shell could otherwise be recorded as two
people, one on each side of a quorum.
"""

from __future__ import annotations

import os
import pwd
import socket

from phasegate.configs import limits


def cli_operator() -> str:
    """`user@host` of this process (both clipped so the pair fits its ledger column)."""
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (some containers)
        user = f"uid{uid}"
    host = socket.gethostname() or "unknown-host"
    half = (limits.OPERATOR - 1) // 2
    return f"{user[:half]}@{host[:half]}"

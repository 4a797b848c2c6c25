"""Who ran a CLI command, and on which machine.

`--as U…` names a Slack user but proves nothing: anyone with a shell and the ledger can type any
id. So every answer and metric typed at the CLI also records the operating-system account and
host that ran the command, and the prompt and `gate show` display it beside the Slack id.
"""

from __future__ import annotations

import getpass
import os
import socket

from phasegate.configs import limits


def cli_operator() -> str:
    """`user@host` of this process (both clipped so the pair fits its ledger column)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = f"uid{os.getuid()}"
    host = socket.gethostname() or "unknown-host"
    half = (limits.OPERATOR - 1) // 2
    return f"{user[:half]}@{host[:half]}"

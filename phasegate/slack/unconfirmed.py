"""A click whose COMMIT was sent but not answered in time (a PostgreSQL that froze mid-COMMIT): it may
have been recorded, or not. The clicker is told so at once, within Slack's 3 s, and told which it was
once the ledger answers again (PostgreSQL's pg_xact_status of the transaction), through the click's
response_url, which works for 30 minutes: never recorded later without a word.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from phasegate.ledger.faults import commit_status
from phasegate.slack.deps import NOT_RECORDED, SlackDeps, log, tell

NOT_CONFIRMED = ("Not confirmed: the ledger stopped answering while recording your answer, so it may or may not "
                 "have been recorded. phasegate will tell you here which, once the ledger answers again.")
MAYBE = ("Not confirmed: the ledger stopped answering while recording this, so it may or may not have been "
         "recorded. Please look again in a minute before you repeat it.")
CONFIRMED = "Recorded after all: the ledger has confirmed your answer."
PATIENCE = 25 * 60.0  # seconds: a response_url works for 30 minutes
POLL = 1.0  # seconds between looks while the ledger does not answer


def confirm_later(deps: SlackDeps, xid: str | None, response_url: str | None,
                  on_committed: Callable[[], None] | None = None, *,
                  patience: float = PATIENCE, poll: float = POLL) -> threading.Thread | None:
    """Tell the clicker whether transaction `xid` was committed, once the ledger says, and then run
    `on_committed` (the click's follow-ups); on a thread of its own. No transaction id (nothing was
    written yet) means nothing was recorded."""
    if response_url is None:
        return None

    def run() -> None:
        if xid is None:
            tell(deps, response_url, NOT_RECORDED)
            return
        end = time.monotonic() + patience
        while time.monotonic() < end:
            status = commit_status(deps.after_sessions, xid)
            if status == "committed":
                tell(deps, response_url, CONFIRMED)
                if on_committed is not None:
                    on_committed()
                return
            if status == "aborted":
                tell(deps, response_url, NOT_RECORDED)
                return
            time.sleep(poll)  # no answer yet, or the transaction still in progress
        log.warning("transaction %s: the ledger did not answer within %g s; the clicker was not told", xid, patience)

    thread = threading.Thread(target=run, name="phasegate-confirm", daemon=True)
    thread.start()
    return thread

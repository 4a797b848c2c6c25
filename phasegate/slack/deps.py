"""What every Slack handler is given (`SlackDeps`), and the one way they all answer a clicker later.

The bottom of `phasegate.slack`: the gate and change-request handlers, the router above them and
the HTTP and Socket Mode entry points all import from here, and this imports none of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from phasegate.changes import operations as cr_operations
from phasegate.errors import EXPECTED
from phasegate.gates.refresher import Refresher
from phasegate.integrations.slack_chat import SlackChat
from phasegate.ledger.db import ACK_WITHIN
from phasegate.slack.acknowledge import ClickLine

log = logging.getLogger("phasegate.slack")
NOT_RECORDED = "Not recorded: the ledger is unavailable, please click again in a minute."


@dataclass
class SlackDeps:
    signing_secret: str
    sessions: sessionmaker[Session]
    chat: SlackChat
    resume: Callable[[str], object]
    clock: Callable[[], float] = field(default=time.time)
    start_change_request: Callable[[str, int], object] = field(default=cr_operations.start_flow)
    # The work after an answer is marked in the ledger with the answer (phasegate.ledger.followups) and
    # done by a refresher (phasegate.gates.refresher). `up`, `serve-slack` and the sandbox run it as a
    # process of its own and build these deps with `refresh_here=False`; otherwise one is made here,
    # on a thread the first answer starts, waking runs with `resume`.
    refresh_here: bool = True
    followups: Refresher | None = None
    # Connections for reads and writes after the answer, so that they never take one a click is
    # waiting for; None: the handlers' `sessions` (tests that need no separate pool).
    followup_sessions: sessionmaker[Session] | None = None
    clicks: ClickLine = field(default_factory=ClickLine)  # clicks wait for the ledger here, recorded in groups
    ack_within: float = ACK_WITHIN  # seconds: a click not handled by then is acknowledged, and finishes after

    def __post_init__(self) -> None:
        if self.refresh_here and self.followups is None:
            self.followups = Refresher(self.after_sessions, self.chat, self.resume)

    def refresh_soon(self) -> None:
        """An answer left a mark: the refresher in this process (if any) looks now rather than at its next poll."""
        if self.followups is not None:
            self.followups.poke()

    def close(self) -> None:
        """End the refresher of this process's own, if any (after the pass under way)."""
        if self.followups is not None:
            self.followups.close()

    @property
    def after_sessions(self) -> sessionmaker[Session]:
        """The ledger sessions for work done after the answer."""
        return self.followup_sessions or self.sessions


def tell(deps: SlackDeps, response_url: str | None, text: str) -> None:
    """Answer the clicker alone, through the interaction's response_url; a failure is logged."""
    if response_url:
        try:
            deps.chat.respond(response_url, text)
        except EXPECTED as exc:
            log.warning("could not answer the clicker: %s", exc)

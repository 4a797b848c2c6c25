"""What follows a recorded answer, wherever it came from (Slack, the CLI, the Prefect UI form).

`gates.answer` makes an answer a decision; this step then shows the gate as it now stands on its
Slack prompt, for everyone, and wakes the phase run if the answer completed the quorum. It runs
after the answer's own transaction has committed, so a failure here never loses the answer: the
problems are handed back for each caller to report in its own way (Slack logs them, the CLI says
them in one line, the Prefect UI path logs them on the flow run).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from integrations.slack_chat import SlackChat
from phasegate.errors import EXPECTED
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.prompts import refresh


def after_answer(sessions: sessionmaker[Session], chat: SlackChat, gate_id: int, *, decided: bool,
                 wake: Callable[[str], object] | None) -> list[str]:
    """Refresh the gate's prompt and, when `decided`, wake its run with `wake`; the problems met.

    Pass `wake=None` when the answer arrived inside the phase run itself (the Prefect UI form):
    that run is already awake and reads the ledger next.
    """
    problems: list[str] = []
    with transaction(sessions, write=False) as session:
        run = gates.by_id(session, gate_id).flow_run_id
    try:
        refresh(sessions, chat, gate_id)
    except EXPECTED as exc:
        problems.append(f"could not update the Slack prompt ({exc})")
    if decided and run and wake is not None:
        try:
            wake(run)
        except EXPECTED as exc:
            problems.append(str(exc))
    return problems

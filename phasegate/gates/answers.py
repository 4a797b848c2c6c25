"""What follows a recorded answer given at the CLI or in the Prefect UI form.

`gates.answer` makes an answer a decision, and marks its prompt (and its run, if it decided) for the
refresher in the same transaction (phasegate.ledger.followups); Slack answers leave the rest to the
refresher (phasegate.gates.refresher). The CLI and the Prefect UI path also take this step
themselves, at once: it shows the gate as it now stands on its Slack prompt, for everyone, and wakes
the phase run if the answer completed the quorum, so that the CLI can say in its line what happened.
It runs after the answer's own transaction has committed, so a failure here never loses the answer:
the problems are handed back for each caller to report in its own way (the CLI says them in one
line, the Prefect UI path logs them on the flow run), and the refresher's mark is still there.

When the run cannot be woken because the Prefect API is down, the decision still stands: the
approver is told NEXT_STEP_LATER (the CLI, in its line; Slack, ephemerally, by the refresher), and `phasegate up` wakes
the run the moment the API answers again (phasegate/ops/supervise.py), the gate watch at the latest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from phasegate.errors import EXPECTED
from phasegate.integrations.slack_chat import SlackChat
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.messages.prompts import refresh
from phasegate.orchestration.runs import PrefectUnreachable

NEXT_STEP_LATER = "the next step starts when the orchestrator is back"
RECORDED_NEXT_STEP_LATER = f"Recorded; {NEXT_STEP_LATER}."  # what the approver reads in Slack


@dataclass
class FollowUp:
    problems: list[str] = field(default_factory=list)
    orchestrator_down: bool = False  # the decision's run could not be woken: Prefect did not answer


def after_answer(sessions: sessionmaker[Session], chat: SlackChat, gate_id: int, *, decided: bool,
                 wake: Callable[[str], object] | None) -> FollowUp:
    """Refresh the gate's prompt and, when `decided`, wake its run with `wake`; the problems met.

    Pass `wake=None` when the answer arrived inside the phase run itself (the Prefect UI form):
    that run is already awake and reads the ledger next.
    """
    done = FollowUp()
    with transaction(sessions, write=False) as session:
        run = gates.by_id(session, gate_id).flow_run_id
    try:
        refresh(sessions, chat, gate_id)
    except EXPECTED as exc:
        done.problems.append(f"could not update the Slack prompt ({exc})")
    if decided and run and wake is not None:
        try:
            wake(run)
        except PrefectUnreachable as exc:
            done.orchestrator_down = True
            done.problems.append(str(exc))
        except EXPECTED as exc:
            done.problems.append(str(exc))
    return done

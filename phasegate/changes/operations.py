"""Change requests from the terminal and from Slack: file one and start its flow, answer one, take
one back. The ledger does the work under the gate policy; this module adds the Slack prompt
update and the nudges to the flow runs, the same way `phasegate.gates.operations` does for gates."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from phasegate.errors import EXPECTED, PolicyError, ServiceUnavailable
from phasegate.integrations.slack_chat import SlackChat
from phasegate.ledger import change_decisions, scope
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.messages import changes as cr_messages
from phasegate.orchestration.runs import PrefectRuns, wake
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Assessment, Draft
from phasegate.rules.drift import Drift
from phasegate.states import ChangeSource, Outcome, Via


@dataclass(frozen=True)
class Filed:
    cr_id: int
    number: int
    name: str
    assessment: Assessment
    created: bool  # False: a repeated delivery found the request filed before


def file(sessions: sessionmaker[Session], engagement_id: str, draft: Draft, *, requested_by: str,
         source: ChangeSource, delivery_id: str | None = None, operator: str | None = None) -> Filed:
    """Record and assess the request in one transaction; nothing is written if it is refused.
    `operator`: the user@host of the CLI command that filed it."""
    with transaction(sessions) as session:
        cr, created = crs.submit(session, engagement_id, draft, requested_by=requested_by, source=source,
                                 delivery_id=delivery_id, operator=operator)
        assessment = crs.assess(session, cr)
        return Filed(cr.id, cr.number, cr.name, assessment, created)


def start_flow(engagement_id: str, number: int) -> str:
    """Start (once) the flow run that prompts the approvers; its id. A run that died is replaced by
    the gate watch or `phasegate cr prompt` (phasegate/orchestration/recovery.py), under a new key."""
    return PrefectRuns().start_change_request(engagement_id, number, key=f"{engagement_id}-cr-{number}")


def after_decision(sessions: sessionmaker[Session], chat: SlackChat, cr_id: int, *, final: bool) -> list[str]:
    """Redraw the prompt; wake the request's flow when it is decided. Problems are returned, not raised:
    the answer is recorded whatever Slack or Prefect do next."""
    problems = []
    try:
        cr_messages.refresh(sessions, chat, cr_id)
    except EXPECTED as exc:
        problems.append(str(exc))
    with transaction(sessions) as session:
        run_id = crs.by_id(session, cr_id).flow_run_id
    if final and run_id:
        try:
            wake(run_id)
        except ServiceUnavailable as exc:
            problems.append(str(exc))
    return problems


def decide(rt: Runtime, cr_id: int, *, approver: str, outcome: Outcome, reason: str,
           operator: str | None) -> change_decisions.Answered:
    """An answer typed at the CLI; `operator`: the user@host that ran the command."""
    with transaction(rt.sessions) as session:
        result = change_decisions.answer(session, cr_id, approver=approver, outcome=outcome, reason=reason,
                                         via=Via.CLI, operator=operator)
    if result.recorded:
        problems = after_decision(rt.sessions, rt.chat, cr_id, final=result.decided is not None)
        if problems:
            raise ServiceUnavailable("answer recorded, but " + "; ".join(problems))
    return result


def withdraw(rt: Runtime, cr_id: int, *, by: str, reason: str, operator: str | None) -> None:
    with transaction(rt.sessions) as session:
        crs.withdraw(session, cr_id, by=by, reason=reason, operator=operator)
    problems = after_decision(rt.sessions, rt.chat, cr_id, final=True)
    if problems:
        raise ServiceUnavailable("withdrawal recorded, but " + "; ".join(problems))


def drift_of(rt: Runtime, engagement_id: str) -> Drift:
    """The running phase's scope drift: the ledger read in one transaction, Jira asked after it."""
    with transaction(rt.sessions) as session:
        row = get(session, engagement_id)
        phase = row.current_phase
        if phase is None:
            raise PolicyError(f"{engagement_id} has not started a phase, so it has no scope to drift from")
        engagement, known = config_of(row), scope.known(engagement_id, phase, session=session)
    tracker, unreachable = None, "Jira is not reachable"
    try:
        tracker = rt.tracker(engagement)
    except ServiceUnavailable as exc:
        unreachable = str(exc)
    return scope.check(engagement, phase, known, tracker, unreachable)

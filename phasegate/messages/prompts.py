"""What a gate's Slack prompt shows at any moment, rendered from the ledger alone."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Engagement
from phasegate.errors import InternalError, ServiceUnavailable
from phasegate.integrations.slack_chat import Mark, SlackChat
from phasegate.ledger import gates, handoff, spend
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.ledger.models import GateRow
from phasegate.messages import gates as messages
from phasegate.messages import marks, witness
from phasegate.rules import calendar, policy
from phasegate.states import GateState
from phasegate.text import literal


def names(engagement: Engagement) -> dict[str, str]:
    """Slack user id -> the name the engagement file gives (`Engagement.names`)."""
    return engagement.names()


def answer_lines(session: Session, gate: GateRow, who: dict[str, str] | None = None) -> list[str]:
    unmet = gates.snapshot_of(session, gate).unmet
    return [messages.answer_line(approver=d.approver, name=(who or {}).get(d.approver), side=d.side, role=d.role,
                                 outcome=d.outcome, via=d.via.value, reason=d.reason, unmet=unmet,
                                 operator=d.operator)
            for d in gates.decisions(session, gate.id)]


def pending(session: Session, gate: GateRow, engagement: Engagement, who: dict[str, str]) -> list[str]:
    """Approvers who have not answered yet, by name (the requester may not answer their own gate)."""
    answered = set(gates.latest_answers(gates.decisions(session, gate.id)))
    return [f"{literal(who.get(a.slack_user, a.slack_user))} (<@{a.slack_user}>)"
            for a in engagement.phases.of(gate.phase).gate.approvers
            if a.slack_user not in answered and a.slack_user != gate.requested_by]


def business_lines(engagement: Engagement, gate: GateRow, session: Session) -> list[str]:
    """The frozen metric values in the file's business terms, each beside its raw figure."""
    meanings = {m.name: m.meaning for m in engagement.metrics if m.meaning is not None}
    lines = []
    for m in gates.snapshot_of(session, gate).metrics:
        meaning = meanings.get(m.name)
        if meaning is not None and m.value is not None:
            lines.append(f"{meaning.figure(m.value)} ({m.name} {m.value:g})"
                         + (f": {meaning.means}" if meaning.means else ""))
    return lines


def answer_by(gate: GateRow, engagement: Engagement) -> str:
    """When the gate is escalated if still open, in the engagement's timezone."""
    config = engagement.phases.of(gate.phase).gate
    moment = calendar.business_moment(gate.opened_at, config.escalate_after_business_days, engagement.tz,
                                      config.reminder_hour).astimezone(engagement.tz)
    return f"{moment:%a %d %b %Y, %H:%M} {engagement.timezone} (then it is escalated)"


def render(session: Session, gate: GateRow, engagement: Engagement | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the gate's prompt as it should look now."""
    engagement = engagement or config_of(get(session, gate.engagement_id))
    snapshot = gates.snapshot_of(session, gate)
    title = f"{gate.phase.gate} {literal(engagement.name)}"
    who = names(engagement)
    answers = answer_lines(session, gate, who)
    browse = engagement.jira.url.rstrip("/") + "/browse/"
    if gate.state is GateState.OPEN:
        text = f"{gate.phase.gate} for {literal(engagement.name)}: {gate.phase.question} Your answer is asked for."
        blocks = messages.gate_prompt(
            title=gate.phase.gate, question=gate.phase.question, engagement=engagement.name, timebox=gate.timebox,
            quorum=policy.in_words(engagement.phases.of(gate.phase).gate), digest=gate.digest, gate_id=gate.id,
            outcomes=policy.OUTCOMES[gate.phase], snapshot=snapshot, answers=answers, because=gate.reopened_because,
            pending=pending(session, gate, engagement, who), due=answer_by(gate, engagement), browse_url=browse,
            names=who, budget=spend.status_of(session, gate.engagement_id, engagement=engagement).lines(),
            team=[f"{c.name} ({c.role}) {c.kind}: {c.reason}" for c in handoff.changes_before(session, gate)],
            business=business_lines(engagement, gate, session))
        return text, blocks
    if gate.state is GateState.STALE:
        text = f"{title}: approval went stale; see the reopened prompt"
        return text, messages.gate_stale(title=gate.phase.gate, question=gate.phase.question,
                                         engagement=engagement.name)
    if gate.outcome is None:
        raise InternalError(f"{gate.name} revision {gate.revision} is decided without an outcome")
    text = f"{title}: decided {gate.outcome.label}"
    blocks = messages.gate_decided(title=gate.phase.gate, question=gate.phase.question,
                                   engagement=engagement.name, outcome=gate.outcome, answers=answers,
                                   digest=gate.digest, snapshot=snapshot, browse_url=browse, names=who)
    stamped = witnessed_mark(session, gate)
    return text, blocks + ([witness.block(stamped)] if stamped is not None else [])


def witnessed_mark(session: Session, gate: GateRow) -> Mark | None:
    """A decided prompt's mark with the chain head it witnesses (None while the gate is open)."""
    if gate.state is not GateState.DECIDED:
        return None
    return witness.stamp(session, marks.gate_prompt(gate), gate.engagement_id)


def opened(gate: GateRow, engagement_name: str) -> str:
    """The line in the kickoff's thread that points to the prompt."""
    return f"{gate.phase.gate} for {literal(engagement_name)} is open for answers."


RETRY_BACKOFF = (0.2, 0.5, 1.0, 2.0)  # a passing Slack failure is retried after these pauses
ROUNDS = 10  # updates per refresh at most: each further answer refreshes the prompt itself


def refresh(sessions: sessionmaker[Session], chat: SlackChat, gate_id: int, *,
            backoff: tuple[float, ...] = RETRY_BACKOFF) -> None:
    """Bring the gate's posted prompt to the ledger's state for everyone (`chat.update`).

    Two answers refreshing at once can land out of order (the update sent first arrives last), so
    after each update the prompt is rendered again from the ledger and sent again if it changed:
    whoever refreshes last checks after its own update has landed, so the prompt ends as the ledger
    is. A failing `chat.update` (a 5xx, a timeout) is retried after each pause in `backoff`;
    ServiceUnavailable once those are used up.
    """
    sent: tuple[str, list[dict[str, Any]]] | None = None
    pauses = iter(backoff)
    for _ in range(ROUNDS + len(backoff)):
        with transaction(sessions, write=False) as session:
            gate = gates.by_id(session, gate_id)
            text, blocks = render(session, gate)
            channel, ts, mark = gate.channel, gate.message_ts, witnessed_mark(session, gate)
        if not ts or (text, blocks) == sent:
            return
        try:
            chat.update(channel, ts, text, blocks, mark=mark)
        except ServiceUnavailable:
            pause = next(pauses, None)
            if pause is None:
                raise
            time.sleep(pause)
            continue
        sent = (text, blocks)


def draw(sessions: sessionmaker[Session], chat: SlackChat, gate_id: int) -> None:
    """One render from the ledger and one `chat.update` (ServiceUnavailable if Slack fails): what the
    refresher does for each mark (phasegate.gates.refresher), however many answers made it. It never
    draws one prompt twice at once, and an answer recorded during the update leaves a new mark, so
    the prompt ends as the ledger is without `refresh`'s second look."""
    with transaction(sessions, write=False) as session:
        gate = gates.by_id(session, gate_id)
        text, blocks = render(session, gate)
        channel, ts, mark = gate.channel, gate.message_ts, witnessed_mark(session, gate)
    if ts:
        chat.update(channel, ts, text, blocks, mark=mark)

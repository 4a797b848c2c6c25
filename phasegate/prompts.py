"""What a gate's Slack prompt shows at any moment, rendered from the ledger alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from configs.schema import Engagement, Phase
from integrations.slack_chat import SlackChat
from phasegate import calendar, messages, policy
from phasegate.errors import InternalError
from phasegate.ledger import gates, spend
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.ledger.models import GateRow
from phasegate.states import GateState
from phasegate.text import mrkdwn


def names(engagement: Engagement) -> dict[str, str]:
    """Slack user id -> the name the engagement file gives, for every approver of every gate."""
    return {a.slack_user: a.name for p in Phase for a in engagement.phases.of(p).gate.approvers}


def answer_lines(session: Session, gate: GateRow, who: dict[str, str] | None = None) -> list[str]:
    lines = []
    for d in gates.decisions(session, gate.id):
        name = (who or {}).get(d.approver)
        person = f"{mrkdwn(name)} (<@{d.approver}>, {d.side} {d.role})" if name else f"<@{d.approver}> ({d.side}, {d.role})"
        by = f" (recorded from the CLI by {mrkdwn(d.operator)})" if d.operator else ""
        lines.append(f"{person} {d.outcome.label} via {d.via.value}{by}" + messages.quote_reason(d.reason))
    return lines


def pending(session: Session, gate: GateRow, engagement: Engagement, who: dict[str, str]) -> list[str]:
    """Approvers who have not answered yet, by name (the requester may not answer their own gate)."""
    answered = set(gates.latest_answers(gates.decisions(session, gate.id)))
    return [f"{who.get(a.slack_user, a.slack_user)} (<@{a.slack_user}>)"
            for a in engagement.phases.of(gate.phase).gate.approvers
            if a.slack_user not in answered and a.slack_user != gate.requested_by]


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
    title = f"{gate.phase.gate} {engagement.name}"
    who = names(engagement)
    answers = answer_lines(session, gate, who)
    browse = engagement.jira.url.rstrip("/") + "/browse/"
    if gate.state is GateState.OPEN:
        text = f"{gate.phase.gate} for {engagement.name}: {gate.phase.question} Evidence digest {gate.digest}"
        blocks = messages.gate_prompt(
            title=gate.phase.gate, question=gate.phase.question, engagement=engagement.name, timebox=gate.timebox,
            quorum=policy.in_words(engagement.phases.of(gate.phase).gate), digest=gate.digest, gate_id=gate.id,
            outcomes=policy.OUTCOMES[gate.phase], snapshot=snapshot, answers=answers, because=gate.reopened_because,
            pending=pending(session, gate, engagement, who), due=answer_by(gate, engagement), browse_url=browse,
            names=who, budget=spend.status_of(session, gate.engagement_id, engagement=engagement).lines())
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
    return text, blocks


def refresh(sessions: sessionmaker[Session], chat: SlackChat, gate_id: int) -> None:
    """Update the gate's posted prompt for everyone (`chat.update`); ServiceUnavailable if Slack fails."""
    with transaction(sessions) as session:
        gate = gates.by_id(session, gate_id)
        text, blocks = render(session, gate)
        channel, ts = gate.channel, gate.message_ts
    if ts:
        chat.update(channel, ts, text, blocks)

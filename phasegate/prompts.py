"""What a gate's Slack prompt shows at any moment, rendered from the ledger alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from configs.schema import Engagement
from integrations.slack_chat import SlackChat
from phasegate import messages, policy
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.ledger.models import GateRow
from phasegate.states import GateState


def answer_lines(session: Session, gate: GateRow) -> list[str]:
    waived = bool(gates.snapshot_of(session, gate).unmet)
    return [messages.answer_line(approver=d.approver, side=d.side, role=d.role, outcome=d.outcome,
                                 channel=d.channel.value, reason=d.reason, waived=waived)
            for d in gates.decisions(session, gate.id)]


def render(session: Session, gate: GateRow, engagement: Engagement | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the gate's prompt as it should look now."""
    engagement = engagement or config_of(get(session, gate.engagement_id))
    snapshot = gates.snapshot_of(session, gate)
    title = f"{gate.phase.gate} {engagement.name}"
    answers = answer_lines(session, gate)
    if gate.state is GateState.OPEN:
        text = f"{gate.phase.gate} for {engagement.name}: {gate.phase.question} Evidence digest {gate.digest}"
        blocks = messages.gate_prompt(
            title=gate.phase.gate, question=gate.phase.question, engagement=engagement.name, timebox=gate.timebox,
            quorum=policy.describe(engagement.phases.of(gate.phase).gate), digest=gate.digest, gate_id=gate.id,
            outcomes=policy.OUTCOMES[gate.phase], snapshot=snapshot, answers=answers, because=gate.reopened_because)
        return text, blocks
    if gate.state is GateState.STALE:
        text = f"{title}: approval went stale; see the reopened prompt"
        return text, messages.gate_stale(title=gate.phase.gate, question=gate.phase.question,
                                         engagement=engagement.name)
    assert gate.outcome is not None
    text = f"{title}: decided {gate.outcome.label}"
    blocks = messages.gate_decided(title=gate.phase.gate, question=gate.phase.question,
                                   engagement=engagement.name, outcome=gate.outcome, answers=answers,
                                   digest=gate.digest, snapshot=snapshot)
    return text, blocks


def refresh(sessions: sessionmaker[Session], chat: SlackChat, gate_id: int) -> None:
    """Update the gate's posted prompt for everyone (`chat.update`); ServiceUnavailable if Slack fails."""
    with transaction(sessions) as session:
        gate = gates.by_id(session, gate_id)
        text, blocks = render(session, gate)
        channel, ts = gate.channel, gate.message_ts
    if ts:
        chat.update(channel, ts, text, blocks)

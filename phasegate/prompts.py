"""What a gate's Slack prompt shows at any moment, rendered from the ledger alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from configs.schema import Engagement
from integrations import slack_blocks
from integrations.slack_chat import SlackChat
from phasegate import policy
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.ledger.models import GateRow
from phasegate.states import GateState


def _escaped(text: str) -> str:
    """Slack's three control characters, so text shows as typed and never pings or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def answer_lines(session: Session, gate: GateRow) -> list[str]:
    lines = []
    for d in gates.decisions(session, gate.id):
        reason = f": “{slack_blocks.clip(d.reason, 300)}”" if d.reason else ""
        by = f" (recorded from the CLI by {_escaped(d.operator)})" if d.operator else ""
        lines.append(f"<@{d.approver}> ({d.side}, {d.role}) {d.outcome.label} via {d.channel.value}{by}{reason}")
    return lines


def render(session: Session, gate: GateRow, engagement: Engagement | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the gate's prompt as it should look now."""
    engagement = engagement or config_of(get(session, gate.engagement_id))
    snapshot = gates.snapshot_of(session, gate)
    title = f"{gate.phase.gate} {engagement.name}"
    answers = answer_lines(session, gate)
    if gate.state is GateState.OPEN:
        text = f"{gate.phase.gate} for {engagement.name}: {gate.phase.question} Evidence digest {gate.digest}"
        blocks = slack_blocks.gate_prompt(
            title=gate.phase.gate, question=gate.phase.question, engagement=engagement.name, timebox=gate.timebox,
            quorum=policy.describe(engagement.phases.of(gate.phase).gate), digest=gate.digest, gate_id=gate.id,
            outcomes=policy.OUTCOMES[gate.phase], snapshot=snapshot, answers=answers, because=gate.reopened_because)
        return text, blocks
    if gate.state is GateState.STALE:
        text = f"{title}: approval went stale; see the reopened prompt"
        return text, [slack_blocks.header(f"{gate.phase.gate} · {gate.phase.question}"),
                      slack_blocks.section(f"*{engagement.name}* · approval is *stale*, gate reopened")]
    assert gate.outcome is not None
    text = f"{title}: decided {gate.outcome.label}"
    blocks = slack_blocks.gate_decided(title=gate.phase.gate, question=gate.phase.question,
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

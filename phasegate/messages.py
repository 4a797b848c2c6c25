"""What phasegate says in Slack: gate prompts with their evidence, kickoffs, the reason form.

The meaning (which icon a failed criterion gets, which outcomes a gate offers, which ids a
button carries) is decided here, in the core; `integrations.slack_blocks` only builds Block Kit
from the finished strings and keeps it within Slack's limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from integrations.slack_blocks import Block, Button, actions, clip, context, header, section, text_input_modal
from phasegate.evidence import MilestoneEvidence, Result, Snapshot
from phasegate.slack_ids import REASON_INPUT, Action, View, action_id, gate_block_id
from phasegate.states import Outcome

ICON = {Result.PASS: ":white_check_mark:", Result.FAIL: ":x:", Result.MISSING: ":grey_question:"}
STYLE: dict[Outcome, Literal["primary", "danger"]] = {Outcome.GO: "primary", Outcome.ACCEPT: "primary", Outcome.NO_GO: "danger"}


def _milestone_line(m: MilestoneEvidence) -> str:
    icon = ":white_check_mark:" if m.done else (":x:" if m.done is False else ":grey_question:")
    return (f"{icon} {m.title}{'' if m.required else ' (optional)'}"
            + (f" — {m.error}" if m.error else "")
            + (f" — attested by <@{m.attested_by}>" if m.attested_by else ""))


def evidence_blocks(snapshot: Snapshot) -> list[Block]:
    criteria = "\n".join(f"{ICON[c.result]} {c.label}: *{c.result.value}* (seen {c.seen})" for c in snapshot.criteria)
    milestones = "\n".join(_milestone_line(m) for m in snapshot.milestones)
    blocks = [section("*Exit criteria*\n" + (criteria or "none defined")),
              section("*Milestones*\n" + (milestones or "none defined"))]
    if snapshot.warnings:
        blocks.append(section("*Warnings*\n" + "\n".join(f":warning: {w}" for w in snapshot.warnings)))
    return blocks


def outcome_buttons(gate_id: int, outcomes: Sequence[Outcome]) -> list[Button]:
    return [Button(action_id(Action.GATE, o.value), o.label, str(gate_id), STYLE.get(o))
            for o in outcomes]


def gate_prompt(*, title: str, question: str, engagement: str, timebox: int, quorum: str, digest: str,
                gate_id: int, outcomes: Sequence[Outcome], snapshot: Snapshot, answers: Sequence[str] = (),
                because: str = "") -> list[Block]:
    blocks = [header(f"{title} · {question}"),
              section(f"*{engagement}* · timebox {timebox} · decided by {quorum}")]
    if because:
        blocks.append(section(f":rotating_light: *Reopened:* {because}"))
    blocks += evidence_blocks(snapshot)
    if answers:
        blocks.append(section("*Answers so far*\n" + "\n".join(answers)))
    blocks += actions(gate_block_id(gate_id), outcome_buttons(gate_id, outcomes))
    blocks.append(context(f"Evidence digest `{digest}`"))
    return blocks


def gate_decided(*, title: str, question: str, engagement: str, outcome: Outcome, answers: Sequence[str],
                 digest: str, snapshot: Snapshot) -> list[Block]:
    return [header(f"{title} · {question}"),
            section(f"*{engagement}* · *Decided: {outcome.label}*\n" + "\n".join(answers)),
            *evidence_blocks(snapshot),
            context(f"Decided on evidence digest `{digest}`")]


def gate_stale(*, title: str, question: str, engagement: str) -> list[Block]:
    return [header(f"{title} · {question}"), section(f"*{engagement}* · approval is *stale*, gate reopened")]


def kickoff(text: str, engagement_id: str, attestable: Sequence[tuple[str, str]]) -> list[Block]:
    """The kickoff message; items that accept an attestation get an "Attest" button each."""
    buttons = [Button(action_id(Action.ATTEST, key), f"Attest: {title}", engagement_id) for key, title in attestable]
    return [section(text), *actions("attest", buttons)]


def reason_modal(*, gate_id: int, outcome: Outcome, gate_title: str, waiver: bool = False) -> dict[str, Any]:
    """The reason form; as a waiver, it asks why the gate should pass although exit criteria are not met."""
    title = f"{outcome.label} with waiver" if waiver else f"{outcome.label} at {gate_title}"
    label = (f"Waiver: why {outcome.label} although exit criteria are not met (recorded in the ledger)" if waiver
             else "Reason (recorded in the ledger)")
    return text_input_modal(callback_id=View.GATE_REASON.value, private_metadata=f"{gate_id}:{outcome.value}",
                            title=title, label=label, input_id=REASON_INPUT)


def answer_line(*, approver: str, side: str, role: str, outcome: Outcome, channel: str, reason: str,
                waived: bool) -> str:
    """One answer on the prompt; a GO/ACCEPT given past unmet exit criteria shows its waiver."""
    label = f"{outcome.label} with waiver" if waived and outcome.passes and reason else outcome.label
    return f"<@{approver}> ({side}, {role}) {label} via {channel}" + quote_reason(reason)


def quote_reason(reason: str) -> str:
    return f": “{clip(reason, 300)}”" if reason else ""

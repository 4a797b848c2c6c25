"""Block Kit for phasegate's Slack messages, kept inside Slack's limits (50 blocks, 3,000-char
sections, 150-char headers, 2,000-char button values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from phasegate.evidence import Result, Snapshot
from phasegate.states import Outcome

Block = dict[str, Any]
SECTION_LIMIT = 3000
ICON = {Result.PASS: ":white_check_mark:", Result.FAIL: ":x:", Result.MISSING: ":grey_question:"}
STYLE = {Outcome.GO: "primary", Outcome.ACCEPT: "primary", Outcome.NO_GO: "danger"}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 2000)}]}


def evidence_blocks(snapshot: Snapshot) -> list[Block]:
    criteria = "\n".join(f"{ICON[c.result]} {c.label}: *{c.result.value}* (seen {c.seen})" for c in snapshot.criteria)
    milestones = "\n".join(
        f"{':white_check_mark:' if m.done else (':x:' if m.done is False else ':grey_question:')} "
        f"{m.title}{'' if m.required else ' (optional)'}"
        + (f" — {m.error}" if m.error else "")
        + (f" — attested by <@{m.attested_by}>" if m.attested_by else "")
        for m in snapshot.milestones
    )
    blocks = [section("*Exit criteria*\n" + (criteria or "none defined"))]
    blocks.append(section("*Milestones*\n" + (milestones or "none defined")))
    if snapshot.warnings:
        blocks.append(section("*Warnings*\n" + "\n".join(f":warning: {w}" for w in snapshot.warnings)))
    return blocks


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
    buttons = [{"type": "button", "action_id": f"gate:{o.value}", "value": str(gate_id),
                "text": {"type": "plain_text", "text": o.label}} | ({"style": STYLE[o]} if o in STYLE else {})
               for o in outcomes]
    blocks.append({"type": "actions", "block_id": f"gate-{gate_id}", "elements": buttons})
    blocks.append(context(f"Evidence digest `{digest}`"))
    return blocks


def gate_decided(*, title: str, question: str, engagement: str, outcome: Outcome, answers: Sequence[str],
                 digest: str, snapshot: Snapshot) -> list[Block]:
    return [header(f"{title} · {question}"),
            section(f"*{engagement}* · *Decided: {outcome.label}*\n" + "\n".join(answers)),
            *evidence_blocks(snapshot),
            context(f"Decided on evidence digest `{digest}`")]


def kickoff(text: str, engagement_id: str, attestable: Sequence[tuple[str, str]]) -> list[Block]:
    """The kickoff message; handover items that accept an attestation get an "Attest" button each."""
    blocks = [section(text)]
    buttons = [{"type": "button", "action_id": f"attest:{key}", "value": engagement_id,
                "text": {"type": "plain_text", "text": clip(f"Attest: {title}", 75)}} for key, title in attestable]
    for start in range(0, len(buttons), 25):
        blocks.append({"type": "actions", "block_id": f"attest-{start}", "elements": buttons[start:start + 25]})
    return blocks


def reason_modal(*, gate_id: int, outcome: Outcome, gate_title: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "gate_reason",
        "private_metadata": f"{gate_id}:{outcome.value}",
        "title": {"type": "plain_text", "text": clip(f"{outcome.label} at {gate_title}", 24)},
        "submit": {"type": "plain_text", "text": "Record"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason (recorded in the ledger)"},
            "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True, "max_length": 3000},
        }],
    }

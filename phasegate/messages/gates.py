"""What phasegate says in Slack: gate prompts with their evidence, kickoffs, the reason form.

The meaning (which icon a failed criterion gets, which outcomes a gate offers, which ids a
button carries) is decided here, in the core; `phasegate.integrations.slack_blocks` only builds Block Kit
from the finished strings and keeps it within Slack's limits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from phasegate.integrations.slack_blocks import (
    Block,
    Button,
    actions,
    clip,
    header,
    overflow,
    section,
    text_input_modal,
)
from phasegate.messages.ids import DIGEST_MENU, REASON_INPUT, Action, View, action_id, attest_value, gate_block_id
from phasegate.rules.evidence import MetricEvidence, MilestoneEvidence, Result, Snapshot
from phasegate.rules.policy import answer_label
from phasegate.rules.selection import SelectionEvidence
from phasegate.states import Outcome
from phasegate.text import literal

ICON = {Result.PASS: ":white_check_mark:", Result.FAIL: ":x:", Result.MISSING: ":grey_question:"}
STYLE: dict[Outcome, Literal["primary", "danger"]] = {Outcome.GO: "primary", Outcome.ACCEPT: "primary", Outcome.NO_GO: "danger"}


ISSUE_LINKS = 3  # Jira links per milestone line; the rest are counted


def _issue_links(m: MilestoneEvidence, browse_url: str) -> str:
    if not browse_url or not m.issues:
        return ""
    shown = [f"<{literal(browse_url + i['key'])}|{literal(i['key'])}> {literal(i.get('status') or '?')}"
             for i in m.issues[:ISSUE_LINKS]]
    more = len(m.issues) - ISSUE_LINKS
    return " — " + ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _not_done(m: MilestoneEvidence) -> str:
    """Why a Jira milestone is open: its first few issues that are not done, or left its scope."""
    if m.done is not False or not m.not_done:
        return ""
    more = len(m.not_done) - ISSUE_LINKS
    return " — not done: " + literal(", ".join(m.not_done[:ISSUE_LINKS])) + (f" and {more} more" if more > 0 else "")


def read_time(when: dt.datetime) -> str:
    """When a source was read, as the prompt says it: to the second, in UTC, with the date (a prompt
    is read for days)."""
    return f"{when.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def _milestone_line(m: MilestoneEvidence, browse_url: str = "", names: Mapping[str, str] | None = None) -> str:
    icon = ":white_check_mark:" if m.done else (":x:" if m.done is False else ":grey_question:")
    who = literal((names or {}).get(m.attested_by or "", ""))
    return (f"{icon} {literal(m.title)}{'' if m.required else ' (optional)'}"
            + (f" — {literal(m.error)}" if m.error else "")
            + _not_done(m)
            + _issue_links(m, browse_url)
            + (f" — attested by {who + ' ' if who else ''}<@{m.attested_by}>" if m.attested_by else "")
            + (f" · Jira read {read_time(m.read_at)}" if m.source == "jira" else ""))


def _metric_line(m: MetricEvidence) -> str:
    seen = f"{m.value:g}" if m.value is not None else f"missing ({literal(m.error or 'not read')})"
    where = "submitted with `phasegate metric submit`, ledger read" if m.source == "manual" else f"{m.source} read"
    return f"{literal(m.name)}: {seen} — {where} {read_time(m.read_at)}"


def digest_block(digest: str, label: str = "Evidence digest") -> Block:
    """A details line for whoever checks the trail: the digest shortened to 12 characters, the full
    value one click away in the "⋯" menu; a sponsor reads past it."""
    return section(f"_Details: the evidence is frozen for the decision ({label.lower()} `{digest[:12]}…`, "
                   "full value in the menu)._", accessory=overflow(DIGEST_MENU, [(digest, "digest")]))


def role_words(side: str, role: str) -> str:
    """`client sponsor`, `vendor lead` (not "vendor vendor lead"): the side unless the role says it."""
    return role if role.lower().startswith(side.lower()) else f"{side} {role}"


def timebox_words(timebox: int) -> str:
    """Timebox 1 is the plan; a later one is what an EXTEND bought."""
    if timebox <= 1:
        return "as planned"
    return "after one extension" if timebox == 2 else f"after {timebox - 1} extensions"


def evidence_blocks(snapshot: Snapshot, browse_url: str = "", names: Mapping[str, str] | None = None) -> list[Block]:
    """`browse_url` (the Jira site + "/browse/") turns issue keys into links; `names` maps Slack ids to names."""
    criteria = "\n".join(f"{ICON[c.result]} {literal(c.label)}: *{c.result.value}* (seen {literal(c.seen)})" for c in snapshot.criteria)
    milestones = "\n".join(_milestone_line(m, browse_url, names) for m in snapshot.milestones)
    blocks = [section("*Exit criteria*\n" + (criteria or "none defined")),
              section("*Milestones*\n" + (milestones or "none defined"))]
    if snapshot.metrics:
        blocks.append(section("*Metrics*\n" + "\n".join(_metric_line(m) for m in snapshot.metrics)))
    if snapshot.warnings:
        blocks.append(section("*Warnings*\n" + "\n".join(f":warning: {literal(w)}" for w in snapshot.warnings)))
    if snapshot.selection is not None:
        blocks += selection_blocks(snapshot.selection)
    return blocks


ANSWER_SHOWN = 240  # characters of one due-diligence answer on the prompt; the snapshot keeps it whole


def selection_blocks(selection: SelectionEvidence) -> list[Block]:
    """G0's "should we sign, and with whom?": red flags first (each makes GO a waiver), then the vendor's
    answers, the sourcing decision, the IP terms and the named individuals. All outside text."""
    flags = set(selection.red_flags)
    return [section(f"*{heading}*\n" + ("\n".join(
        f"{':triangular_flag_on_post:' if line in flags else '•'} {literal(clip(line, ANSWER_SHOWN))}"
        for line in lines) or "none given")) for heading, lines in selection.sections()]


def outcome_buttons(gate_id: int, outcomes: Sequence[Outcome]) -> list[Button]:
    return [Button(action_id(Action.GATE, o.value), o.label, str(gate_id), STYLE.get(o))
            for o in outcomes]


def gate_prompt(*, title: str, question: str, engagement: str, timebox: int, quorum: str, digest: str,
                gate_id: int, outcomes: Sequence[Outcome], snapshot: Snapshot, answers: Sequence[str] = (),
                because: str = "", pending: Sequence[str] = (), due: str = "", browse_url: str = "",
                names: Mapping[str, str] | None = None, budget: Sequence[str] = (),
                team: Sequence[str] = (), business: Sequence[str] = ()) -> list[Block]:
    """The prompt a sponsor can read: the quorum rule in words, who answered and who is pending (by
    name), the date to answer by, Jira links with their status, the budget lines (`budget`, whose `*bold*` marks an overrun),
    and the digest one click away. Outside text is rendered here (phasegate.text.literal); `answers`
    come rendered by `answer_line`."""
    lines = [f"*{literal(engagement)}* · {timebox_words(timebox)}", quorum]
    if due:
        lines.append(f"Please answer by {due}.")
    blocks = [header(f"{title} · {question}"), section("\n".join(lines))]
    if because:
        blocks.append(section(f":rotating_light: *Reopened:* {literal(because)}"))
    blocks += evidence_blocks(snapshot, browse_url, names)
    if business:  # the metrics in the file's business terms; outside text unrendered
        blocks.append(section("*In business terms*\n" + "\n".join(literal(line) for line in business)))
    if budget:
        blocks.append(section("*Budget*\n" + "\n".join(literal(line) for line in budget)))
    if team:  # `team`: the vendor's team changes since the previous gate, outside text unrendered
        blocks.append(section("*Vendor team changes since the last gate*\n"
                              + "\n".join(f":arrows_counterclockwise: {literal(line)}" for line in team)))
    people = []
    if answers:
        people.append("*Answered*\n" + "\n".join(answers))
    if pending:
        people.append("*Waiting for* " + ", ".join(pending))
    if people:
        blocks.append(section("\n".join(people)))
    blocks += actions(gate_block_id(gate_id), outcome_buttons(gate_id, outcomes))
    blocks.append(digest_block(digest))
    return blocks


def gate_decided(*, title: str, question: str, engagement: str, outcome: Outcome, answers: Sequence[str],
                 digest: str, snapshot: Snapshot, browse_url: str = "",
                 names: Mapping[str, str] | None = None) -> list[Block]:
    return [header(f"{title} · {question}"),
            section(f"*{literal(engagement)}* · *Decided: {outcome.label}*\n" + "\n".join(answers)),
            *evidence_blocks(snapshot, browse_url, names),
            digest_block(digest, "Decided on evidence digest")]


def gate_stale(*, title: str, question: str, engagement: str) -> list[Block]:
    return [header(f"{title} · {question}"), section(f"*{literal(engagement)}* · approval is *stale*, gate reopened")]


def kickoff(text: str, engagement_id: str, phase: str, attestable: Sequence[tuple[str, str]]) -> list[Block]:
    """The kickoff message; items that accept an attestation get an "Attest" button each, whose
    value names the engagement and the phase (`acme-churn:poc`), never who may attest."""
    buttons = [Button(action_id(Action.ATTEST, key), f"Attest: {literal(title, plain=True)}",
                      attest_value(engagement_id, phase))
               for key, title in attestable]
    return [section(text), *actions("attest", buttons)]


def reason_modal(*, gate_id: int, outcome: Outcome, gate_title: str, waives: str = "") -> dict[str, Any]:
    """The reason form; as a waiver, it asks why the gate should pass although `waives` (exit criteria
    not met, red flags standing: phasegate.rules.policy.what_stands)."""
    title = f"{outcome.label} with waiver" if waives else f"{outcome.label} at {gate_title}"
    label = (f"Waiver: why {outcome.label} although {waives} (recorded in the ledger)" if waives
             else "Reason (recorded in the ledger)")
    return text_input_modal(callback_id=View.GATE_REASON.value, private_metadata=f"{gate_id}:{outcome.value}",
                            title=title, label=label, input_id=REASON_INPUT)


def answer_line(*, approver: str, name: str | None, side: str, role: str, outcome: Outcome, via: str, reason: str,
                unmet: Sequence[str], operator: str | None) -> str:
    """One answer on the prompt, by name where the file gives one; a GO/ACCEPT given past unmet exit
    criteria shows its waiver, a CLI answer who really ran the command, and a Prefect UI answer that
    nobody vouched for the approver it names."""
    person = (f"{literal(name)} (<@{approver}>, {literal(role_words(side, role))})" if name
              else f"<@{approver}> ({literal(role_words(side, role))})")
    label = answer_label(outcome, unmet, reason)
    if via == "prefect_ui":  # Prefect's own server has no users: the Slack id was typed into its form
        by = " (the Slack id was typed into the Prefect UI's form, which does not say who typed it)"
    else:
        by = f" (recorded from the CLI by {literal(operator)})" if operator else ""
    return f"{person} {label} via {via}{by}" + quote_reason(reason)


def quote_reason(reason: str) -> str:
    return f": “{literal(clip(reason, 300))}”" if reason else ""

"""An engagement's record for a steering committee, as Markdown or CSV (`phasegate audit export`).

What the committee minutes: each gate revision with its evidence digest and every answer given at it
(who, by name beside the Slack id, on which side and in which role, what, why, when and through which
channel), a GO given past unmet exit criteria marked "GO with waiver" with the criteria it waived and
the waiver's text; every change request with its answers and what it did to the baseline; spend
against the budget's caps; and the audit chain's head (events, hash, whether it is witnessed in
Slack) in the words `audit verify` uses, an anchor outside the database. Rendered from what
`phasegate.ledger.history.decision_history` and `phasegate.messages.witness.check` read; everything
people typed or the engagement file gives goes through `phasegate.text` for the format.
"""

from __future__ import annotations

from phasegate.ledger.history import Answer, ChangeRecord, GateHistory, History
from phasegate.ledger.witness import WitnessCheck
from phasegate.reports import audit_csv
from phasegate.reports.audit_words import currency, effect, gate_title, head_words, person
from phasegate.rules.policy import outcome_label
from phasegate.states import ExportFormat
from phasegate.text import markdown


def own(text: str) -> str:
    """phasegate's own words (the chain head, where a witness was read, why it could not be): kept one
    line and out of the table's way, but not escaped, so they read as `audit verify` prints them."""
    return text.replace("|", "\\|").replace("\n", " ")


def answers_table(h: History, answers: list[Answer]) -> list[str]:
    lines = ["", "| When | Approver | Side | Role | Answer | Reason or waiver | Channel |",
             "|---|---|---|---|---|---|---|"]
    for a in answers:
        via = a.channel + (f" (recorded by {a.operator})" if a.operator else "")
        lines.append(f"| {a.when:%Y-%m-%d %H:%M} UTC | {markdown(person(h, a.approver))} | {markdown(a.side)} "
                     f"| {markdown(a.role)} | {a.answer} | {markdown(a.reason) or '-'} | {markdown(via)} |")
    return lines


def chain_lines(h: History, w: WitnessCheck) -> list[str]:
    """Whether the chain verified, its head in `audit verify`'s words, and the Slack messages that witnessed it."""
    problems = h.chain.problems + w.problems
    if problems:
        lines = [f"**Audit chain broken ({len(problems)} problems; run `phasegate audit verify "
                 f"{markdown(h.engagement_id)}`):**", *[f"- {markdown(p)}" for p in problems]]
    else:
        state = "intact" if w.not_checked is None else "consistent in the database (witness not checked)"
        lines = [f"Audit chain {state}: {h.chain.events} events, head #{h.chain.head_seq} `{h.chain.head_hash}`."]
    lines += ["", "## Chain head and its witnesses", "", f"- Head: {own(head_words(h.chain, w))}"]
    if w.not_checked is not None:
        lines.append(f"- **Witness not checked:** {own(w.not_checked)}")
    elif w.witnesses:
        lines.append(f"- Checked against {len(w.witnesses)} Slack message{'s' if len(w.witnesses) > 1 else ''}:")
        lines += [f"  - {own(x.where)}: #{x.seq} `{x.hash}`" for x in w.witnesses]
    return lines


def gate_lines(h: History, entry: GateHistory) -> list[str]:
    g = entry.gate
    outcome = outcome_label(g.outcome, entry.waived) if g.outcome else ""
    lines = ["", f"### {gate_title(g)}", "", f"- State: {g.state.value}" + (f", outcome {outcome}" if outcome else ""),
             f"- Opened: {g.opened_at:%Y-%m-%d %H:%M} UTC"
             + (f"; decided: {g.decided_at:%Y-%m-%d %H:%M} UTC" if g.decided_at else ""),
             f"- Evidence digest: `{g.digest}`"]
    if entry.waived:
        lines.append(f"- **Waived exit criteria:** {markdown('; '.join(entry.unmet))}")
        lines += [f"- **Waiver** by {markdown(person(h, a.approver))}: {markdown(a.reason)}"
                  for a in entry.answers if a.waiver and a.outcome is g.outcome]
    if entry.evidence_warning:
        lines.append(f"- **Warning:** {markdown(entry.evidence_warning)}")
    if g.reopened_because:
        lines.append(f"- Reopened because: {markdown(g.reopened_because)}")
    return lines + (answers_table(h, entry.answers) if entry.answers else ["", "No answers recorded."])


def change_lines(h: History, rec: ChangeRecord) -> list[str]:
    cr = rec.entry
    decided = f" on {cr.decided:%Y-%m-%d %H:%M} UTC" if cr.decided else ""
    lines = ["", f"### CR-{cr.number} {markdown(cr.title)}: {cr.state.value}{decided}", "",
             f"- Filed by {markdown(person(h, cr.requested_by))} via {cr.source.value} on {cr.filed:%Y-%m-%d}, "
             f"for the {cr.phase.value}" + (f" (revision {rec.revision})" if rec.revision > 1 else ""),
             f"- Effect on the baseline: {markdown(effect(rec, currency(h)))}"]
    if cr.reason:
        lines.append(f"- Reason it was {cr.state.value}: {markdown(cr.reason)}")
    return lines + (answers_table(h, rec.answers) if rec.answers else ["", "No answers recorded."])


def spend_lines(h: History) -> list[str]:
    lines = ["", "## Spend against the budget", ""]
    if h.budget is not None:
        lines += [f"- {markdown(line.replace('*', ''))}" for line in h.budget.lines()]
        lines += [f"- **Over:** {markdown(line.label)}" for line in h.budget.over]
    if not h.spend:
        return [*lines, "", "No spend recorded yet."]
    lines += ["", "| When | Phase | Amount | Recorded by | Note |", "|---|---|---|---|---|"]
    for s in h.spend:
        by = person(h, s.by) + (f" (from the CLI by {s.operator})" if s.operator else "")
        exact = f"{s.amount:,.2f}".removesuffix(".00")  # an entry to the cent, as recorded
        lines.append(f"| {s.when:%Y-%m-%d} | {s.phase.value} | {exact} {markdown(currency(h))} "
                     f"| {markdown(by)} | {markdown(s.note) or '-'} |")
    return lines


def as_markdown(h: History, w: WitnessCheck) -> str:
    lines = [f"# Decision history: {markdown(h.name)} ({markdown(h.engagement_id)})", "", *chain_lines(h, w)]
    lines += ["", "## Gate decisions"]
    for entry in h.gates:
        lines += gate_lines(h, entry)
    if not h.gates:
        lines += ["", "No gate opened yet."]
    lines += ["", "## Change requests"]
    for rec in h.changes:
        lines += change_lines(h, rec)
    if not h.changes:
        lines += ["", "No change requests."]
    lines += spend_lines(h)
    return "\n".join(lines) + "\n"


def render(h: History, fmt: ExportFormat, w: WitnessCheck) -> str:
    """Markdown to read; CSV, one row per answer, spend entry, budget line and the chain head, to sort and filter."""
    return as_markdown(h, w) if fmt is ExportFormat.MD else audit_csv.as_csv(h, w)

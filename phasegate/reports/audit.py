"""An engagement's decision history for a steering committee, as Markdown or CSV.

Each gate revision with its evidence digest, and every answer given at it: who, on which side and
in which role, what, why, when and through which channel. The Markdown also states whether the
audit chain verified, its head, and the heads witnessed in Slack it was checked against (or why they
could not be read), which the committee can minute as an anchor outside the database. Rendered from
what `phasegate.ledger.history.decision_history` and `phasegate.messages.witness.check` read.
"""

from __future__ import annotations

import csv
import io

from phasegate.ledger.history import Answer, GateRecord, History
from phasegate.ledger.witness import WitnessCheck
from phasegate.states import ExportFormat


def _gate_title(g: GateRecord) -> str:
    return f"{g.phase.gate} ({g.phase.value}), timebox {g.timebox}, revision {g.revision}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _when(a: Answer) -> str:
    return f"{a.when:%Y-%m-%d %H:%M:%S} UTC"


def witness_lines(h: History, w: WitnessCheck) -> list[str]:
    """The chain head and the Slack messages that witnessed it, for the committee's minutes."""
    lines = ["", "## Chain head and its witnesses", "", f"- Head: #{h.chain.head_seq} `{h.chain.head_hash}`"]
    if w.not_checked is not None:
        return [*lines, f"- **Witness not checked:** {_cell(w.not_checked)}"]
    if not w.witnesses:
        return [*lines, "- No witness in Slack yet."]
    lines.append(f"- Checked against {len(w.witnesses)} Slack message{'s' if len(w.witnesses) > 1 else ''}:")
    return lines + [f"  - {_cell(x.where)}: #{x.seq} `{x.hash}`" for x in w.witnesses]


def markdown(h: History, w: WitnessCheck) -> str:
    lines = [f"# Decision history: {h.name} ({h.engagement_id})", ""]
    problems = h.chain.problems + w.problems
    if not problems:
        state = "intact" if w.not_checked is None else "consistent in the database (witness not checked)"
        lines.append(f"Audit chain {state}: {h.chain.events} events, head #{h.chain.head_seq} `{h.chain.head_hash}`.")
    else:
        lines.append(f"**Audit chain broken ({len(problems)} problems; run `phasegate audit verify "
                     f"{h.engagement_id}`):**")
        lines += [f"- {_cell(p)}" for p in problems]
    lines += witness_lines(h, w)
    for entry in h.gates:
        g = entry.gate
        lines += ["", f"## {_gate_title(g)}", "",
                  f"- State: {g.state.value}" + (f", outcome {g.outcome.label}" if g.outcome else ""),
                  f"- Opened: {g.opened_at:%Y-%m-%d %H:%M} UTC"
                  + (f"; decided: {g.decided_at:%Y-%m-%d %H:%M} UTC" if g.decided_at else ""),
                  f"- Evidence digest: `{g.digest}`"]
        if entry.evidence_warning:
            lines.append(f"- **Warning:** {entry.evidence_warning}")
        if g.reopened_because:
            lines.append(f"- Reopened because: {g.reopened_because}")
        if not entry.answers:
            lines += ["", "No answers recorded."]
            continue
        lines += ["", "| When | Approver | Side | Role | Answer | Reason | Channel |", "|---|---|---|---|---|---|---|"]
        for a in entry.answers:
            lines.append(f"| {_when(a)} | {_cell(a.approver)} | {a.side} | {_cell(a.role)} | {a.outcome.label} "
                         f"| {_cell(a.reason) or '-'} | {a.channel} |")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("engagement", "gate_id", "gate", "phase", "timebox", "revision", "gate_state", "gate_outcome",
               "evidence_digest", "evidence_warning", "answered_at", "approver", "side", "role", "answer", "reason",
               "channel")


def csv_text(h: History) -> str:
    """One row per answer; a gate without answers still has one row, with the answer columns empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in h.gates:
        g = entry.gate
        gate_cells = [h.engagement_id, g.id, g.phase.gate, g.phase.value, g.timebox, g.revision, g.state.value,
                      g.outcome.label if g.outcome else "", g.digest, entry.evidence_warning or ""]
        rows = [[_when(a), a.approver, a.side, a.role, a.outcome.label, a.reason, a.channel] for a in entry.answers]
        for answer_cells in rows or [[""] * 7]:
            writer.writerow(gate_cells + answer_cells)
    return buffer.getvalue()


def render(h: History, fmt: ExportFormat, w: WitnessCheck) -> str:
    """The Markdown carries the chain head and its witnesses; the CSV holds the answers only."""
    return markdown(h, w) if fmt is ExportFormat.MD else csv_text(h)

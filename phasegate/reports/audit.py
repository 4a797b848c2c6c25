"""An engagement's decision history for a steering committee, as Markdown or CSV.

Each gate revision with its evidence digest, and every answer given at it: who, on which side and
in which role, what, why, when and through which channel. The Markdown also states whether the
audit chain verified and its head hash, which the committee can minute as an anchor outside the
database. Rendered from what `phasegate.ledger.history.decision_history` read.
"""

from __future__ import annotations

import csv
import io

from phasegate.ledger.history import Answer, GateRecord, History
from phasegate.states import ExportFormat


def _gate_title(g: GateRecord) -> str:
    return f"{g.phase.gate} ({g.phase.value}), timebox {g.timebox}, revision {g.revision}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _when(a: Answer) -> str:
    return f"{a.when:%Y-%m-%d %H:%M:%S} UTC"


def markdown(h: History) -> str:
    lines = [f"# Decision history: {h.name} ({h.engagement_id})", ""]
    if h.chain.intact:
        lines.append(f"Audit chain intact: {h.chain.events} events, head #{h.chain.head_seq} `{h.chain.head_hash}`.")
    else:
        lines.append(f"**Audit chain broken ({len(h.chain.problems)} problems; run `phasegate audit verify "
                     f"{h.engagement_id}`):**")
        lines += [f"- {_cell(p)}" for p in h.chain.problems]
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


def render(h: History, fmt: ExportFormat) -> str:
    return markdown(h) if fmt is ExportFormat.MD else csv_text(h)

"""The steering committee's record (phasegate.reports.audit) as one CSV table, to sort and filter.

One row per record, its kind in `record`: `gate` (one row per answer; a gate without answers still
has one, with the answer columns empty), `change_request` (likewise), `spend` (one per entry),
`budget` (one per budget line) and `chain_head` (one, last: the head in `audit verify`'s words in
`note`, its hash in `reference`). Cells a record does not use stay empty. Every cell holding text
from people or the engagement file goes through `phasegate.text.csv_cell`, so a spreadsheet never
runs it as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from phasegate.ledger.history import Answer, History
from phasegate.ledger.witness import WitnessCheck
from phasegate.reports.audit_words import chain_state, currency, effect, head_words
from phasegate.rules.policy import outcome_label
from phasegate.text import csv_cell

COLUMNS = ("record", "engagement", "subject", "phase", "timebox", "revision", "state", "outcome", "evidence_digest",
           "evidence_warning", "waived_criteria", "baseline_effect", "when", "approver", "name", "side", "role",
           "answer", "reason", "channel", "amount", "currency", "note", "reference")


def _when(value: object) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _answer(h: History, a: Answer) -> dict[str, object]:
    return {"when": _when(a.when), "approver": a.approver, "name": h.names.get(a.approver, ""), "side": a.side,
            "role": a.role, "answer": a.answer, "reason": a.reason,
            "channel": a.channel + (f" (recorded by {a.operator})" if a.operator else "")}


def _rows(h: History, subject: dict[str, object], answers: list[Answer]) -> list[dict[str, object]]:
    """The subject's row once per answer, or once with the answer columns empty."""
    return [subject | _answer(h, a) for a in answers] or [subject]


def _records(h: History, w: WitnessCheck) -> Iterator[dict[str, object]]:
    cur = currency(h)
    for entry in h.gates:
        g = entry.gate
        gate: dict[str, object] = {"record": "gate", "subject": g.phase.gate, "phase": g.phase.value, "timebox": g.timebox,
                "revision": g.revision, "state": g.state.value,
                "outcome": outcome_label(g.outcome, entry.waived) if g.outcome else "",
                "evidence_digest": g.digest, "evidence_warning": entry.evidence_warning or "",
                "waived_criteria": "; ".join(entry.unmet) if entry.waived else ""}
        yield from _rows(h, gate, entry.answers)
    for rec in h.changes:
        cr = rec.entry
        change: dict[str, object] = {"record": "change_request", "subject": f"CR-{cr.number} {cr.title}", "phase": cr.phase.value,
                  "revision": rec.revision, "state": cr.state.value, "baseline_effect": effect(rec, cur),
                  "when": _when(cr.decided or cr.filed), "note": cr.reason,
                  "reference": f"baseline v{cr.baseline_version}" if cr.baseline_version else ""}
        yield from _rows(h, change, rec.answers)
    for s in h.spend:
        yield {"record": "spend", "subject": "spend", "phase": s.phase.value, "when": _when(s.when),
               "approver": s.by, "name": h.names.get(s.by, ""), "amount": f"{s.amount:.2f}", "currency": cur,
               "note": s.note, "channel": f"cli (recorded by {s.operator})" if s.operator else ""}
    if h.budget is not None:
        for line in (h.budget.poc, h.budget.development, h.budget.changes):
            yield {"record": "budget", "subject": line.label, "amount": f"{line.used:.2f}", "currency": cur,
                   "state": "over" if line.over else "within", "note": h.budget.line(line).replace("*", "")}
    yield {"record": "chain_head", "subject": f"#{h.chain.head_seq}",
           "state": chain_state(h, w), "note": head_words(h.chain, w), "reference": h.chain.head_hash or ""}


def as_csv(h: History, w: WitnessCheck) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in _records(h, w):
        writer.writerow([h.engagement_id if c == "engagement" else _cell(record.get(c, "")) for c in COLUMNS])
    return buffer.getvalue()


def _cell(value: object) -> object:
    return csv_cell(value) if isinstance(value, str) else value

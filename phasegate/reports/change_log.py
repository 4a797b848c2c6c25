"""The change log of an engagement (R-CR-5) as Markdown or CSV, rendered from what
`phasegate.ledger.history.change_log` read."""

from __future__ import annotations

import csv
import io

from phasegate.ledger.history import ChangeLog, ChangeLogEntry

COLUMNS = ["number", "title", "phase", "state", "requested_by", "source", "filed", "decided", "effort_days",
           "schedule_days", "cost", "added", "removed", "baseline_version", "reason"]


def _figure(cr: ChangeLogEntry, name: str, text: str) -> str:
    return "not estimated" if name in cr.not_estimated else text


def rows(log: ChangeLog) -> list[list[str]]:
    return [[f"CR-{cr.number}", cr.title, cr.phase.value, cr.state.value, cr.requested_by, cr.source.value,
             f"{cr.filed:%Y-%m-%d}", f"{cr.decided:%Y-%m-%d}" if cr.decided else "",
             _figure(cr, "effort_days", f"{cr.effort_days:g}"), _figure(cr, "schedule_days", str(cr.schedule_days)),
             _figure(cr, "cost", f"{cr.cost:.2f}"), "; ".join(cr.added),
             "; ".join(cr.removed), str(cr.baseline_version or ""), cr.reason]
            for cr in log.entries]


def as_csv(log: ChangeLog) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(log))
    return out.getvalue()


def as_markdown(log: ChangeLog) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# Change log: {log.name}", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows(log)]
    if not log.entries:
        lines.append("\nNo change requests yet.")
    return "\n".join(lines) + "\n"

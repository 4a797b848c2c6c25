"""The change log of an engagement (R-CR-5) as Markdown or CSV, from the ledger alone."""

from __future__ import annotations

import csv
import io

from phasegate.ledger.change_requests import not_estimated
from phasegate.ledger.models import ChangeRequestRow

COLUMNS = ["number", "title", "phase", "state", "requested_by", "source", "filed", "decided", "effort_days",
           "schedule_days", "cost", "added", "removed", "baseline_version", "reason"]


def _figure(cr: ChangeRequestRow, name: str, text: str) -> str:
    return "not estimated" if name in not_estimated(cr) else text


def rows(requests: list[ChangeRequestRow]) -> list[list[str]]:
    return [[f"CR-{cr.number}", cr.title, cr.phase.value, cr.state.value, cr.requested_by, cr.source.value,
             f"{cr.created_at:%Y-%m-%d}", f"{cr.decided_at:%Y-%m-%d}" if cr.decided_at else "",
             _figure(cr, "effort_days", f"{cr.effort_days:g}"), _figure(cr, "schedule_days", str(cr.schedule_days)),
             _figure(cr, "cost", f"{cr.cost:.2f}"), "; ".join(cr.scope_added["items"]),
             "; ".join(cr.scope_removed["items"]), str(cr.baseline_version or ""), cr.closed_reason]
            for cr in requests]


def as_csv(requests: list[ChangeRequestRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(requests))
    return out.getvalue()


def as_markdown(engagement_name: str, requests: list[ChangeRequestRow]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# Change log: {engagement_name}", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows(requests)]
    if not requests:
        lines.append("\nNo change requests yet.")
    return "\n".join(lines) + "\n"

"""The portfolio: every engagement on one line, for the weekly digest.

`status_rows` reads only the ledger, in a constant number of queries (see `facts.views`), deciding
each row from the stored engagement files. `phasegate status` reads the same rows from the status
columns instead (phasegate.reports.status_view); tests/test_status_columns.py holds the two equal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from phasegate.integrations.slack_blocks import Block, context, header, section
from phasegate.reports.build import from_ledger, worst
from phasegate.reports.facts import views
from phasegate.states import EngagementState, Rag
from phasegate.text import literal

ACTIVE = (EngagementState.ACTIVE, EngagementState.REGISTERED)
DIGEST_SECTION_CHARS = 2800
DIGEST_MAX_SECTIONS = 40


def status_rows(session: Session, now: dt.datetime, engagement_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """One dict per engagement (all, or `engagement_ids`): phase, week, RAG, open and overdue gates,
    who blocks, next timebox end.

    The RAG is the worse of the ledger-only rules now and the last weekly report's status (which
    also saw Jira and the metrics).
    """
    rows = []
    for view in views(session, engagement_ids, full=False):
        report = from_ledger(view, now)
        last = view.reports[-1] if view.reports else None
        rag = worst(report.rag, last.rag) if last is not None else report.rag
        blocking = sorted({name for g in report.gates for name in g.pending})
        rows.append({
            "id": report.engagement_id, "name": report.name, "state": report.state,
            "phase": report.phase.value if report.phase else None, "week": report.week_of_phase,
            "planned_weeks": report.planned_weeks, "rag": rag.value,
            "rag_reasons": [f.reason for f in report.findings] + (
                [f"last weekly report ({last.week}) was {last.rag.value}"] if last and last.rag is not Rag.GREEN else []),
            "open_gates": [g.name for g in report.gates], "overdue_gates": [g.name for g in report.gates if g.overdue],
            "blocking": blocking,
            "timebox_ends_on": report.timebox_ends_on.isoformat() if report.timebox_ends_on else None,
            "last_report": last.week if last else None,
        })
    return rows


def digest_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One mrkdwn line per engagement; its name and the approvers' names rendered by `literal`."""
    lines = []
    for row in rows:
        icon = Rag(row["rag"]).icon
        where = f"{row['phase']} week {row['week']}/{row['planned_weeks']}" if row["phase"] else row["state"]
        gates = f"; open gates {', '.join(row['open_gates'])}" if row["open_gates"] else ""
        overdue = f" (overdue: {', '.join(row['overdue_gates'])})" if row["overdue_gates"] else ""
        blocking = f"; waiting for {', '.join(map(literal, row['blocking']))}" if row["blocking"] else ""
        ends = f"; timebox ends {row['timebox_ends_on']}" if row["timebox_ends_on"] else ""
        lines.append(f"{icon} *{literal(row['name'])}*: {where}{gates}{overdue}{blocking}{ends}")
    return lines


def digest_blocks(rows: list[dict[str, Any]], week: str) -> list[Block]:
    """The digest in sections of at most ~2,800 characters, within Slack's 50 blocks."""
    counts = {c: sum(1 for r in rows if r["rag"] == c.value) for c in Rag}
    out = [header(f"Portfolio, week {week}"),
           section(" · ".join(f"{c.icon} {counts[c]} {c.value}" for c in (Rag.RED, Rag.AMBER, Rag.GREEN)))]
    chunk: list[str] = []
    sections_left = DIGEST_MAX_SECTIONS
    lines = digest_lines(rows)
    for index, line in enumerate(lines):
        if sum(len(x) + 1 for x in chunk) + len(line) > DIGEST_SECTION_CHARS:
            out.append(section("\n".join(chunk)))
            chunk, sections_left = [], sections_left - 1
            if sections_left == 0:
                out.append(context(f"and {len(lines) - index} more: run `phasegate status`"))
                return out
        chunk.append(line)
    if chunk:
        out.append(section("\n".join(chunk)))
    out.append(context("Every engagement's weekly report is in its own channel; `phasegate status` shows this live."))
    return out

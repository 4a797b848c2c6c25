"""The weekly report in words: Block Kit for Slack, markdown and a table for Prefect, plain lines.

Written for a sponsor: what the status is and why, in sentences; numbers with what they are
measured against; links to where the evidence lives.

The sections' lines are Slack mrkdwn: outside text in them (names and titles from the engagement
file, Jira summaries and statuses, change-request titles, error reasons) is rendered by
`phasegate.text.literal`, so the markdown export shows it as entities (`&lt;`), which markdown reads.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from phasegate.integrations.slack_blocks import Block, Button, actions, context, header, section
from phasegate.messages.ids import DRAFT_DRIFT, Action, action_id
from phasegate.reports import forecast, sponsor
from phasegate.reports.model import MetricTrend, MilestoneProgress, WeeklyReport
from phasegate.reports.rules import GREEN_REASON
from phasegate.text import literal

MAX_GATES_SHOWN = 10
SHOWN_NOT_DONE = 5  # why a milestone is not done: the first few reasons, the rest counted


def _n(value: float) -> str:
    return f"{value:g}"


def headline(r: WeeklyReport) -> str:
    """`· incomplete` while a source could not be read (listed under Missing evidence)."""
    return (f"{r.name}: {r.rag.value.upper()} · week {r.week}" + (" · late" if r.late else "")
            + (" · incomplete" if r.missing else ""))


def late_line(r: WeeklyReport) -> str | None:
    """For a report sent after its time (an outage, Slack refusing the post): when it was due and sent,
    in the engagement's timezone. None for a report on time."""
    if not r.late or r.due_at is None:
        return None
    tz = ZoneInfo(r.timezone)
    due, sent = r.due_at.astimezone(tz), r.generated_at.astimezone(tz)
    return (f"Late: due {due:%A %Y-%m-%d %H:%M}, sent {sent:%A %Y-%m-%d %H:%M} ({r.timezone}); "
            "it shows the engagement as it stood when sent.")


def plan_line(r: WeeklyReport) -> str:
    if r.phase is None:
        return f"Not started ({r.state})." if r.state == "registered" else f"Engagement {r.state}."
    line = f"{r.phase_label}, week {r.week_of_phase} of {r.planned_weeks} planned"
    if r.booked_weeks and r.booked_weeks != r.planned_weeks:
        line += f" ({r.booked_weeks} weeks with extensions)"
    return line + (f"; it ends {r.timebox_ends_on:%a %d %b %Y}." if r.timebox_ends_on else ".")


def reasons(r: WeeklyReport) -> list[str]:
    return [f"{f.rag.icon} {f.reason}" for f in r.findings] or [f"{r.rag.icon} {GREEN_REASON}"]


def milestone_line(m: MilestoneProgress, *, links: bool = True) -> str:
    title = literal(m.title) + (f" ({m.owner}'s work)" if m.owner else "")
    if m.error:
        return f":grey_question: {title}: evidence missing ({literal(m.error)})"
    c = m.counts
    icon = ":white_check_mark:" if c.total and c.done == c.total else ":construction:"
    line = f"{icon} {title}: {c.done} done, {c.in_progress} in progress, {c.to_do} to do"
    if c.points_total:
        line += f" ({_n(c.points_done)}/{_n(c.points_total)} story points)"
    if links and m.issues:
        line += " · " + ", ".join(f"<{literal(i.url)}|{literal(i.key)}> {literal(i.status)}" for i in m.issues)
    if m.not_done:
        more = len(m.not_done) - SHOWN_NOT_DONE
        line += " · not done: " + literal(", ".join(m.not_done[:SHOWN_NOT_DONE])) + (f" and {more} more" if more > 0 else "")
    return line


def metric_line(m: MetricTrend) -> str:
    if m.value is None:
        return f":grey_question: {literal(m.name)}: missing ({literal(str(m.error))})"
    icon = ":white_check_mark:" if m.passes else (":x:" if m.passes is False else ":bar_chart:")
    line = f"{icon} {literal(m.meaning)} — {literal(m.name)} {_n(m.value)}" if m.meaning \
        else f"{icon} {literal(m.name)} {_n(m.value)}"
    line += f" (exit criterion {literal(m.criterion)})" if m.criterion else ""
    delta = m.delta
    if delta is not None:
        arrow = "no change" if delta == 0 else (f"{'worse' if m.worsening else 'better'} by {_n(abs(delta))}")
        line += f", last week {_n(m.previous or 0)}: {arrow}"
    return line


def gate_lines(r: WeeklyReport) -> list[str]:
    lines = []
    for g in r.gates[:MAX_GATES_SHOWN]:
        waiting = ", ".join(map(literal, g.pending)) or "nobody (quorum not met by the answers given)"
        lines.append(f"{':rotating_light:' if g.overdue else ':hourglass:'} {g.name} open {g.age_days} days"
                     f"{' (overdue)' if g.overdue else ''}; decided by {g.quorum}; waiting for {waiting}"
                     + (f"; answered: {', '.join(map(literal, g.answered))}" if g.answered else ""))
    return lines


def budget_lines(r: WeeklyReport) -> list[str]:
    b = r.budget
    tco = [literal(b.tco)] if b.tco else []
    if b.lines:  # plain words whose `*bold*` marks an overrun; a line near its cap is marked where it stands
        marked = [(":warning: " if line in b.near else "") + literal(line) for line in b.lines]
        return marked + tco + ([b.note + "."] if b.note else [])
    cur = literal(b.currency)
    spent = f"{_n(b.spent)} {cur} spent" if b.spent is not None else b.note
    return [f"PoC cap {_n(b.poc_cap)} {cur}, change budget {_n(b.change_budget)} {cur}: {spent}.", *tco]


def change_lines(r: WeeklyReport) -> list[str]:
    c = r.change_requests
    lines = [literal(item) for item in c.items[:MAX_GATES_SHOWN]] or [c.note]
    if len(c.items) > MAX_GATES_SHOWN:
        lines.append(f"… and {len(c.items) - MAX_GATES_SHOWN} more (`phasegate cr list {r.engagement_id}`)")
    if c.growth_percent is not None:
        lines.append(f"Cumulative scope growth: {c.growth_percent:+g} % against the first baseline.")
    return lines + [f":warning: {line}." for line in c.jira]


def value_line(r: WeeklyReport) -> str:
    if r.time_to_value_weeks is not None:
        if r.time_to_value_weeks == 0:
            return "First GO in the first week (or before the planned start date)."
        return f"First GO {r.time_to_value_weeks:g} weeks after the start."
    return "No GO yet."


def handover_lines(r: WeeklyReport) -> list[str]:
    lines = []
    for item in r.handover or []:
        icon = ":white_check_mark:" if item.done else (":grey_question:" if item.done is None else ":x:")
        who = f" (attested by {literal(item.attested_by)} on {item.attested_on})" if item.attested_by else ""
        lines.append(f"{icon} {literal(item.title)}{who}")
    return lines


def sections(r: WeeklyReport) -> list[tuple[str, list[str]]]:
    """(title, lines) in reading order; the same content for Slack, markdown and the terminal."""
    totals = r.totals
    plan = [plan_line(r), value_line(r)] + ([forecast.sentence(r.forecast, r.timebox_ends_on)] if r.forecast else [])
    parts = [("Status", reasons(r)), ("Plan", plan)]
    if r.milestones:
        parts.append((f"Milestones ({totals.done}/{totals.total} issues done)",
                      [milestone_line(m) for m in r.milestones]))
    if r.metrics:
        parts.append(("Metrics against exit criteria", [metric_line(m) for m in r.metrics]))
    parts.append(("Open gates", gate_lines(r) or ["none"]))
    if r.handover is not None:
        parts.append(("Handover readiness", handover_lines(r) or ["no checklist items"]))
    parts.append(("Change requests", change_lines(r)))
    if r.change_requests.drift:  # mrkdwn already: linked keys, outside text escaped (rules.drift)
        parts.append((f"Scope drift ({r.change_requests.drift_count} issues)",
                      [f":warning: {line}" for line in r.change_requests.drift]))
    parts += sponsor.sections(r.sponsor, r.engagement_id)
    parts.append(("Budget", budget_lines(r)))
    if r.missing:
        parts.append(("Missing evidence", [f":grey_question: {literal(m.source)}: {literal(m.reason)}"
                                           for m in r.missing]))
    return parts


def blocks(r: WeeklyReport) -> list[Block]:
    out = [header(f"{r.rag.icon} " + literal(headline(r), plain=True))]
    late = late_line(r)
    if late:
        out.append(context(f":hourglass: {late}"))
    out += [section(f"*{title}*\n" + "\n".join(lines)) for title, lines in sections(r)]
    if r.change_requests.drift_issues or r.change_requests.drift_left:  # Slack opens the form pre-filled with them
        out += actions(f"drift-{r.engagement_id}", [Button(action_id(Action.CHANGE, DRAFT_DRIFT),
                                                           "Draft change request", r.engagement_id, "primary")])
    chart = "; burn-up chart in the thread" if r.burnup else ""
    out.append(context(f"Generated {r.generated_at:%Y-%m-%d %H:%M} UTC by phasegate{chart}"))
    return out


def fallback_text(r: WeeklyReport) -> str:
    return f"Weekly status {literal(headline(r))}: " + "; ".join(f.reason for f in r.findings) if r.findings \
        else f"Weekly status {literal(headline(r))}: on track"


def markdown(r: WeeklyReport) -> str:
    lines = [f"# {headline(r)}"]
    late = late_line(r)
    if late:
        lines += ["", f"_{late}_"]
    for title, body in sections(r):
        lines += ["", f"## {title}", *[f"- {_plain(x)}" for x in body]]
    if r.chart_path:
        lines += ["", f"Burn-up chart: [{r.chart_path}](file://{r.chart_path})"]
    return "\n".join(lines)


def table(r: WeeklyReport) -> list[dict[str, Any]]:
    """One row per thing measured, for Prefect's table artifact."""
    rows: list[dict[str, Any]] = [{"item": "status", "value": r.rag.value, "detail": "; ".join(reasons(r))}]
    rows += [{"item": f"milestone {m.key}", "value": f"{m.counts.done}/{m.counts.total}", "detail": m.error or ""}
             for m in r.milestones]
    rows += [{"item": f"metric {m.name}", "value": "" if m.value is None else _n(m.value),
              "detail": m.error or (m.criterion or "")} for m in r.metrics]
    rows += [{"item": f"gate {g.name}", "value": f"{g.age_days} days", "detail": "waiting for " + ", ".join(g.pending)}
             for g in r.gates]
    return rows


def _plain(text: str) -> str:
    """Slack mrkdwn links `<url|text>` as markdown links, emoji codes left as they are."""
    return re.sub(r"<([^|>]+)\|([^>]+)>", r"[\2](\1)", text)

"""Deliver a weekly report once per ISO week: ledger row first, Slack post, then the post's ts.

Why this order: a retried run (Prefect task retry, a second scheduled run, `report weekly --post`
twice) reads the row before posting and finds the ts, so nothing is posted twice. A crash between
the post and the recorded ts (or an answer lost on the way) is covered by the post's mark: with no
ts in the row, the channel is searched for it before posting (`phasegate.messages.marks`).

The row alone does not make the week reported: until it holds the post's ts (and the chart's file
id, when a chart was drawn), `phasegate.reports.schedule` keeps the week owed and the next hourly
run delivers it again. The ts and the file id go into the engagement's audit chain in the
transaction that records them, as the kickoff's and the change-request prompt's ts do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from phasegate.integrations.slack_blocks import Block
from phasegate.integrations.slack_chat import SlackChat
from phasegate.ledger import audit
from phasegate.ledger.db import transaction
from phasegate.ledger.models import WeeklyReportRow, utcnow
from phasegate.messages import marks as post_marks
from phasegate.messages import witness
from phasegate.reports import chart, render
from phasegate.reports.model import WeeklyReport
from phasegate.states import AuditKind, Rag, ReportKind
from phasegate.text import literal


@dataclass(frozen=True)
class Delivery:
    subject: str
    week: str
    message_ts: str | None
    posted_now: bool  # False: this week's report had been posted before (or posting was off)
    chart_path: str | None
    chart_file_id: str | None
    late: bool = False  # posted now, after its time (phasegate.reports.schedule.LATE_AFTER), and says so
    completed: bool = False  # posted incomplete earlier this week; the same message now shows it complete


def find(session: Session, kind: ReportKind, subject: str, week: str) -> WeeklyReportRow | None:
    return session.scalar(select(WeeklyReportRow).where(WeeklyReportRow.kind == kind,
                                                        WeeklyReportRow.subject == subject,
                                                        WeeklyReportRow.week == week))


def save(session: Session, kind: ReportKind, subject: str, week: str, rag: Rag, body: dict[str, object],
         *, chart_path: str | None = None, due_at: dt.datetime | None = None) -> WeeklyReportRow:
    """This week's row, created once; its content is refreshed until it has been posted."""
    row = find(session, kind, subject, week)
    if row is None:
        row = WeeklyReportRow(kind=kind, subject=subject, week=week, rag=rag, body=body, chart_path=chart_path,
                              due_at=due_at)
        session.add(row)
        session.flush()
    elif row.message_ts is None:
        row.rag, row.body, row.chart_path = rag, body, chart_path or row.chart_path
        row.due_at = due_at or row.due_at
    return row


def incomplete(session: Session, weeks: dict[str, str]) -> dict[str, WeeklyReportRow]:
    """engagement id -> its report for the week in `weeks` (engagement id -> ISO week) that was posted
    with missing evidence: the hourly runs of that week collect it again (`complete`)."""
    if not weeks:
        return {}
    rows = session.scalars(select(WeeklyReportRow).where(WeeklyReportRow.kind == ReportKind.ENGAGEMENT,
                                                         WeeklyReportRow.subject.in_(list(weeks)),
                                                         WeeklyReportRow.message_ts.is_not(None)))
    return {row.subject: row for row in rows if weeks.get(row.subject) == row.week and row.body.get("missing")}


def complete(sessions: sessionmaker[Session], chat: SlackChat, report: WeeklyReport) -> bool:
    """Once the evidence of a week posted incomplete has all been read: the same message updated and
    the same ledger row rewritten with the complete report, recorded in the audit chain. False (and
    nothing changed) while the report is still incomplete or the posted one was complete already."""
    if report.missing:
        return False
    with transaction(sessions) as session:
        row = find(session, ReportKind.ENGAGEMENT, report.engagement_id, report.week)
        if row is None or not row.message_ts or not row.channel or not row.body.get("missing"):
            return False
        channel, ts = row.channel, row.message_ts
    chat.update(channel, ts, render.fallback_text(report), render.blocks(report))
    with transaction(sessions) as session:
        row = find(session, ReportKind.ENGAGEMENT, report.engagement_id, report.week)
        if row is not None and row.body.get("missing"):
            row.rag, row.body = report.rag, report.model_dump(mode="json")
            audit.record(session, report.engagement_id, AuditKind.WEEKLY_REPORT_POSTED, report.week, ts=ts,
                         channel=channel, due_at=row.due_at.isoformat() if row.due_at else None, late=report.late,
                         completed=True)
    return True


def chart_file(home: Path, report: WeeklyReport) -> Path:
    return home / "reports" / report.engagement_id / f"{report.week}-burnup.png"


def post_once(sessions: sessionmaker[Session], chat: SlackChat, kind: ReportKind, subject: str, week: str,
              channel: str, text: str, blocks: list[Block], *, late: bool = False) -> tuple[str | None, bool]:
    """(ts, posted now): post unless the ledger already holds this week's ts. An engagement's report
    is recorded in its audit chain (`late`: sent after its time) when the ledger learns the ts."""
    with transaction(sessions) as session:
        row = find(session, kind, subject, week)
        if row is None:
            raise LookupError(f"no {kind.value} report {subject!r} {week} saved before posting")
        if row.message_ts:
            return row.message_ts, False
        oldest = post_marks.oldest(row.created_at)
        mark = post_marks.weekly_report(kind, subject, week)
        if kind is ReportKind.ENGAGEMENT:  # it witnesses the engagement's chain head (phasegate.messages.witness)
            mark = witness.stamp(session, mark, subject)
            blocks = [*blocks, witness.block(mark)]
    ts = chat.post_marked(channel, text, blocks, mark, oldest=oldest)
    with transaction(sessions) as session:
        row = find(session, kind, subject, week)
        if row is not None and not row.message_ts:
            row.message_ts, row.channel, row.posted_at = ts, channel, utcnow()
            if kind is ReportKind.ENGAGEMENT:  # the portfolio digest belongs to no engagement's chain
                audit.record(session, subject, AuditKind.WEEKLY_REPORT_POSTED, week, ts=ts, channel=channel,
                             due_at=row.due_at.isoformat() if row.due_at else None, late=late)
    return ts, True


def deliver(sessions: sessionmaker[Session], chat: SlackChat, report: WeeklyReport, *, channel: str, home: Path,
            post: bool) -> Delivery:
    """Draw the chart, record the report, and (with `post`) post it and upload the chart in its thread."""
    path = None
    if report.burnup is not None:
        path = chart.render_png(report.burnup, chart_file(home, report), f"{report.name}: burn-up")
        report.chart_path = str(path)
    with transaction(sessions) as session:
        save(session, ReportKind.ENGAGEMENT, report.engagement_id, report.week, report.rag,
             report.model_dump(mode="json"), chart_path=report.chart_path, due_at=report.due_at)
    if not post:
        return Delivery(report.engagement_id, report.week, None, False, report.chart_path, None)
    completed = complete(sessions, chat, report)
    ts, posted = post_once(sessions, chat, ReportKind.ENGAGEMENT, report.engagement_id, report.week, channel,
                           render.fallback_text(report), render.blocks(report), late=report.late)
    file_id = None
    if path is not None and ts is not None:
        with transaction(sessions) as session:
            row = find(session, ReportKind.ENGAGEMENT, report.engagement_id, report.week)
            file_id = row.chart_file_id if row is not None else None
        if not file_id:
            file_id = chat.upload(channel, path, literal(f"{report.name} burn-up, {report.week}", plain=True),
                                  thread_ts=ts)
            with transaction(sessions) as session:
                row = find(session, ReportKind.ENGAGEMENT, report.engagement_id, report.week)
                if row is not None and not row.chart_file_id:
                    row.chart_file_id = file_id
                    audit.record(session, report.engagement_id, AuditKind.WEEKLY_CHART_UPLOADED, report.week,
                                 file_id=file_id, thread_ts=ts)
    return Delivery(report.engagement_id, report.week, ts, posted, report.chart_path, file_id, posted and report.late,
                    completed)


def today_week(now: dt.datetime) -> str:
    year, week, _ = now.astimezone(dt.UTC).date().isocalendar()
    return f"{year}-W{week:02d}"

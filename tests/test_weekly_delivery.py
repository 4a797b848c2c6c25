"""Delivering weekly reports: posted once per week through the Slack stand-in (which enforces
Block Kit limits), the burn-up chart's data and its upload, `status` with an overdue gate."""

from __future__ import annotations

import datetime as dt
import json

from helpers import posted_gate, register
from sqlalchemy import select
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import WeeklyReportRow, utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect, portfolio, progress, render
from phasegate.sandbox.standins.blockkit import validate_blocks
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import Rag
from phasegate.tasks.kickoff import record_baseline


def report_messages(slack: SlackStandin, channel: str) -> list[str]:
    return [m.ts for m in slack.messages(channel) if m.text.startswith("Weekly status")]


def test_a_retried_run_posts_nothing_twice(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                           slack: SlackStandin) -> None:
    posted_gate(rt, acme)
    slack.fail_next("chat.postMessage", status=500)
    now = utcnow()
    first = collect.collect(rt, ["acme-churn"], now)
    delivered, failed = collect.deliver_all(rt, first.reports, post=True)
    assert delivered == [] and "chat.postMessage" in failed["acme-churn"]
    for _ in range(2):  # the retry, then a second scheduled run in the same week
        delivered, failed = collect.deliver_all(rt, collect.collect(rt, ["acme-churn"], now).reports, post=True)
        assert failed == {}
    assert len(report_messages(slack, acme.slack_channel)) == 1
    assert [d.posted_now for d in delivered] == [False]
    with transaction(rt.sessions) as session:
        (row,) = session.scalars(select(WeeklyReportRow)).all()
    assert row.message_ts == report_messages(slack, acme.slack_channel)[0]
    assert collect.due(rt, now + dt.timedelta(days=1)) == {}  # reported this week: not due again


def test_block_kit_stays_within_slacks_limits_for_a_large_report(rt: Runtime, acme: Engagement,
                                                                 jira: JiraStandin, slack: SlackStandin) -> None:
    posted_gate(rt, acme)
    (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports
    long = "x" * 400
    report.findings = report.findings * 30
    report.metrics = [m.model_copy(update={"name": f"{m.name}-{i}-{long}"}) for i in range(20) for m in report.metrics]
    blocks = render.blocks(report)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= 50 and all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    rt.chat.post(acme.slack_channel, render.fallback_text(report), blocks)  # the stand-in would refuse bad blocks
    assert slack.messages(acme.slack_channel)[-1].blocks == blocks


def test_burn_up_series_and_chart_upload(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                         slack: SlackStandin) -> None:
    posted_gate(rt, acme)
    record_baseline.fn(rt, acme)
    jira.set_status("ACME-1", "Done", done=True)
    now = utcnow()
    (report,) = collect.collect(rt, ["acme-churn"], now).reports
    burnup = report.burnup
    assert burnup is not None and burnup.unit == "issues"
    today = now.astimezone(acme.tz).date()
    assert burnup.dates[0] == acme.start_date and burnup.dates[-1] == today
    assert all((b - a).days <= 7 for a, b in zip(burnup.dates, burnup.dates[1:], strict=False))
    assert burnup.scope[-1] == 3 and burnup.done[-1] == 1  # three milestone issues, one resolved today
    assert burnup.scope[0] == 0 and burnup.done[0] == 0  # the stand-in's issues were created today
    assert burnup.timebox_end == report.timebox_ends_on == dt.date(2026, 9, 28)
    assert burnup.baselines == [(today, 1)]

    (delivered,), _ = collect.deliver_all(rt, [report], post=True)
    assert delivered.chart_path and delivered.chart_path.endswith("acme-churn/" + report.week + "-burnup.png")
    with open(delivered.chart_path, "rb") as png:
        data = png.read()
    assert data.startswith(b"\x89PNG") and len(data) > 5000
    (shared,) = slack.files.shared(acme.slack_channel)
    assert shared.data == data and shared.thread_ts == delivered.message_ts and shared.id == delivered.chart_file_id
    collect.deliver_all(rt, [report], post=True)
    assert len(slack.files.shared(acme.slack_channel)) == 1  # uploaded once too
    assert [c for c in slack.calls if c.startswith("files.")] == ["files.getUploadURLExternal",
                                                                  "files.completeUploadExternal"]


def test_burn_up_counts_story_points_when_every_issue_has_them() -> None:
    utc = dt.UTC
    issues = [progress.Issue("A-1", "Done", "done", 3, dt.datetime(2026, 1, 1, tzinfo=utc),
                             dt.datetime(2026, 1, 10, tzinfo=utc)),
              progress.Issue("A-2", "To Do", "new", 5, dt.datetime(2026, 1, 12, tzinfo=utc), None)]
    data = progress.burnup(issues, start=dt.date(2026, 1, 5), today=dt.date(2026, 1, 20), tz=utc, baselines=[],
                           timebox_end=dt.date(2026, 3, 1))
    assert data.unit == "story points"
    assert data.dates == [dt.date(2026, 1, 5), dt.date(2026, 1, 12), dt.date(2026, 1, 19), dt.date(2026, 1, 20)]
    assert data.scope == [3, 8, 8, 8] and data.done == [0, 3, 3, 3]


def test_status_shows_overdue_gates_and_who_blocks(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                                   slack: SlackStandin) -> None:
    gate_id = posted_gate(rt, acme).id
    with transaction(rt.sessions) as session:
        gates.by_id(session, gate_id).overdue_at = utcnow()
    register(rt, acme)
    with transaction(rt.sessions) as session:
        (row,) = portfolio.status_rows(session, utcnow())
    assert row["rag"] == Rag.RED.value and row["overdue_gates"] == ["acme-churn/G1"]
    assert row["blocking"] == ["Dana Whitfield", "Omar Haddad", "Priya Natarajan"]
    assert row["phase"] == Phase.POC.value and row["timebox_ends_on"] == "2026-09-28"
    runner = CliRunner(env={"PHASEGATE_DATABASE_URL": rt.settings.ledger_url, "COLUMNS": "200"})
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["engagements"][0]["overdue_gates"] == ["acme-churn/G1"]
    table = runner.invoke(app, ["status"])
    assert "RED" in table.output and "A gate decision is overdue" in table.output


def test_status_reads_the_ledger_in_a_constant_number_of_queries(rt: Runtime, acme: Engagement,
                                                                  jira: JiraStandin, slack: SlackStandin) -> None:
    from sqlalchemy import event

    from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement

    posted_gate(rt, acme)
    statements: list[str] = []

    def count(*args: object) -> None:  # the reads; not BEGIN, nor a PRAGMA telling the lock wait left
        if str(args[2]).lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(str(args[2]))

    def queries() -> int:
        statements.clear()
        event.listen(rt.engine, "before_cursor_execute", count)
        try:
            with transaction(rt.sessions) as session:
                portfolio.status_rows(session, utcnow())
        finally:
            event.remove(rt.engine, "before_cursor_execute", count)
        return len(statements)

    one = queries()
    assert one > 0
    for n in range(5):
        register(rt, load_engagement(ENGAGEMENTS_DIR / "globex-forecast.yaml").model_copy(update={"id": f"more-{n}"}))
    assert queries() == one

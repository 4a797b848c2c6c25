"""Weekly reports are late, never lost: a week counts as reported only once its post is in Slack,
and each hourly run posts every week still owed, marking the late ones.

The faults are caused for real against the Slack stand-in over HTTP with the real slack_sdk client:
a 500, 429s past the client's own retries, a run SIGKILLed while Slack holds its call, `report weekly
--no-post`, and report times the hourly runs cannot land on in the local week (Asia/Kolkata) or an
outage over the weekend after a Friday report time. The clock of the hourly runs is injected; each
engagement's registration is set to just before the report time the test is about.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from helpers import closed_port_url, ok, register, wait_until, with_changes
from sqlalchemy import select
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import audit
from phasegate.ledger.db import transaction
from phasegate.ledger.models import EngagementRow, WeeklyReportRow, utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect, schedule
from phasegate.reports.deliver import Delivery
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_wire import Message
from phasegate.states import AuditKind
from phasegate.tasks.kickoff import begin_phase, link_milestones

HOUR = dt.timedelta(hours=1)
PM = "U0PMACME01"


def hourly(rt: Runtime, now: dt.datetime) -> tuple[list[Delivery], dict[str, str]]:
    """One run of the hourly weekly flow (flows/weekly_status.py), at `now`."""
    due = collect.due(rt, now)
    return collect.deliver_all(rt, collect.collect(rt, due, now).reports, post=True)


def report_time_after(engagement: Engagement, after: dt.datetime) -> dt.datetime:
    """The first local report time (weekday and time in the engagement's zone) after `after`, in UTC."""
    local = after.astimezone(engagement.tz).date()
    for days in range(8):
        day = local + dt.timedelta(days=days)
        if day.weekday() == engagement.weekly_status.day.number:
            moment = dt.datetime.combine(day, engagement.weekly_status.clock, tzinfo=engagement.tz).astimezone(dt.UTC)
            if moment > after:
                return moment
    raise AssertionError("no report time within a week")


def engaged(rt: Runtime, engagement: Engagement, *, report_at: dt.datetime) -> None:
    """Registered, PoC started, milestones in Jira (so the report has a burn-up chart); registered an
    hour before `report_at`, in the same local week."""
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, PM, None)
    link_milestones.fn(rt, engagement, Phase.POC)
    with transaction(rt.sessions) as session:
        row = session.get(EngagementRow, engagement.id)
        assert row is not None
        row.created_at = report_at - HOUR


def reports_in(slack: SlackStandin, channel: str) -> list[Message]:
    return [m for m in slack.messages(channel) if m.thread_ts is None and m.text.startswith("Weekly status")]


def rows(rt: Runtime, engagement_id: str) -> dict[str, WeeklyReportRow]:
    with transaction(rt.sessions) as session:
        found = session.scalars(select(WeeklyReportRow).where(WeeklyReportRow.subject == engagement_id))
        return {row.week: row for row in found}


def posted_events(rt: Runtime, engagement_id: str) -> list[dict[str, object]]:
    with transaction(rt.sessions) as session:
        return [{"week": e.subject, **e.payload}
                for e in audit.events(session, engagement_id, AuditKind.WEEKLY_REPORT_POSTED)]


@pytest.mark.parametrize(("status", "times"), [(500, 1), (429, 4)])  # 429: one more than the client's 3 retries
def test_a_post_slack_refuses_at_report_time_is_posted_by_the_next_hourly_run(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin, status: int, times: int) -> None:
    due_at = report_time_after(acme, utcnow())
    engaged(rt, acme, report_at=due_at)
    week = schedule.due_moment(acme, due_at)[0]
    slack.fail_next("chat.postMessage", status=status, retry_after=0, times=times)

    delivered, failed = hourly(rt, due_at + dt.timedelta(minutes=5))
    assert delivered == [] and "chat.postMessage" in failed[acme.id]
    assert reports_in(slack, acme.slack_channel) == []
    assert rows(rt, acme.id)[week].message_ts is None  # saved, not reported

    delivered, failed = hourly(rt, due_at + HOUR + dt.timedelta(minutes=5))
    assert failed == {}
    (post,) = reports_in(slack, acme.slack_channel)
    assert [(d.week, d.message_ts, d.posted_now) for d in delivered] == [(week, post.ts, True)]
    assert "· late" not in post.text  # the next hourly run is within the time a report is on time
    row = rows(rt, acme.id)[week]
    assert row.message_ts == post.ts and row.due_at == due_at
    (shared,) = slack.files.shared(acme.slack_channel)
    assert shared.thread_ts == post.ts

    assert hourly(rt, due_at + 2 * HOUR) == ([], {})  # reported: not owed again
    assert len(reports_in(slack, acme.slack_channel)) == 1
    assert posted_events(rt, acme.id) == [{"week": week, "ts": post.ts, "channel": acme.slack_channel,
                                           "due_at": due_at.isoformat(), "late": False}]


def test_report_weekly_no_post_does_not_stop_the_weeks_post(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                                            slack: SlackStandin) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, PM, None)
    runner = CliRunner(env={**rt.settings.as_env(), "PREFECT_API_URL": closed_port_url(), "COLUMNS": "200"})

    printed = ok(runner.invoke(app, ["report", "weekly", "--no-post"]))  # every active engagement

    week, moment = schedule.due_moment(acme, utcnow())
    assert f"acme-churn {week}: recorded, not posted" in printed
    assert reports_in(slack, acme.slack_channel) == []
    delivered, failed = hourly(rt, max(utcnow(), moment) + dt.timedelta(minutes=5))
    assert failed == {}
    (post,) = reports_in(slack, acme.slack_channel)
    assert rows(rt, acme.id)[week].message_ts == post.ts
    assert (week, True) in [(d.week, d.posted_now) for d in delivered]


def test_a_report_time_the_hourly_runs_never_land_on_is_reported_by_the_first_run_after_it(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin) -> None:
    """Asia/Kolkata is UTC+5:30: the runs at minute 0 UTC fall at :30 local, so Sunday 23:45 is first
    passed by the run at Monday 00:30, in the next local week."""
    kolkata = with_changes(acme, timezone="Asia/Kolkata", weekly_status={"day": "sunday", "time": "23:45"})
    due_at = report_time_after(kolkata, utcnow())
    engaged(rt, kolkata, report_at=due_at)
    week = schedule.due_moment(kolkata, due_at)[0]
    before, after = due_at - dt.timedelta(minutes=15), due_at + dt.timedelta(minutes=45)  # 23:30 and 00:30 local

    assert hourly(rt, before) == ([], {})
    delivered, failed = hourly(rt, after)

    assert failed == {} and [(d.week, d.posted_now) for d in delivered] == [(week, True)]
    (post,) = reports_in(slack, kolkata.slack_channel)
    assert f"week {week}" in post.text and "· late" not in post.text
    assert rows(rt, kolkata.id)[week].message_ts == post.ts


def test_a_week_missed_by_an_outage_is_reported_late_and_marked_late(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin) -> None:
    """Friday 16:30 Berlin; the last run before the outage is at 16:00, the next on Monday at 09:00."""
    friday = with_changes(acme, weekly_status={"day": "friday", "time": "16:30"})
    due_at = report_time_after(friday, utcnow())
    engaged(rt, friday, report_at=due_at)
    week = schedule.due_moment(friday, due_at)[0]
    back = due_at + dt.timedelta(days=2, hours=16, minutes=30)  # Monday 09:00 local

    assert hourly(rt, due_at - dt.timedelta(minutes=30)) == ([], {})
    delivered, failed = hourly(rt, back)

    assert failed == {} and [(d.week, d.posted_now) for d in delivered] == [(week, True)]
    (post,) = reports_in(slack, friday.slack_channel)
    assert f"week {week} · late" in post.text
    assert "Late: due Friday" in str(post.blocks)
    row = rows(rt, friday.id)[week]
    assert row.message_ts == post.ts and row.due_at == due_at and row.body["late"] is True
    assert posted_events(rt, friday.id) == [{"week": week, "ts": post.ts, "channel": friday.slack_channel,
                                             "due_at": due_at.isoformat(), "late": True}]


HOURLY_RUN = textwrap.dedent("""
    import datetime as dt
    import sys

    from phasegate.orchestration.runtime import Runtime
    from phasegate.reports import collect
    from phasegate.settings import Settings

    rt = Runtime(Settings())
    now = dt.datetime.fromisoformat(sys.argv[1])
    collect.deliver_all(rt, collect.collect(rt, collect.due(rt, now), now).reports, post=True)
    raise SystemExit("the run finished: the kill came too late")
""")


@pytest.mark.slow
@pytest.mark.parametrize("held", ["conversations.history", "chat.postMessage"])
def test_an_hourly_run_killed_mid_post_is_finished_by_the_next_one(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin, held: str) -> None:
    """SIGKILL while Slack holds the run's call for 2 s: the look-up before the post (nothing posted
    yet), or chat.postMessage itself (Slack applies it; the ledger never learns its ts). The next
    hourly run posts the report, or finds the one Slack has; either way once, with its chart."""
    due_at = report_time_after(acme, utcnow())
    engaged(rt, acme, report_at=due_at)
    week = schedule.due_moment(acme, due_at)[0]
    slack.delay_next(held, 2.0)
    env = os.environ | rt.settings.as_env() | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    started = (due_at + dt.timedelta(minutes=5)).isoformat()
    child = subprocess.Popen([sys.executable, "-c", HOURLY_RUN, started], env=env, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: held in slack.calls or child.poll() is not None, timeout=120,
                   what=f"the run to call {held}")
        assert child.poll() is None, child.communicate()[1]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if held == "chat.postMessage":
        wait_until(lambda: reports_in(slack, acme.slack_channel), what="Slack to store the report")
    assert rows(rt, acme.id)[week].message_ts is None

    delivered, failed = hourly(rt, due_at + HOUR + dt.timedelta(minutes=5))

    assert failed == {}
    (post,) = reports_in(slack, acme.slack_channel)
    assert [(d.week, d.message_ts) for d in delivered] == [(week, post.ts)]
    assert rows(rt, acme.id)[week].message_ts == post.ts
    (shared,) = slack.files.shared(acme.slack_channel)
    assert shared.thread_ts == post.ts
    assert hourly(rt, due_at + 2 * HOUR) == ([], {})

"""A weekly report posted incomplete is completed by the hourly runs of its week (issue 19, item 9),
against the Jira and Slack stand-ins over HTTP and ledgers on SQLite and PostgreSQL; the clock of
the hourly runs is injected, as in test_weekly_retries.

Jira is down for the whole re-read budget at the report time: the report is posted marked
"· incomplete". The runs while Jira stays down change nothing; the first run after it is back
updates the same Slack message and the same ledger row with the complete report, once. A week
that ended incomplete is left as posted.
"""

from __future__ import annotations

import datetime as dt

from test_weekly_retries import HOUR, engaged, hourly, report_time_after, reports_in, rows

from phasegate.configs.schema import Engagement
from phasegate.ledger import audit
from phasegate.ledger.db import transaction
from phasegate.ledger.models import utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import schedule
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import AuditKind


def header(slack: SlackStandin, channel: str, ts: str) -> str:
    return str(slack.message(channel, ts).blocks[0]["text"]["text"])


def test_a_report_posted_incomplete_is_completed_in_the_same_message_and_row(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin) -> None:
    due_at = report_time_after(acme, utcnow())
    engaged(rt, acme, report_at=due_at)
    week = schedule.due_moment(acme, due_at)[0]
    first = due_at + dt.timedelta(minutes=5)

    jira.outage = True
    delivered, failed = hourly(rt, first)
    assert failed == {} and [(d.week, d.posted_now) for d in delivered] == [(week, True)]
    (post,) = reports_in(slack, acme.slack_channel)
    assert header(slack, acme.slack_channel, post.ts).endswith("· incomplete")
    assert rows(rt, acme.id)[week].body["missing"]

    delivered, _ = hourly(rt, first + HOUR)  # still down: read again, nothing changed
    assert [d.completed for d in delivered] == [False]
    assert slack.message(acme.slack_channel, post.ts).edits == 0

    jira.outage = False
    delivered, failed = hourly(rt, first + 2 * HOUR)
    assert failed == {} and [(d.week, d.posted_now, d.completed) for d in delivered] == [(week, False, True)]
    assert [m.ts for m in reports_in(slack, acme.slack_channel)] == [post.ts]  # the same message, no second post
    updated = slack.message(acme.slack_channel, post.ts)
    assert updated.edits == 1 and "incomplete" not in header(slack, acme.slack_channel, post.ts)
    row = rows(rt, acme.id)[week]
    assert row.message_ts == post.ts and row.body["missing"] == [] and row.body["milestones"]
    with transaction(rt.sessions) as session:
        events = [e.payload for e in audit.events(session, acme.id, AuditKind.WEEKLY_REPORT_POSTED, week)]
    assert [e.get("completed", False) for e in events] == [False, True]

    assert hourly(rt, first + 3 * HOUR) == ([], {})  # complete: the week is done
    assert slack.message(acme.slack_channel, post.ts).edits == 1


def test_a_week_that_ended_incomplete_is_left_as_posted(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin) -> None:
    due_at = report_time_after(acme, utcnow())
    engaged(rt, acme, report_at=due_at)
    week, next_week = schedule.due_moment(acme, due_at)[0], schedule.due_moment(acme, due_at + schedule.WEEK)[0]
    jira.outage = True
    hourly(rt, due_at + dt.timedelta(minutes=5))
    (post,) = reports_in(slack, acme.slack_channel)
    jira.outage = False
    delivered, failed = hourly(rt, due_at + schedule.WEEK + dt.timedelta(minutes=5))
    assert failed == {} and [(d.week, d.posted_now, d.completed) for d in delivered] == [(next_week, True, False)]
    assert slack.message(acme.slack_channel, post.ts).edits == 0
    assert rows(rt, acme.id)[week].body["missing"]

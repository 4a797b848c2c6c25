"""Posts the ledger records by ts are made once, even when the answer to chat.postMessage is lost.

The fault is caused for real: the Slack stand-in stores the message and then closes the connection
without answering (the client sees "Remote end closed connection without response"), or the
process posting is SIGKILLed after Slack has the message and before the ledger has its ts. Either
way the next attempt (the SDK's own retry, a task retry, a new run) must find the message in the
channel instead of posting it again, and the ledger must hold that message's ts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from helpers import posted_gate, register, wait_until
from sqlalchemy import select

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import change_requests as crs
from phasegate.ledger import gates, phases
from phasegate.ledger.db import transaction
from phasegate.ledger.models import WeeklyReportRow, utcnow
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_wire import Message
from phasegate.states import ChangeSource, ReportKind
from phasegate.tasks import change_requests as cr_tasks
from phasegate.tasks.gates import open_gate
from phasegate.tasks.kickoff import begin_phase, post_kickoff, record_baseline

pytestmark = pytest.mark.slow

PM = "U0PMACME01"


def top_level(slack: SlackStandin, channel: str, fragment: str) -> list[Message]:
    return [m for m in slack.messages(channel) if m.thread_ts is None and fragment in m.text]


def kickoff_ts(rt: Runtime, engagement_id: str) -> str | None:
    with transaction(rt.sessions) as session:
        return phases.phase_run(session, engagement_id, Phase.POC).kickoff_ts


def test_a_kickoff_whose_answer_is_lost_is_posted_once(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, PM, None)
    slack.drop_after("chat.postMessage")

    ts = post_kickoff.fn(rt, acme, Phase.POC)

    (kickoff,) = top_level(slack, acme.slack_channel, "started for *")
    assert ts == kickoff.ts == kickoff_ts(rt, acme.id)
    assert post_kickoff.fn(rt, acme, Phase.POC) == ts  # recorded: no lookup, no post
    assert len(top_level(slack, acme.slack_channel, "started for *")) == 1


def test_a_gate_prompt_whose_answer_is_lost_is_posted_once(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                                           acme: Engagement) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, PM, None)
    post_kickoff.fn(rt, acme, Phase.POC)
    slack.drop_after("chat.postMessage")

    gate_id = open_gate.fn(rt, acme, Phase.POC, 1, PM, None)

    (prompt,) = top_level(slack, acme.slack_channel, "Your answer is asked for")
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        assert gate.message_ts == prompt.ts  # the prompt that gets updated
    assert any(b["type"] == "actions" for b in prompt.blocks)
    # the push notification reads as a sponsor would say it; the digest is in the prompt's details
    assert prompt.text == f"G1 for {acme.name}: {Phase.POC.question} Your answer is asked for."
    assert gate.digest not in prompt.text and gate.digest in json.dumps(prompt.blocks)


def test_a_change_request_prompt_whose_answer_is_lost_is_posted_once(rt: Runtime, slack: SlackStandin,
                                                                     jira: JiraStandin, acme: Engagement) -> None:
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, PM, None)
    record_baseline.fn(rt, acme)
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, acme.id, Draft(title="Add a SHAP report", effort_days=2, cost=1000),
                           requested_by=PM, source=ChangeSource.CLI)
        crs.assess(session, cr)
        cr_id = cr.id
    slack.drop_after("chat.postMessage")

    cr_tasks.post_prompt.fn(rt, cr_id)

    (prompt,) = top_level(slack, acme.slack_channel, "Change request CR-")
    with transaction(rt.sessions) as session:
        assert crs.by_id(session, cr_id).message_ts == prompt.ts


def test_weekly_reports_whose_answers_are_lost_are_posted_once(rt: Runtime, slack: SlackStandin,
                                                               jira: JiraStandin, acme: Engagement) -> None:
    posted_gate(rt, acme)
    rt.settings = rt.settings.model_copy(update={"portfolio_channel": "C0PORTFOLIO"})
    now = utcnow()
    slack.drop_after("chat.postMessage")
    delivered, failed = collect.deliver_all(rt, collect.collect(rt, [acme.id], now).reports, post=True)
    assert failed == {}
    slack.drop_after("chat.postMessage")
    digest = collect.post_digest(rt, now)
    assert digest is not None

    (report,) = top_level(slack, acme.slack_channel, "Weekly status")
    (portfolio,) = top_level(slack, "C0PORTFOLIO", "Portfolio, week")
    with transaction(rt.sessions) as session:
        rows = {row.kind: row.message_ts for row in session.scalars(select(WeeklyReportRow))}
    assert rows == {ReportKind.ENGAGEMENT: report.ts, ReportKind.PORTFOLIO: portfolio.ts}
    assert [d.message_ts for d in delivered] == [report.ts] and digest[0] == portfolio.ts


POST_KICKOFF = textwrap.dedent("""
    from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
    from phasegate.configs.schema import Phase
    from phasegate.orchestration.runtime import Runtime
    from phasegate.settings import Settings
    from phasegate.tasks.kickoff import post_kickoff

    post_kickoff.fn(Runtime(Settings()), load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml"), Phase.POC)
    raise SystemExit("the kickoff was posted and recorded: the kill came too late")
""")


def test_a_process_killed_between_the_post_and_the_ledger_does_not_post_again(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """SIGKILL while Slack holds the answer to chat.postMessage (the stand-in has the whole request and
    applies it after 2 s): the message exists, the ledger never learns its ts. The next run posts nothing."""
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, PM, None)
    slack.delay_next("chat.postMessage", 2.0)
    env = os.environ | rt.settings.as_env() | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    child = subprocess.Popen([sys.executable, "-c", POST_KICKOFF], env=env, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: "chat.postMessage" in slack.calls or child.poll() is not None, timeout=60,
                   what="the child to post the kickoff")
        assert child.poll() is None, child.communicate()[1]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    wait_until(lambda: top_level(slack, acme.slack_channel, "started for *"), what="Slack to store the kickoff")
    assert kickoff_ts(rt, acme.id) is None

    ts = post_kickoff.fn(rt, acme, Phase.POC)

    (kickoff,) = top_level(slack, acme.slack_channel, "started for *")
    assert ts == kickoff.ts == kickoff_ts(rt, acme.id)


def test_a_channel_whose_history_the_bot_cannot_read_still_gets_its_kickoff(
        rt: Runtime, slack: SlackStandin, acme: Engagement, caplog: pytest.LogCaptureFixture) -> None:
    """Posting through chat:write.public without being in the channel: conversations.history answers
    not_in_channel. The kickoff is posted without the look-up (as before it existed), and the log says so."""
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, PM, None)
    slack.not_member.add(acme.slack_channel)

    ts = post_kickoff.fn(rt, acme, Phase.POC)

    assert [m.ts for m in top_level(slack, acme.slack_channel, "started for *")] == [ts] == [kickoff_ts(rt, acme.id)]
    assert "not_in_channel" in caplog.text and "without looking for an earlier copy" in caplog.text

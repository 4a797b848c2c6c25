"""The weekly report: built from the ledger, Jira and metrics; one failing source is missing evidence."""

from __future__ import annotations

import json

from helpers import posted_gate

from phasegate.configs.schema import Engagement
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import utcnow
from phasegate.messages.prompts import refresh
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect, render
from phasegate.sandbox.standins.blockkit import validate_blocks
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import Outcome, Via


def test_report_of_an_engagement_at_its_gate(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                             slack: SlackStandin) -> None:
    posted_gate(rt, acme)
    jira.set_status("ACME-1", "Done", done=True)
    jira.set_status("ACME-2", "In Progress", done=False)
    result = collect.collect(rt, ["acme-churn"], utcnow())
    assert result.failures == {}
    (report,) = result.reports
    progress = {m.key: (m.counts.done, m.counts.in_progress, m.counts.to_do) for m in report.milestones}
    assert progress == {"data-readiness": (1, 0, 0), "baseline-model": (0, 1, 0), "poc-report": (0, 0, 1)}
    assert report.milestones[0].issues[0].url == "https://acme.atlassian.net/browse/ACME-1"
    assert {m.name: m.value for m in report.metrics} == {"f1": 0.88, "data_quality_score": 0.93}
    (gate,) = report.gates
    assert set(gate.pending) == {"Dana Whitfield", "Omar Haddad", "Priya Natarajan"}
    assert report.change_requests.note == "none" and report.change_requests.drift == []
    assert report.budget.note == "no spend recorded yet" and report.budget.over == []
    assert report.budget.lines[0] == "PoC spend against its time-and-materials cap: 0 of 120,000 EUR (120,000 EUR left)"
    assert report.missing == []
    assert validate_blocks(render.blocks(report)) == []
    assert "[ACME-2](https://acme.atlassian.net/browse/ACME-2) In Progress" in render.markdown(report)


def test_one_failing_source_is_missing_evidence_and_the_rest_is_delivered(
        rt: Runtime, acme: Engagement, jira: JiraStandin, metrics: MetricsStandin, slack: SlackStandin) -> None:
    posted_gate(rt, acme)
    metrics.down = True
    (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports
    assert {m.source for m in report.missing} == {"metric f1", "metric data_quality_score"}
    assert all("HTTP 503" in m.reason for m in report.missing)
    assert [m.counts.total for m in report.milestones] == [1, 1, 1]  # Jira still read
    assert "evidence-missing" in {f.rule for f in report.findings}
    deliveries, failures = collect.deliver_all(rt, [report], post=True)
    assert failures == {}
    (posted,) = slack.messages(acme.slack_channel)[-1:]
    assert "Missing evidence" in str(posted.blocks) and "HTTP 503" in str(posted.blocks)


def test_a_gate_prompt_a_sponsor_can_read(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                          slack: SlackStandin) -> None:
    gate_id = posted_gate(rt, acme).id
    jira.set_status("ACME-1", "Done", done=True)
    with transaction(rt.sessions) as session:
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.GO, reason="pilot scope only",
                     via=Via.CLI)  # the milestones were open when the evidence was frozen: a waiver
    refresh(rt.sessions, rt.chat, gate_id)
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    message = slack.message(acme.slack_channel, str(gate.message_ts))
    text = json.dumps(message.blocks)
    assert ("Decided when 2 of the 3 approvers give the same answer, at least one from the client and one from "
            "the vendor.") in text
    assert "Dana Whitfield (<@U0SPONSOR1>, client sponsor) GO with waiver via cli" in text
    assert "*Waiting for* Omar Haddad (<@U0TECHLEAD>), Priya Natarajan (<@U0VENDLEAD>)" in text
    assert "Please answer by " in text and "Europe/Berlin (then it is escalated)" in text
    assert "<https://acme.atlassian.net/browse/ACME-1|ACME-1> To Do" in text  # status as frozen at opening
    (digest,) = [b for b in message.blocks if b.get("accessory", {}).get("type") == "overflow"]
    assert f"`{gate.digest[:12]}…`" in digest["text"]["text"]
    assert digest["accessory"]["options"][0]["text"]["text"] == gate.digest  # the full value, one click away
    assert validate_blocks(message.blocks) == []

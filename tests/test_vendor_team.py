"""Issue 20 item 4: the vendor's named team, changed from the CLI and from a signed Slack slash command,
in the audit chain, the weekly report and the next gate's prompt; outside text in it escaped."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from helpers import posted_gate, register, with_changes
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement
from phasegate.integrations.http import client
from phasegate.ledger import audit, gates, handoff
from phasegate.ledger.db import transaction
from phasegate.ledger.models import utcnow
from phasegate.messages.prompts import render
from phasegate.ops.servers import ServerHandle, serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import collect
from phasegate.reports import render as report_render
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps
from phasegate.slack.signature import sign
from phasegate.states import AuditKind, Via

PM, SPONSOR, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0VENDLEAD"
SECRET = "test-secret"


def findings(rt: Runtime) -> object:
    (report,) = collect.collect(rt, ["acme-churn"], utcnow()).reports
    return report


# Item 4: named individuals ------------------------------------------------------------------------

class Endpoint:
    def __init__(self, handle: ServerHandle) -> None:
        self.handle, self.http = handle, client(timeout=10)

    def command(self, user: str, text: str, channel: str = "C0ACMECHURN") -> httpx.Response:
        body = urlencode({"command": "/phasegate", "text": text, "user_id": user, "channel_id": channel,
                          "trigger_id": "t.1", "response_url": "http://127.0.0.1:9/none"}).encode()
        stamp = str(int(time.time()))
        return self.http.post(self.handle.url + "/slack/commands", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(SECRET, stamp, body)})


@pytest.fixture
def endpoint(rt: Runtime) -> Iterator[Endpoint]:
    handle = serve_in_thread(create_app(SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat,
                                                  resume=lambda _: None)))
    yield Endpoint(handle)
    handle.stop()


def test_a_team_change_from_the_cli_and_from_slack_is_in_the_chain_the_report_and_the_next_gate(
        rt: Runtime, acme: Engagement, jira: JiraStandin, slack: SlackStandin, ledger_url: str,
        endpoint: Endpoint) -> None:
    register(rt, acme)
    runner = CliRunner(env={"PHASEGATE_DATABASE_URL": ledger_url, "COLUMNS": "200"})
    result = runner.invoke(app, ["team", "change", "acme-churn", "--as", PM, "--leaves", "Jonas Berg",
                                 "--joins", "Ana Ruiz", "--role", "ML engineer", "--reason", "Jonas moved to another client"])
    assert result.exit_code == 0, result.output
    assert "Ana Ruiz (ML engineer) joined the vendor's team" in result.output
    refused = runner.invoke(app, ["team", "change", "acme-churn", "--as", PM, "--leaves", "Nobody Here",
                                  "--reason", "typo"])
    assert refused.exit_code == 1 and "'Nobody Here' is not on acme-churn's vendor team" in refused.output

    answer = endpoint.command(VENDOR_LEAD, 'team acme-churn leaves Mei Tanaka joins "Li Wei" as MLOps engineer '
                                           "because Mei is on parental leave")
    assert answer.status_code == 200 and answer.json()["text"].startswith("Recorded.")
    assert "Li Wei (MLOps engineer)" in answer.json()["text"]
    outsider = endpoint.command("U0STRANGER", "team acme-churn leaves Li Wei because no reason")
    assert "neither the PM nor an approver" in outsider.json()["text"]
    elsewhere = endpoint.command(SPONSOR, "team acme-churn", channel="C0OTHER")
    assert "is handled in its channel" in elsewhere.json()["text"]

    with transaction(rt.sessions) as session:
        events = audit.events(session, "acme-churn", AuditKind.ROSTER_CHANGED)
    assert [(e.subject, e.payload["name"], e.payload["by"], e.payload["channel"]) for e in events] == [
        ("left", "Jonas Berg", PM, "cli"), ("joined", "Ana Ruiz", PM, "cli"),
        ("left", "Mei Tanaka", VENDOR_LEAD, "slack"), ("joined", "Li Wei", VENDOR_LEAD, "slack")]

    gate = posted_gate(rt, acme, jira=jira)
    report = findings(rt)
    assert report.sponsor.team == ["Priya Natarajan (vendor lead)", "Ana Ruiz (ML engineer)", "Li Wei (MLOps engineer)"]
    assert any("Mei Tanaka (MLOps engineer) left — “Mei is on parental leave”, recorded by Priya Natarajan" in line
               for line in report.sponsor.team_changes)
    prompt = json.dumps(slack.message(acme.slack_channel, str(gate.message_ts)).blocks, ensure_ascii=False)
    assert "Vendor team changes since the last gate" in prompt
    assert "Li Wei (MLOps engineer) joined: Mei is on parental leave" in prompt


def test_outside_text_in_the_team_and_data_lines_is_escaped(rt: Runtime, acme: Engagement, jira: JiraStandin,
                                                           slack: SlackStandin) -> None:
    hostile = with_changes(acme, vendor_team=[{"name": "<!channel> Eve", "role": "lead <@U0SPONSOR1>"}],
                           data_handling={"encryption": "<https://evil.example|AES>", "deletion_deadline": "2027-03-31"})
    gate = posted_gate(rt, hostile, jira=jira)
    with transaction(rt.sessions) as session:
        handoff.change_team(session, hostile, joins=("Mallory <!here>", "ML *engineer*"), leaves=None, by=PM,
                            reason="<!everyone> now", via=Via.CLI)
    report = findings(rt)
    shown = json.dumps(report_render.blocks(report)) + json.dumps(slack.message(acme.slack_channel, str(gate.message_ts)).blocks)
    with transaction(rt.sessions) as session:
        shown += json.dumps(render(session, gates.by_id(session, gate.id))[1])
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<@U0SPONSOR1>", "<https://evil.example|AES>"):
        assert raw not in shown.replace("(<@U0SPONSOR1>", ""), raw
    assert "&lt;!channel&gt; Eve (lead &lt;@U0SPONSOR1&gt;)" in shown and "&lt;!everyone&gt; now" in shown

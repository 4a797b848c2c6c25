"""Answers typed at the CLI: `--as U…` names a Slack user but proves nothing, so the decision
also keeps the operating-system user and host that ran the command, the Slack prompt shows it,
and an engagement file can refuse CLI answers altogether (`cli_answers: false` in a gate)."""

from __future__ import annotations

import json

import pytest
from helpers import posted_gate, with_changes

from phasegate.configs.schema import Engagement
from phasegate.errors import PolicyError
from phasegate.gates import operations
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import Outcome, Via

SPONSOR, VENDOR_LEAD = "U0SPONSOR1", "U0VENDLEAD"


def test_the_prompt_shows_who_ran_the_command(rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate_id = posted_gate(rt, acme, jira=jira).id
    operations.decide(rt, gate_id, approver=SPONSOR, outcome=Outcome.GO, reason="", operator="ana@build-7")
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        [decision] = gates.decisions(session, gate_id)
    assert (decision.approver, decision.via, decision.operator) == (SPONSOR, Via.CLI, "ana@build-7")
    assert gate.message_ts is not None
    prompt = json.dumps(slack.message(acme.slack_channel, gate.message_ts).blocks)
    assert f"Dana Whitfield (<@{SPONSOR}>, client sponsor) GO via cli (recorded from the CLI by ana@build-7)" in prompt


def test_the_operator_is_escaped_in_the_prompt(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                               acme: Engagement) -> None:
    """The user name comes from $USER / $LOGNAME, which anyone can set to `<!channel>`."""
    gate_id = posted_gate(rt, acme, jira=jira).id
    operations.decide(rt, gate_id, approver=SPONSOR, outcome=Outcome.GO, reason="", operator="<!channel>@h&st")
    with transaction(rt.sessions) as session:
        ts = gates.by_id(session, gate_id).message_ts
    assert ts is not None
    prompt = json.dumps(slack.message(acme.slack_channel, ts).blocks)
    assert "recorded from the CLI by &lt;!channel&gt;@h&amp;st" in prompt and "<!channel>" not in prompt


def test_a_gate_can_refuse_answers_from_the_cli(rt: Runtime, jira: JiraStandin, acme: Engagement) -> None:
    slack_only = with_changes(acme, phases__poc__gate__cli_answers=False)
    gate_id = posted_gate(rt, slack_only, jira=jira).id
    with transaction(rt.sessions) as session, pytest.raises(PolicyError, match=(
            r"acme-churn/G1 takes no answers from the CLI \(cli_answers: false in the engagement file\); "
            r"answer in Slack")):
        gates.answer(session, gate_id, approver=SPONSOR, outcome=Outcome.GO, reason="", via=Via.CLI,
                     operator="ana@build-7")
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate_id) == []
        result = gates.answer(session, gate_id, approver=SPONSOR, outcome=Outcome.GO, reason="",
                              via=Via.SLACK, delivery_id="d-1")
    assert result.recorded

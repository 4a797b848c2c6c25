"""Every Slack prompt converges to its gate's state in the ledger (issue 21 item 5). A prompt kept its
live buttons after the process that recorded the deciding click died before redrawing it (`up`
killed just after the click), and after a timeout's NO-GO; neither a further click nor `gate show`
redrew it. Over real HTTP to the Slack stand-in, with real signed clicks."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from helpers import posted_gate, wait_until, with_changes
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.schema import Engagement
from phasegate.gates.watch import watch
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ops.servers import ServerHandle, serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps
from phasegate.states import GateState, Outcome, Via
from phasegate.tasks.gates import redraw_prompt

SECRET = "test-secret"


def buttons(rt: Runtime, slack: SlackStandin, gate_id: int) -> bool:
    """Whether the posted prompt, as Slack shows it now, still has answer buttons."""
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
    assert gate.message_ts is not None
    return '"actions"' in json.dumps(slack.message(gate.channel, gate.message_ts).blocks)


def decided_behind_slacks_back(rt: Runtime, gate_id: int) -> None:
    """The quorum recorded, and the process dies before its follow-up redraws the prompt."""
    with transaction(rt.sessions) as session:
        for user in ("U0SPONSOR1", "U0VENDLEAD"):
            gates.answer(session, gate_id, approver=user, outcome=Outcome.GO, reason="", via=Via.SLACK)
        assert gates.by_id(session, gate_id).state is GateState.DECIDED


@pytest.fixture
def endpoint(rt: Runtime) -> Iterator[ServerHandle]:
    deps = SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat, resume=lambda run: None)
    handle = serve_in_thread(create_app(deps))
    yield handle
    handle.stop()


def test_a_further_click_redraws_a_prompt_left_with_buttons(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                                           endpoint: ServerHandle, acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    decided_behind_slacks_back(rt, gate.id)
    assert buttons(rt, slack, gate.id)  # the fault: the decided gate's prompt still takes clicks
    assert gate.message_ts is not None
    clicker = SlackUser("U0TECHLEAD", endpoint=endpoint.url, signing_secret=SECRET, slack=slack)
    assert clicker.click(gate.id, Outcome.GO, gate.channel, gate.message_ts).status_code == 200
    wait_until(lambda: not buttons(rt, slack, gate.id), what="the prompt to be redrawn without buttons")
    with transaction(rt.sessions) as session:
        assert [d.approver for d in gates.decisions(session, gate.id)] == ["U0SPONSOR1", "U0VENDLEAD"]


def test_gate_show_redraws_the_prompt(rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    decided_behind_slacks_back(rt, gate.id)
    assert buttons(rt, slack, gate.id)
    result = CliRunner(env=rt.settings.as_env() | {"COLUMNS": "200"}).invoke(app, ["gate", "show", str(gate.id)])
    assert result.exit_code == 0, result.output
    assert "Slack prompt redrawn from the ledger" in result.output
    assert not buttons(rt, slack, gate.id)


def test_the_run_carrying_out_a_decision_redraws_its_prompt(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                                            acme: Engagement) -> None:
    """What the phase flow does once it finds the gate decided (flows/phases.py wait_for_decision),
    whether woken by `up`'s catch-up, the gate watch or a replacement run."""
    gate = posted_gate(rt, acme, jira=jira)
    decided_behind_slacks_back(rt, gate.id)
    redraw_prompt.fn(rt, gate.id)
    assert not buttons(rt, slack, gate.id)


def test_a_timeout_no_go_redraws_the_prompt(rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    engagement = with_changes(acme, phases__poc__gate__timeout_business_days=2,
                              phases__poc__gate__timeout_outcome="no_go")
    gate = posted_gate(rt, engagement)
    assert buttons(rt, slack, gate.id)
    report = watch(rt, gate.opened_at + dt.timedelta(days=14), lambda run: None)
    assert report.overdue == ["acme-churn/G1"] and report.problems == []
    with transaction(rt.sessions) as session:
        assert gates.by_id(session, gate.id).outcome is Outcome.NO_GO
    assert not buttons(rt, slack, gate.id)

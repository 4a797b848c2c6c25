"""Prompt updates converge on the ledger: a chat.update that lands late (held by the Slack stand-in,
as network jitter does) and a 500 on the deciding chat.update both end with the prompt showing what
the ledger says, over real HTTP to the stand-in."""

from __future__ import annotations

import json
import threading

from helpers import posted_gate, wait_until

from phasegate.configs.schema import Engagement
from phasegate.gates import answers
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.messages.prompts import render
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import GateState, Outcome, Via


def answer(rt: Runtime, gate_id: int, user: str) -> list[str]:
    """What `gate decide` does: record, then the shared after-answer step at once (a Slack click
    leaves that to the refresher, which draws once per mark: tests/test_followups.py)."""
    with transaction(rt.sessions) as session:
        result = gates.answer(session, gate_id, approver=user, outcome=Outcome.GO, reason="", via=Via.SLACK)
    return answers.after_answer(rt.sessions, rt.chat, gate_id, decided=result.decided is not None, wake=None).problems


def shown_and_ledger(rt: Runtime, slack: SlackStandin, gate_id: int) -> tuple[str, str]:
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        assert gate.state is GateState.DECIDED and gate.message_ts is not None
        text, blocks = render(session, gate)
    posted = slack.message(gate.channel, gate.message_ts)
    return (json.dumps([posted.text, posted.blocks], sort_keys=True), json.dumps([text, blocks], sort_keys=True))


def test_an_update_that_lands_late_is_followed_by_the_ledgers_state(rt: Runtime, slack: SlackStandin, jira: JiraStandin,
                                                                    acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)  # milestones done: a GO needs no waiver
    before = slack.calls.count("chat.update")
    slack.delay_next("chat.update", 1.0)  # the first answer's update is sent first and lands last
    first = threading.Thread(target=answer, args=(rt, gate.id, "U0SPONSOR1"))
    first.start()
    wait_until(lambda: slack.calls.count("chat.update") > before, what="the first update to be under way")
    assert answer(rt, gate.id, "U0VENDLEAD") == []  # completes the quorum; its update lands at once
    first.join()

    shown, ledger = shown_and_ledger(rt, slack, gate.id)
    assert shown == ledger
    assert "Decided: GO" in shown and '"actions"' not in shown


def test_a_500_on_the_deciding_update_is_retried(rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)  # milestones done: a GO needs no waiver
    assert answer(rt, gate.id, "U0SPONSOR1") == []
    slack.fail_next("chat.update", status=500, times=2)

    assert answer(rt, gate.id, "U0VENDLEAD") == []

    shown, ledger = shown_and_ledger(rt, slack, gate.id)
    assert shown == ledger and "Decided: GO" in shown

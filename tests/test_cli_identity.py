"""Answers typed at the CLI: `--as U…` names a Slack user but proves nothing, so every command that
changes the ledger also keeps the operating-system account and host that ran it, the Slack prompt
shows it, and an engagement file can refuse CLI answers altogether (`cli_answers: false` in a gate
or in its `change_requests:` section)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Invoke, ledger_of, ok, os_operator, posted_gate, refused, with_changes
from sqlalchemy import select
from test_change_requests import file, running
from test_change_requests_cli import start_poc
from test_cli import ACME_FILE

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import PolicyError
from phasegate.gates import operations
from phasegate.ledger import change_decisions, gates
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import (
    AttestationRow,
    AuditEventRow,
    ChangeDecisionRow,
    ChangeRequestRow,
    SpendRow,
    utcnow,
)
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Draft
from phasegate.rules.evidence import Snapshot
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.states import Outcome, Via

PM, SPONSOR, VENDOR_LEAD = "U0PMACME01", "U0SPONSOR1", "U0VENDLEAD"


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
            r"G1 takes no answers from the CLI \(cli_answers: false in the engagement file\); "
            r"answer in Slack")):
        gates.answer(session, gate_id, approver=SPONSOR, outcome=Outcome.GO, reason="", via=Via.CLI,
                     operator="ana@build-7")
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate_id) == []
        result = gates.answer(session, gate_id, approver=SPONSOR, outcome=Outcome.GO, reason="",
                              via=Via.SLACK, delivery_id="d-1")
    assert result.recorded


@pytest.mark.parametrize("where", ["change_requests", "phase_gate"])
def test_a_change_request_can_refuse_answers_from_the_cli(rt: Runtime, acme: Engagement, where: str) -> None:
    """The same switch as a gate's, read where the request's approvers are: the `change_requests:`
    section, or without one the phase's gate."""
    if where == "change_requests":
        policy = acme.phases.poc.gate.model_dump(mode="json") | {"cli_answers": False}
        slack_only = with_changes(acme, change_requests=policy)
    else:
        slack_only = with_changes(acme, phases__poc__gate__cli_answers=False)
    running(rt, slack_only)
    cr_id = file(rt, Draft(title="Explain churn drivers", scope_added=("shap-explanations",)))
    with transaction(rt.sessions) as session, pytest.raises(PolicyError, match=(
            r"acme-churn/CR-1 takes no answers from the CLI \(cli_answers: false in the engagement file\); "
            r"answer in Slack")):
        change_decisions.answer(session, cr_id, approver=SPONSOR, outcome=Outcome.APPROVE, reason="", via=Via.CLI)
    with transaction(rt.sessions) as session:
        assert crs.decisions(session, cr_id) == []
        result = change_decisions.answer(session, cr_id, approver=SPONSOR, outcome=Outcome.APPROVE, reason="",
                                         via=Via.SLACK, delivery_id="d-1")
    assert result.recorded


def test_every_cli_command_that_changes_the_ledger_records_who_ran_it(cli: Invoke, home: Path) -> None:
    """Answers, attestations, spend, change requests and their withdrawal, registration, review and
    cancellation: each keeps the account and host that ran it, in its row where it has one and in
    its audit event (which the hash chain covers)."""
    me = os_operator()
    ok(cli("engagement", "create", str(ACME_FILE)))
    start_poc(home)
    ok(cli("phase", "review", "acme-churn"))
    with ledger_of(home) as session:  # what the phase run does once asked for the review
        snapshot = Snapshot(engagement_id="acme-churn", phase=Phase.POC, timebox=1, collected_at=utcnow(),
                            milestones=[], metrics=[], criteria=[])
        gate_id = gates.open_gate(session, snapshot, requested_by=PM, flow_run_id=None, channel="C0ACMECHURN").id
    ok(cli("gate", "decide", str(gate_id), "go", "--as", SPONSOR))
    ok(cli("evidence", "attest", "acme-churn", "handover", "pair-programming", "--as", VENDOR_LEAD))
    ok(cli("budget", "spend", "acme-churn", "poc", "1000", "--as", PM))
    ok(cli("cr", "submit", "acme-churn", "--as", PM, "--title", "Explainability report", "--add", "shap-report"))
    ok(cli("cr", "decide", "acme-churn", "1", "approve", "--as", SPONSOR))
    ok(cli("cr", "withdraw", "acme-churn", "1", "--as", PM, "--reason", "folded into the development plan"))
    shown = ok(cli("cr", "show", "acme-churn", "1"))
    assert "via cli on " in shown and f"(from the CLI by {me})" in shown
    assert f"Dana Whitfield ({SPONSOR}, client) APPROVE via cli (recorded from the CLI by {me})" in shown
    ok(cli("engagement", "cancel", "acme-churn", "--reason", "the client stopped the programme"))
    with ledger_of(home) as session:
        rows = {"gate decide": gates.decisions(session, gate_id)[0].operator,
                "evidence attest": session.scalars(select(AttestationRow)).one().operator,
                "budget spend": session.scalars(select(SpendRow)).one().operator,
                "cr submit": session.scalars(select(ChangeRequestRow)).one().operator,
                "cr decide": session.scalars(select(ChangeDecisionRow)).one().operator}
        events = {e.kind.value: e.payload for e in session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq))}
    assert rows == dict.fromkeys(rows, me)
    kinds = ("engagement_registered", "review_requested", "decision_recorded", "attestation_recorded",
             "spend_recorded", "cr_submitted", "cr_decision_recorded", "cr_withdrawn")
    assert {kind: events.get(kind, {}).get("operator") for kind in kinds} == dict.fromkeys(kinds, me)
    assert events["engagement_closed"]["reason"] == f"cancelled by {me}: the client stopped the programme"


def test_phase_start_records_who_asked_even_when_the_run_cannot_start(cli: Invoke, home: Path) -> None:
    """The request is kept, with its account and host, whatever Prefect does with it (here: down)."""
    ok(cli("engagement", "create", str(ACME_FILE)))
    refused(cli("phase", "start", "acme-churn", "poc", "--as", PM), "the Prefect API is not reachable")
    with ledger_of(home) as session:
        [event] = [e for e in session.scalars(select(AuditEventRow)) if e.kind.value == "phase_start_requested"]
    assert (event.subject, event.payload["requested_by"], event.payload["operator"]) == ("poc", PM, os_operator())

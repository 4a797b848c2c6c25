"""The Slack endpoint over real HTTP: signed requests in, Slack Web API calls out (to the stand-in)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from helpers import closed_port_url, posted_gate, register, wait_until, with_changes

from phasegate.configs.schema import Engagement
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ops.local import prefect_api
from phasegate.ops.servers import ServerHandle, serve_in_thread
from phasegate.orchestration.runs import PrefectRuns
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps
from phasegate.slack.signature import sign
from phasegate.states import GateState, Outcome, Via

SECRET = "test-secret"


class Endpoint:
    def __init__(self, handle: ServerHandle, resumed: list[str]) -> None:
        self.handle, self.resumed = handle, resumed
        self.url = handle.url + "/slack/interactions"


@pytest.fixture
def endpoint(rt: Runtime) -> Iterator[Endpoint]:
    resumed: list[str] = []
    deps = SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat, resume=resumed.append)
    handle = serve_in_thread(create_app(deps))
    yield Endpoint(handle, resumed)
    handle.stop()


def user(endpoint: Endpoint, slack: SlackStandin, user_id: str) -> SlackUser:
    return SlackUser(user_id, endpoint=endpoint.handle.url, signing_secret=SECRET, slack=slack)


def gate_row(rt: Runtime, gate_id: int) -> gates.GateRow:
    with transaction(rt.sessions) as session:
        return gates.by_id(session, gate_id)


def test_bad_requests_get_401_never_500(rt: Runtime, endpoint: Endpoint) -> None:
    body = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U0SPONSOR1"}})}).encode()
    now = str(int(time.time()))
    cases = [
        {},  # no headers at all
        {"X-Slack-Request-Timestamp": now},
        {"X-Slack-Signature": sign(SECRET, now, body)},
        {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": sign("wrong", now, body)},
        {"X-Slack-Request-Timestamp": str(int(now) - 330), "X-Slack-Signature": sign(SECRET, str(int(now) - 330), body)},
        {"X-Slack-Request-Timestamp": str(int(now) + 330), "X-Slack-Signature": sign(SECRET, str(int(now) + 330), body)},
        {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": sign(SECRET, "soon", body)},
        {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": sign(SECRET, "9" * 5000, body)},
        {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": ("v0=" + "é" * 64).encode("latin-1")},
    ]
    for index, headers in enumerate(cases):
        response = httpx.post(endpoint.url, content=body, headers=headers)
        assert response.status_code == 401, (index, headers)


def test_signed_but_malformed_payloads_get_400(rt: Runtime, endpoint: Endpoint) -> None:
    for body in [b"", b"payload=not-json", b"nopayload=1", b"payload=%5B%5D", b"\xff\xfe",
                 urlencode({"payload": json.dumps({"type": "block_actions"})}).encode(),
                 urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U0SPONSOR1"}})}).encode()]:
        now = str(int(time.time()))
        response = httpx.post(endpoint.url, content=body,
                              headers={"X-Slack-Request-Timestamp": now, "X-Slack-Signature": sign(SECRET, now, body)})
        assert response.status_code == 400, body


def test_quorum_by_clicks_records_once_updates_prompt_and_resumes(
        rt: Runtime, endpoint: Endpoint, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    gate_id = gate.id
    sponsor, vendor = user(endpoint, slack, "U0SPONSOR1"), user(endpoint, slack, "U0VENDLEAD")
    click = sponsor.click_payload(gate_id, Outcome.GO, gate.channel, gate.message_ts)
    for _ in range(3):  # Slack retries a delivery it thinks was lost
        assert sponsor.send(click).status_code == 200
    assert sponsor.click(gate_id, Outcome.GO, gate.channel, gate.message_ts).status_code == 200  # double click
    with transaction(rt.sessions) as session:
        assert [(d.approver, d.outcome) for d in gates.decisions(session, gate_id)] == [("U0SPONSOR1", Outcome.GO)]
        assert gates.by_id(session, gate_id).state is GateState.OPEN
    wait_until(lambda: "U0SPONSOR1" in json.dumps(slack.message(gate.channel, gate.message_ts).blocks))
    assert vendor.click(gate_id, Outcome.GO, gate.channel, gate.message_ts).status_code == 200
    decided = gate_row(rt, gate_id)
    assert decided.state is GateState.DECIDED and decided.outcome is Outcome.GO
    with transaction(rt.sessions) as session:
        rows = gates.decisions(session, gate_id)
    assert {d.digest for d in rows} == {decided.digest}
    assert {d.via for d in rows} == {Via.SLACK}
    wait_until(lambda: "Decided: GO" in json.dumps(slack.message(gate.channel, gate.message_ts).blocks))
    prompt = json.dumps(slack.message(gate.channel, gate.message_ts).blocks)
    assert "<@U0SPONSOR1>" in prompt and "<@U0VENDLEAD>" in prompt and '"actions"' not in prompt


def test_wakes_the_flow_run_when_decided(rt: Runtime, endpoint: Endpoint, slack: SlackStandin, jira: JiraStandin,
                                         acme: Engagement) -> None:
    gate_id = posted_gate(rt, acme, jira=jira).id
    with transaction(rt.sessions) as session:
        gates.by_id(session, gate_id).flow_run_id = "run-123"
    gate = gate_row(rt, gate_id)
    assert gate.message_ts is not None
    user(endpoint, slack, "U0TECHLEAD").click(gate_id, Outcome.GO, gate.channel, gate.message_ts)
    wait_until(lambda: "U0TECHLEAD" in json.dumps(slack.message(gate.channel, gate.message_ts).blocks))
    user(endpoint, slack, "U0VENDLEAD").click(gate_id, Outcome.GO, gate.channel, gate.message_ts)
    wait_until(lambda: endpoint.resumed != [])
    assert endpoint.resumed == ["run-123"]  # woken once, by the answer that completed the quorum


def test_a_decision_while_prefect_is_down_is_recorded_and_the_approver_told_when_it_goes_on(
        rt: Runtime, slack: SlackStandin, acme: Engagement) -> None:
    """The run cannot be woken (nothing listens at the Prefect API): the decision stands, and the
    approver who completed the quorum through the waiver form (no response_url) is told, alone."""
    with prefect_api(closed_port_url()):
        deps = SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat, resume=PrefectRuns().wake)
        handle = serve_in_thread(create_app(deps))
    try:
        gate = posted_gate(rt, acme)  # milestones not done: GO takes a waiver, given in the form
        with transaction(rt.sessions) as session:
            gates.by_id(session, gate.id).flow_run_id = "0b6d5c0e-0000-4000-8000-000000000001"
        for number, approver in enumerate(("U0SPONSOR1", "U0VENDLEAD"), start=1):
            clicker = SlackUser(approver, endpoint=handle.url, signing_secret=SECRET, slack=slack)
            clicker.click(gate.id, Outcome.GO, gate.channel, gate.message_ts)
            wait_until(lambda: len(slack.views) == number)  # noqa: B023
            assert clicker.submit_view(slack.views[-1], "pilot only").status_code == 200
        wait_until(lambda: slack.ephemeral != [], what="the approver to be told")
        assert gate_row(rt, gate.id).state is GateState.DECIDED
        assert [(e["user"], e["channel"], e["text"]) for e in slack.ephemeral] == [
            ("U0VENDLEAD", gate.channel, "Recorded; the next step starts when the orchestrator is back.")]
    finally:
        handle.stop()


def test_outsiders_and_the_requester_are_told_and_nothing_is_recorded(
        rt: Runtime, endpoint: Endpoint, slack: SlackStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme, requested_by="U0TECHLEAD")
    gate_id = gate.id
    urls = {}
    for who in ("U0MALLORY1", "U0TECHLEAD"):  # each refusal is told after its answer: in either order
        clicker = user(endpoint, slack, who)
        payload = clicker.click_payload(gate_id, Outcome.GO, gate.channel, gate.message_ts)
        assert clicker.send(payload).status_code == 200
        urls[who] = payload["response_url"]
    wait_until(lambda: len(slack.responses) == 2)
    [mallory], [requester] = slack.said_to(urls["U0MALLORY1"]), slack.said_to(urls["U0TECHLEAD"])
    assert "U0MALLORY1 is not an approver" in mallory
    assert "requested G1 and so cannot approve it" in requester
    assert all(r["response_type"] == "ephemeral" for r in slack.responses)
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate_id) == []


def test_forged_user_in_button_value_is_not_trusted(
        rt: Runtime, endpoint: Endpoint, slack: SlackStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme)
    gate_id = gate.id
    mallory = user(endpoint, slack, "U0MALLORY1")
    payload = mallory.click_payload(gate_id, Outcome.GO, gate.channel, gate.message_ts)
    payload["actions"][0]["value"] = f"{gate_id}:U0SPONSOR1"
    assert mallory.send(payload).status_code == 200
    payload["actions"][0]["value"] = str(gate_id)
    payload["actions"][0]["user"] = {"id": "U0SPONSOR1"}
    assert mallory.send(payload).status_code == 200
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate_id) == []


def test_no_go_asks_for_a_reason_in_a_modal(rt: Runtime, endpoint: Endpoint, slack: SlackStandin,
                                            jira: JiraStandin,
                                            acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    gate_id = gate.id
    sponsor = user(endpoint, slack, "U0SPONSOR1")
    sponsor.click(gate_id, Outcome.NO_GO, gate.channel, gate.message_ts)
    wait_until(lambda: len(slack.views) == 1)
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate_id) == []  # the click alone records nothing
    empty = sponsor.submit_view(slack.views[0], "   ")
    assert empty.json()["response_action"] == "errors" and "reason" in empty.json()["errors"]
    assert sponsor.submit_view(slack.views[0], "Data quality is too low").status_code == 200
    sponsor.click(gate_id, Outcome.GO, gate.channel, gate.message_ts)  # a changed mind is a new decision
    with transaction(rt.sessions) as session:
        answers = [(d.outcome, d.reason) for d in gates.decisions(session, gate_id)]
    assert answers == [(Outcome.NO_GO, "Data quality is too low"), (Outcome.GO, "")]


def test_click_on_a_decided_gate_is_answered_with_the_decision(
        rt: Runtime, endpoint: Endpoint, slack: SlackStandin, jira: JiraStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    gate_id = gate.id
    for who in ("U0SPONSOR1", "U0VENDLEAD"):
        user(endpoint, slack, who).click(gate_id, Outcome.GO, gate.channel, gate.message_ts)
    user(endpoint, slack, "U0TECHLEAD").click(gate_id, Outcome.GO, gate.channel, gate.message_ts)
    wait_until(lambda: len(slack.responses) == 1)
    assert "already decided: GO by <@U0SPONSOR1>, <@U0VENDLEAD>" in slack.responses[0]["text"]
    with transaction(rt.sessions) as session:
        assert len(gates.decisions(session, gate_id)) == 2


def test_handover_items_can_be_attested_from_the_kickoff_buttons(
        rt: Runtime, endpoint: Endpoint, slack: SlackStandin, acme: Engagement) -> None:
    from phasegate.configs.schema import Phase
    from phasegate.ledger import engagements, phases
    from phasegate.tasks.kickoff import post_kickoff

    register(rt, acme)
    with transaction(rt.sessions) as session:
        phases.start_phase(session, acme, Phase.HANDOVER, requested_by="U0PMACME01", flow_run_id=None,
                           today=acme.start_date)
    ts = post_kickoff.fn(rt, acme, Phase.HANDOVER)
    buttons = [e for b in slack.message(acme.slack_channel, ts).blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["attest:pair-programming", "attest:supervised-operation",
                                                 "attest:knowledge-transfer-drill", "attest:data-deletion"]
    lead, outsider = user(endpoint, slack, "U0TECHLEAD"), user(endpoint, slack, "U0MALLORY1")
    for who in (lead, lead, outsider):
        payload = who.click_payload(0, Outcome.GO, acme.slack_channel, ts)
        payload["actions"][0].update(action_id="attest:data-deletion", value=acme.id)
        assert who.send(payload).status_code == 200
    wait_until(lambda: len(slack.responses) == 3)
    texts = sorted(r["text"] for r in slack.responses)
    assert texts[0].startswith("Not recorded: U0MALLORY1 is not an approver")
    assert texts[1] == "Recorded: <@U0TECHLEAD> attested data-deletion."
    assert texts[2] == "You already attested data-deletion."
    with transaction(rt.sessions) as session:
        attested = engagements.attestations(session, acme.id, Phase.HANDOVER)
    assert attested["data-deletion"][0] == "U0TECHLEAD"


def test_no_reason_form_for_someone_who_cannot_answer(rt: Runtime, endpoint: Endpoint, slack: SlackStandin,
                                                      acme: Engagement) -> None:
    gate = posted_gate(rt, acme)
    gate_id = gate.id
    user(endpoint, slack, "U0MALLORY1").click(gate_id, Outcome.NO_GO, gate.channel, gate.message_ts)
    wait_until(lambda: len(slack.responses) == 1)
    assert "U0MALLORY1 is not an approver" in slack.responses[0]["text"] and slack.views == []


def test_oversized_bodies_are_refused_before_reading(rt: Runtime, endpoint: Endpoint) -> None:
    body = b"payload=" + b"x" * 1_000_001
    now = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": sign(SECRET, now, body)}
    assert httpx.post(endpoint.url, content=body, headers=headers).status_code == 413
    chunks = iter([body[:500_000], body[500_000:]])  # no Content-Length: sent chunked
    assert httpx.post(endpoint.url, content=chunks, headers=headers).status_code == 413


def test_odd_but_signed_values_never_cause_a_500(rt: Runtime, endpoint: Endpoint, slack: SlackStandin,
                                                 jira: JiraStandin,
                                                 acme: Engagement) -> None:
    gate = posted_gate(rt, acme, jira=jira)
    gate_id = gate.id
    sponsor = user(endpoint, slack, "U0SPONSOR1")
    huge = sponsor.click_payload(gate_id, Outcome.GO, gate.channel, gate.message_ts)
    huge["actions"][0]["value"] = "9" * 20
    assert sponsor.send(huge).status_code == 200
    view = {"callback_id": "gate_reason", "private_metadata": "9" * 20 + ":no_go", "id": "V1", "hash": "h",
            "state": {"values": {"reason": {"reason": {"value": "x"}}}}}
    assert sponsor.send({"type": "view_submission", "user": {"id": "U0SPONSOR1"}, "view": view}).status_code == 400
    long_ts = sponsor.click_payload(gate_id, Outcome.GO, gate.channel, gate.message_ts)
    long_ts["actions"][0]["action_ts"] = "1" * 10_000
    assert sponsor.send(long_ts).status_code == 200
    assert sponsor.send(long_ts).status_code == 200  # the same delivery again
    with transaction(rt.sessions) as session:
        assert [(d.approver, d.outcome) for d in gates.decisions(session, gate_id)] == [("U0SPONSOR1", Outcome.GO)]


@pytest.mark.parametrize("phase_name", ["poc", "development", "handover"])
def test_attest_buttons_work_on_every_phases_kickoff(rt: Runtime, endpoint: Endpoint, slack: SlackStandin,
                                                     acme: Engagement, phase_name: str) -> None:
    """Each kickoff's buttons name their phase; the endpoint used to assume the handover."""
    from phasegate.configs.schema import Phase
    from phasegate.ledger import engagements, phases
    from phasegate.tasks.kickoff import post_kickoff

    phase = Phase(phase_name)
    items = [m.model_dump() for m in acme.phases.of(phase).milestones]
    items.append({"key": "signed-off", "title": "Signed off on paper", "attestation": True})
    engagement = with_changes(acme, **{f"phases__{phase_name}__milestones": items})
    register(rt, engagement)
    with transaction(rt.sessions) as session:
        phases.start_phase(session, engagement, phase, requested_by="U0PMACME01", flow_run_id=None,
                           today=engagement.start_date)
    ts = post_kickoff.fn(rt, engagement, phase)
    [button] = [e for b in slack.message(engagement.slack_channel, ts).blocks if b["type"] == "actions"
                for e in b["elements"] if e["action_id"] == "attest:signed-off"]
    assert button["value"] == f"{engagement.id}:{phase_name}"
    sponsor = user(endpoint, slack, "U0SPONSOR1")
    payload = sponsor.click_payload(0, Outcome.GO, engagement.slack_channel, ts)
    payload["actions"][0].update(action_id=button["action_id"], value=button["value"])
    assert sponsor.send(payload).status_code == 200
    wait_until(lambda: len(slack.responses) == 1)
    assert slack.responses[0]["text"] == "Recorded: <@U0SPONSOR1> attested signed-off."
    with transaction(rt.sessions) as session:
        assert engagements.attestations(session, engagement.id, phase)["signed-off"][0] == "U0SPONSOR1"


def test_an_item_for_the_client_side_is_not_attested_by_the_vendor(
        rt: Runtime, endpoint: Endpoint, slack: SlackStandin, acme: Engagement) -> None:
    from phasegate.configs.schema import Phase
    from phasegate.ledger import engagements

    drill = next(m for m in acme.phases.handover.milestones if m.key == "knowledge-transfer-drill")
    assert drill.attesting_side == "client"
    register(rt, acme)
    for who in ("U0VENDLEAD", "U0TECHLEAD"):
        clicker = user(endpoint, slack, who)
        payload = clicker.click_payload(0, Outcome.GO, acme.slack_channel, "1.0")
        payload["actions"][0].update(action_id="attest:knowledge-transfer-drill", value=f"{acme.id}:handover")
        assert clicker.send(payload).status_code == 200
    wait_until(lambda: len(slack.responses) == 2)
    assert sorted(r["text"] for r in slack.responses) == [
        "Not recorded: knowledge-transfer-drill is attested by the client side; U0VENDLEAD is on the vendor side",
        "Recorded: <@U0TECHLEAD> attested knowledge-transfer-drill."]
    with transaction(rt.sessions) as session:
        assert engagements.attestations(session, acme.id, Phase.HANDOVER)["knowledge-transfer-drill"][0] == "U0TECHLEAD"


def test_a_side_for_an_item_without_attestation_is_a_file_error(acme: Engagement) -> None:
    from pydantic import ValidationError

    items = [m.model_dump() for m in acme.phases.poc.milestones]
    items[0]["attesting_side"] = "client"
    with pytest.raises(ValidationError, match="attesting_side needs attestation: true"):
        with_changes(acme, phases__poc__milestones=items)


def test_go_on_unmet_criteria_asks_for_a_waiver_and_shows_it(
        rt: Runtime, endpoint: Endpoint, slack: SlackStandin, acme: Engagement) -> None:
    gate = posted_gate(rt, acme)  # the milestone issues were just created: "all required milestones done" fails
    sponsor = user(endpoint, slack, "U0SPONSOR1")
    sponsor.click(gate.id, Outcome.GO, gate.channel, gate.message_ts)
    wait_until(lambda: len(slack.views) == 1)
    assert "Waiver: why GO although exit criteria are not met (recorded in the ledger)" in json.dumps(slack.views[0])
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate.id) == []  # the click alone records nothing
    empty = sponsor.submit_view(slack.views[0], "  ")
    assert "waiver" in empty.json()["errors"]["reason"]
    assert sponsor.submit_view(slack.views[0], "Pilot only; the milestones close next week").status_code == 200
    with transaction(rt.sessions) as session:
        answers = [(d.outcome, d.reason) for d in gates.decisions(session, gate.id)]
    assert answers == [(Outcome.GO, "Pilot only; the milestones close next week")]
    wait_until(lambda: "GO with waiver via slack" in json.dumps(slack.message(gate.channel, gate.message_ts).blocks))


def test_go_on_unmet_criteria_is_refused_where_waivers_are_not_allowed(
        rt: Runtime, endpoint: Endpoint, slack: SlackStandin, acme: Engagement) -> None:
    strict = with_changes(acme, phases__poc__gate__allow_waivers=False)
    gate = posted_gate(rt, strict)
    user(endpoint, slack, "U0SPONSOR1").click(gate.id, Outcome.GO, gate.channel, gate.message_ts)
    wait_until(lambda: len(slack.responses) == 1)
    assert "allows no waivers" in slack.responses[0]["text"] and slack.views == []
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate.id) == []

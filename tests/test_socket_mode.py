"""Socket Mode: slack_sdk's real client over a real WebSocket to the local stand-in, the endpoint's own
handlers behind it; the acknowledgement comes back and the answer is in the ledger."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from helpers import posted_gate, wait_until

from phasegate.configs.schema import Engagement
from phasegate.integrations.slack_chat import make_web_client
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ops.readiness import add_readiness
from phasegate.ops.servers import serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_socket import SlackSocketStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.change_requests import USAGE
from phasegate.slack.deps import SlackDeps
from phasegate.slack.socket import start_socket_mode
from phasegate.states import GateState, Outcome, Via

pytestmark = pytest.mark.slow


class Socket:
    def __init__(self, standin: SlackSocketStandin, resumed: list[str]) -> None:
        self.standin, self.resumed = standin, resumed


@pytest.fixture
def socket(rt: Runtime, slack: SlackStandin) -> Iterator[Socket]:
    standin = SlackSocketStandin(slack)
    standin.start()
    resumed: list[str] = []
    deps = SlackDeps(signing_secret="unused over a socket", sessions=rt.sessions, chat=rt.chat, resume=resumed.append)
    client = start_socket_mode(deps, slack.app_token, make_web_client(slack.bot_token, slack.base_url))
    standin.wait_connected()
    yield Socket(standin, resumed)
    client.close()
    standin.stop()


def test_clicks_over_socket_mode_are_acknowledged_and_recorded(rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement,
                                                               socket: Socket) -> None:
    gate = posted_gate(rt, acme, jira=jira)  # milestones done: a GO needs no waiver
    assert gate.message_ts is not None
    sponsor = SlackUser("U0SPONSOR1", endpoint="http://unused", signing_secret="", slack=slack)
    click = sponsor.click_payload(gate.id, Outcome.GO, gate.channel, gate.message_ts)
    assert socket.standin.deliver("interactive", click) == {}
    assert socket.standin.deliver("interactive", click) == {}  # Slack resends an envelope: still one answer
    lead = SlackUser("U0VENDLEAD", endpoint="http://unused", signing_secret="", slack=slack)
    assert socket.standin.deliver("interactive", lead.click_payload(gate.id, Outcome.GO, gate.channel,
                                                                    gate.message_ts)) == {}

    def decided() -> list[tuple[str, Outcome, Via]] | None:
        with transaction(rt.sessions) as session:
            row = gates.by_id(session, gate.id)
            answers = [(d.approver, d.outcome, d.via) for d in gates.decisions(session, gate.id)]
        return answers if row.state is GateState.DECIDED else None

    answers = wait_until(decided, what="the gate to be decided over Socket Mode")
    assert answers == [("U0SPONSOR1", Outcome.GO, Via.SLACK), ("U0VENDLEAD", Outcome.GO, Via.SLACK)]
    wait_until(lambda: socket.resumed == [gate.flow_run_id] if gate.flow_run_id else True,
               what="the run to be woken")
    prompt = wait_until(lambda: "Decided" in str(slack.message(gate.channel, gate.message_ts).blocks),
                        what="the prompt to show the decision")
    assert prompt


def test_a_reason_form_refused_answers_in_the_ack(rt: Runtime, slack: SlackStandin, jira: JiraStandin, acme: Engagement,
                                                  socket: Socket) -> None:
    gate = posted_gate(rt, acme, jira=jira)  # milestones done: a GO needs no waiver
    assert gate.message_ts is not None
    outsider = SlackUser("U0NOTLISTED", endpoint="http://unused", signing_secret="", slack=slack)
    view = {"callback_id": "gate_reason", "private_metadata": f"{gate.id}:no_go", "type": "modal"}
    payload = {"type": "view_submission", "user": {"id": outsider.user_id},
               "view": view | {"id": "V1", "hash": "1.x", "state": {"values": {"reason": {"reason": {
                   "type": "plain_text_input", "value": "not convinced"}}}}}}
    ack = socket.standin.deliver("interactive", payload)
    assert ack["response_action"] == "errors" and "reason" in ack["errors"]
    with transaction(rt.sessions) as session:
        assert gates.decisions(session, gate.id) == []


def test_slash_commands_and_unknown_envelopes(socket: Socket) -> None:
    ack = socket.standin.deliver("slash_commands", {"command": "/phasegate", "text": "help", "user_id": "U0SPONSOR1",
                                                    "channel_id": "C0ACMECHURN", "trigger_id": "t"})
    assert ack == {"response_type": "ephemeral", "text": USAGE}
    assert socket.standin.deliver("events_api", {"event": {"type": "app_mention"}}) == {}


def test_readyz_names_what_is_down(rt: Runtime, closed_prefect: str) -> None:
    deps = SlackDeps(signing_secret="s", sessions=rt.sessions, chat=rt.chat, resume=lambda run: None)
    app = create_app(deps)
    add_readiness(app, rt.sessions, closed_prefect)
    handle = serve_in_thread(app)
    try:
        assert httpx.get(handle.url + "/healthz").status_code == 200
        response = httpx.get(handle.url + "/readyz")
        assert response.status_code == 503
        assert response.json()["problems"] == [f"prefect: {closed_prefect} unreachable (ConnectError)"]
    finally:
        handle.stop()


@pytest.fixture
def closed_prefect() -> str:
    from helpers import closed_port_url

    return closed_port_url()

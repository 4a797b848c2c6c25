"""Socket Mode: slack_sdk's real client over a real WebSocket to the local stand-in, the endpoint's own
handlers behind it; the acknowledgement comes back and the answer is in the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from helpers import posted_gate, register, server_errors, wait_until
from sqlalchemy import func, select

from phasegate.configs.schema import Engagement, Phase
from phasegate.integrations.slack_chat import make_web_client
from phasegate.ledger import change_requests as crs
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AttestationRow, AuditEventRow, ChangeDecisionRow, ChangeRequestRow, DecisionRow
from phasegate.ops.readiness import add_readiness
from phasegate.ops.servers import serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.sandbox.standins.slack_socket import NotAcknowledged, SlackSocketStandin
from phasegate.sandbox.standins.slack_user import SlackUser
from phasegate.slack.app import create_app
from phasegate.slack.change_requests import USAGE
from phasegate.slack.deps import SlackDeps
from phasegate.slack.socket import Client, start_socket_mode
from phasegate.states import ChangeSource, GateState, Outcome, Via
from phasegate.tasks.kickoff import begin_phase, record_baseline

pytestmark = pytest.mark.slow


class Socket:
    def __init__(self, standin: SlackSocketStandin, resumed: list[str], client: Client) -> None:
        self.standin, self.resumed, self.client = standin, resumed, client


@pytest.fixture
def socket(rt: Runtime, slack: SlackStandin) -> Iterator[Socket]:
    standin = SlackSocketStandin(slack)
    standin.start()
    resumed: list[str] = []
    deps = SlackDeps(signing_secret="unused over a socket", sessions=rt.sessions, chat=rt.chat, resume=resumed.append,
                     start_change_request=lambda engagement_id, number: None)
    client = start_socket_mode(deps, slack.app_token, make_web_client(slack.bot_token, slack.base_url))
    standin.wait_connected()
    yield Socket(standin, resumed, client)
    client.close()
    standin.stop()
    deps.close()  # its refresher's thread, before the test's ledger is dropped


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


def hostile_envelopes(cr_id: int, engagement: Engagement) -> list[tuple[str, str, str]]:
    """(what, envelope type, payload as JSON text): each something Slack never sends."""
    sponsor, outsider = {"id": "U0SPONSOR1"}, {"id": "U0MALLORY1"}

    def click(action_id: str, value: object, user: object = sponsor, **extra: object) -> dict[str, object]:
        return {"type": "block_actions", "user": user, "trigger_id": "t", "response_url": "http://127.0.0.1:9/",
                "actions": [{"action_id": action_id, "value": value, "action_ts": "1.0"}]} | extra

    def form(callback_id: object, metadata: str, values: object, user: object = sponsor) -> dict[str, object]:
        return {"type": "view_submission", "user": user, "view": {
            "id": "V1", "hash": "h", "callback_id": callback_id, "private_metadata": metadata, "state": {"values": values}}}

    def typed(**fields: object) -> dict[str, object]:
        return {name: {name: {"type": "plain_text_input", "value": value}} for name, value in fields.items()}

    metadata = f"{engagement.id}:{engagement.slack_channel}"
    command = {"command": "/phasegate", "text": f"cr {engagement.id}", "user_id": "U0PMACME01",
               "channel_id": engagement.slack_channel, "trigger_id": "t"}
    cases: list[tuple[str, str, object]] = [
        ("no user", "interactive", {k: v for k, v in click("cr:approve", str(cr_id)).items() if k != "user"}),
        ("user a string", "interactive", click("cr:approve", str(cr_id), user="U0SPONSOR1")),
        ("user without an id", "interactive", click("cr:approve", str(cr_id), user={})),
        ("user id a number", "interactive", click("cr:approve", str(cr_id), user={"id": 7})),
        ("NUL in the user id", "interactive", click("cr:approve", str(cr_id), user={"id": "U0SPONSOR1\x00"})),
        ("NUL in an attest value", "interactive", click("attest:data-deletion", f"{engagement.id}\x00:poc")),
        ("a lone surrogate in a button value", "interactive", click("cr:approve", f"{cr_id}\ud800")),
        ("a button value that is an object", "interactive", click("cr:approve", {"id": cr_id})),
        ("actions not a list", "interactive", click("cr:approve", str(cr_id)) | {"actions": "cr:approve"}),
        ("a 20-digit CR id on a button", "interactive", click("cr:approve", "9" * 20)),
        ("a CRLF response_url on a refused click", "interactive",
         click("cr:approve", str(cr_id), user=outsider, response_url="http://127.0.0.1:9/\r\nX-Injected: 1")),
        ("callback_id a list", "interactive", form(["cr_reason"], f"{cr_id}:reject", typed(reason="no"))),
        ("callback_id an object", "interactive", form({"cr_reason": 1}, f"{cr_id}:reject", typed(reason="no"))),
        ("state a string", "interactive", form("cr_submit", metadata, {}) | {"view": {
            "callback_id": "cr_submit", "private_metadata": metadata, "state": "values"}}),
        ("values a list", "interactive", form("cr_submit", metadata, ["title"])),
        ("a reason that is an object", "interactive", form("cr_reason", f"{cr_id}:reject", typed(reason={"a": 1}))),
        ("a cost that is a JSON number", "interactive", form("cr_submit", metadata, typed(title="More", cost=5000))),
        ("a 20-digit CR id in a form", "interactive", form("cr_reason", "9" * 20 + ":reject", typed(reason="no"))),
        ("NUL in slash text", "slash_commands", command | {"text": f"cr {engagement.id}\x00"}),
        ("slash command without a user", "slash_commands", {k: v for k, v in command.items() if k != "user_id"}),
        ("slash text a list", "slash_commands", command | {"text": ["cr", engagement.id]}),
        ("slash channel an object", "slash_commands", command | {"channel_id": {"id": engagement.slack_channel}}),
        ("a slash command that is a list", "slash_commands", [command]),
        ("a payload that is a list", "interactive", [click("cr:approve", str(cr_id))]),
        ("a payload that is a string", "interactive", "block_actions"),
        ("a payload that is null", "interactive", None),
        ("an unknown envelope type", "events_api", {"event": {"type": "app_mention", "text": "\x00"}}),
    ]
    found = [(what, kind, json.dumps(payload)) for what, kind, payload in cases]
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    found.append(("1,000-deep JSON", "interactive",
                  '{"type": "block_actions", "user": {"id": "U0SPONSOR1"}, "x": ' + deep + "}"))
    return found


def counts(rt: Runtime) -> list[int]:
    with transaction(rt.sessions) as session:
        return [session.scalar(select(func.count()).select_from(table)) or 0
                for table in (ChangeRequestRow, ChangeDecisionRow, DecisionRow, AttestationRow, AuditEventRow)]


def test_hostile_envelopes_are_all_acknowledged_and_write_nothing(rt: Runtime, acme: Engagement,
                                                                    socket: Socket) -> None:
    """Slack resends an envelope it has no acknowledgement for: each of these must be acknowledged
    (within Slack's three seconds), refused, and leave the ledger and the log as they were."""
    register(rt, acme)
    begin_phase.fn(rt, acme, Phase.POC, acme.pm_slack_user, None)
    record_baseline.fn(rt, acme)
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, acme.id, Draft(title="More data"), requested_by="U0PMACME01",
                           source=ChangeSource.CLI)
        crs.assess(session, cr)
        cr_id = cr.id
    before = counts(rt)
    envelopes = hostile_envelopes(cr_id, acme)
    unacknowledged: list[str] = []
    untold: list[str] = []  # slash commands acknowledged without a word to the person who typed them
    with server_errors("phasegate.slack") as errors:
        for what, kind, payload in envelopes:
            try:
                ack = socket.standin.deliver_json(kind, payload)
            except NotAcknowledged:
                unacknowledged.append(what)
                continue
            if kind == "slash_commands" and ack.get("response_type") != "ephemeral":
                untold.append(what)
        assert socket.client.idle(30), "the work after the acknowledgements did not end"
    assert unacknowledged == [], f"{len(unacknowledged)} of {len(envelopes)} not acknowledged: {unacknowledged}"
    assert untold == []
    assert counts(rt) == before
    assert not errors.records, errors.records[0].getMessage()
    # the socket still carries the real thing
    ok = {"type": "view_submission", "user": {"id": "U0SPONSOR1"}, "view": {
        "id": "V2", "hash": "h", "callback_id": "cr_reason", "private_metadata": f"{cr_id}:reject",
        "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": "not now"}}}}}}
    assert socket.standin.deliver("interactive", ok) == {}
    with transaction(rt.sessions) as session:
        assert [d.reason for d in crs.decisions(session, cr_id)] == ["not now"]


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


SOCKET_EXAMPLES = 2_000  # 10,000 over HTTP (test_hostile_input); an envelope takes longer to deliver


def as_envelope(path: str, body: bytes) -> tuple[str, str] | None:
    """A request the HTTP fuzz run sends, as Socket Mode would carry it: (envelope type, payload as
    JSON text); None for bytes Slack could never put in an envelope (not a form, or a payload that is
    not JSON: an envelope is JSON text)."""
    from urllib.parse import parse_qs

    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    if path == "/slack/commands":
        return "slash_commands", json.dumps({key: values[-1] for key, values in fields.items()})
    if len(fields.get("payload", [])) != 1:
        return None
    payload = fields["payload"][0]
    try:
        json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return "interactive", payload


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)  # as the HTTP fuzz run: the stricter backend
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_the_http_fuzz_runs_shapes_over_socket_mode_are_all_acknowledged_and_write_nothing(
        rt: Runtime, acme: Engagement, slack: SlackStandin, socket: Socket) -> None:
    """Issue 18: the same generated shapes as the 10,000 signed HTTP requests
    (tests/test_hostile_input.py: buttons, forms, slash commands, other JSON, deep nesting), as
    Socket Mode envelopes: each one acknowledged (Slack redelivers one that is not, for ever), none
    leaves an error in the log, and the refused ones write nothing."""
    from hypothesis import HealthCheck, given, settings
    from test_hostile_input import fuzz_targets, requests

    gate_id, cr_id = fuzz_targets(rt, acme)
    before = counts(rt)
    sent: dict[str, int] = {}
    unacknowledged: list[str] = []

    @settings(max_examples=SOCKET_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(requests(gate_id, cr_id, slack.base_url + "/response/fuzzed"))
    def one(request: tuple[str, str, bytes]) -> None:
        what, path, body = request
        envelope = as_envelope(path, body)
        if envelope is None:
            return
        sent[what] = sent.get(what, 0) + 1
        try:
            socket.standin.deliver_json(*envelope)
        except NotAcknowledged:
            unacknowledged.append(f"{what}: {envelope[1][:200]}")

    with server_errors("phasegate.slack") as errors:
        one()
        assert socket.client.idle(30), "the work after the acknowledgements did not end"
    assert unacknowledged == [], f"{len(unacknowledged)} not acknowledged: {unacknowledged[:3]}"
    assert sum(sent.values()) >= SOCKET_EXAMPLES // 2 and {"gate button", "slash command", "change-request form"} <= set(sent)
    assert counts(rt) == before, "a refused envelope wrote to the ledger"
    assert not errors.records, errors.records[0].getMessage()

"""Hostile and careless input at the Slack endpoint and in the texts people type: every case gets a
clear 4xx or a refusal, writes nothing, and never a 500 or a traceback in the server's log."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from helpers import posted_gate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from phasegate.configs.schema import Engagement
from phasegate.errors import PolicyError
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AttestationRow, AuditEventRow, DecisionRow
from phasegate.ops.servers import ServerHandle, serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps
from phasegate.slack.signature import sign
from phasegate.states import Outcome, Via
from phasegate.text import literal

SECRET = "test-secret"


class ServerErrors(logging.Handler):
    """What the endpoint's server logged at ERROR: an exception in the app, or in a background task."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Endpoint:
    def __init__(self, handle: ServerHandle, errors: ServerErrors) -> None:
        self.handle, self.errors = handle, errors
        self.url = handle.url + "/slack/interactions"
        self.http = httpx.Client(timeout=10)

    def send_raw(self, body: bytes) -> httpx.Response:
        stamp = str(int(time.time()))
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": sign(SECRET, stamp, body)}
        return self.http.post(self.url, content=body, headers=headers)

    def send(self, payload: object) -> httpx.Response:
        return self.send_raw(urlencode({"payload": json.dumps(payload)}).encode())


@pytest.fixture
def endpoint(rt: Runtime) -> Iterator[Endpoint]:
    errors = ServerErrors()
    for name in ("uvicorn.error", "phasegate.slack"):
        logging.getLogger(name).addHandler(errors)
    deps = SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat, resume=lambda run: None)
    handle = serve_in_thread(create_app(deps))
    point = Endpoint(handle, errors)
    yield point
    point.http.close()
    handle.stop()
    for name in ("uvicorn.error", "phasegate.slack"):
        logging.getLogger(name).removeHandler(errors)


def rows(rt: Runtime) -> tuple[int, int, int]:
    with transaction(rt.sessions) as session:
        return (session.scalar(select(func.count()).select_from(DecisionRow)) or 0,
                session.scalar(select(func.count()).select_from(AttestationRow)) or 0,
                session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)


def reason_view(gate_id: int, outcome: Outcome, reason: object, view_id: str = "V1") -> dict[str, object]:
    return {"type": "view_submission", "user": {"id": "U0SPONSOR1"},
            "view": {"id": view_id, "hash": view_id, "callback_id": "gate_reason",
                     "private_metadata": f"{gate_id}:{outcome.value}",
                     "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}}}}


def click(gate_id: int, user: str = "U0SPONSOR1", response_url: object = "http://127.0.0.1:9/") -> dict[str, object]:
    return {"type": "block_actions", "user": {"id": user}, "response_url": response_url,
            "actions": [{"action_id": "gate:go", "value": str(gate_id), "action_ts": str(time.time())}]}


def test_json_nested_a_thousand_deep_is_a_400(rt: Runtime, endpoint: Endpoint) -> None:
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    body = urlencode({"payload": '{"type":"block_actions","user":{"id":"U0SPONSOR1"},"x":' + deep + "}"}).encode()
    response = endpoint.send_raw(body)
    assert response.status_code == 400 and "nested" in response.json()["error"]
    assert rows(rt) == (0, 0, 0) and not endpoint.errors.records


@pytest.mark.parametrize("bad", ["no\x00body", "lone \ud800 surrogate"])
def test_text_no_ledger_can_store_is_refused_on_both_backends(rt: Runtime, endpoint: Endpoint, acme: Engagement,
                                                              bad: str) -> None:
    gate_id = posted_gate(rt, acme).id
    before = rows(rt)
    assert endpoint.send(reason_view(gate_id, Outcome.NO_GO, bad)).status_code == 400
    attest = click(gate_id) | {"actions": [{"action_id": "attest:data-deletion", "value": bad}]}
    assert endpoint.send(attest).status_code == 400
    assert endpoint.send(click(gate_id, user=bad)).status_code == 400
    assert rows(rt) == before and not endpoint.errors.records


@pytest.mark.parametrize("bad", ["no\x00body", "lone \ud800 surrogate", "x" * 3001])
def test_the_ledger_refuses_such_text_from_the_cli_too(rt: Runtime, acme: Engagement, bad: str) -> None:
    gate_id = posted_gate(rt, acme).id
    before = rows(rt)
    with pytest.raises(PolicyError, match="reason"), transaction(rt.sessions) as session:
        gates.answer(session, gate_id, approver="U0SPONSOR1", outcome=Outcome.NO_GO, reason=bad, via=Via.CLI)
    assert rows(rt) == before


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "http://127.0.0.1:99999/x", "javascript:alert(1)",
                                 "ftp://127.0.0.1/", 12, "http://127.0.0.1/\r\nX-Injected: 1"])
def test_a_malformed_response_url_is_ignored_and_the_connection_survives(rt: Runtime, endpoint: Endpoint,
                                                                         acme: Engagement, url: object) -> None:
    gate_id = posted_gate(rt, acme).id
    refused = click(gate_id, user="U0NOTANAPPROVER", response_url=url)  # refusals are told through response_url
    first = endpoint.send(refused)
    second = endpoint.send(refused)  # on the same keep-alive connection
    assert first.status_code == second.status_code == 200
    time.sleep(0.2)  # the refusal is told after the answer, in the background
    assert not endpoint.errors.records
    assert rows(rt)[0] == 0


def test_a_client_that_hangs_up_mid_body_records_nothing(rt: Runtime, endpoint: Endpoint, acme: Engagement) -> None:
    gate_id = posted_gate(rt, acme).id
    body = urlencode({"payload": json.dumps(reason_view(gate_id, Outcome.NO_GO, "cut short"))}).encode()
    stamp = str(int(time.time()))
    head = (f"POST /slack/interactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nX-Slack-Request-Timestamp: {stamp}\r\n"
            f"X-Slack-Signature: {sign(SECRET, stamp, body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", endpoint.handle.port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
    time.sleep(0.3)
    assert rows(rt)[0] == 0 and not endpoint.errors.records
    answer = reason_view(gate_id, Outcome.NO_GO, "sent whole", view_id="V2")
    assert endpoint.send(answer).status_code == 200  # the endpoint still answers; this one is recorded
    assert rows(rt)[0] == 1


def test_reasons_are_shown_literally_in_the_prompt(rt: Runtime, endpoint: Endpoint, slack: SlackStandin,
                                                  acme: Engagement) -> None:
    gate_id = posted_gate(rt, acme).id
    hostile = "<!channel> see <https://evil.example|the real report> & \u202eTFARD"
    assert endpoint.send(reason_view(gate_id, Outcome.NO_GO, hostile)).status_code == 200
    with transaction(rt.sessions) as session:
        gate = gates.by_id(session, gate_id)
        assert [d.reason for d in gates.decisions(session, gate_id)] == [hostile]  # kept as typed
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        shown = json.dumps(slack.message(acme.slack_channel, gate.message_ts or "").blocks, ensure_ascii=False)
        if "TFARD" in shown:
            break
        time.sleep(0.05)
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown
    assert "&lt;https://evil.example|the real report&gt; &amp;" in shown
    assert "\u202e" not in shown


def test_mrkdwn_escaping_keeps_the_text_and_drops_direction_overrides() -> None:
    assert literal("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"
    assert literal("x\u202ey\u2066z") == "xyz"


# Generated signed payloads on PostgreSQL. Hypothesis builds payloads that look like Slack's around the
# real open gate, then breaks them: NUL, unpaired surrogates, deep nesting, huge and non-finite numbers,
# wrong types, odd URLs. The clicker is never one of the gate's approvers, so every request must be
# refused: never a 5xx, no exception in the server's log, and the ledger unchanged.

EXAMPLES = 10_000
APPROVERS = {"U0SPONSOR1", "U0VENDLEAD", "U0TECHLEAD", "U0PMACME01"}

nasty_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "<!channel>", "&", "é", "a", ":"]),
             max_size=12).map("".join),
    st.sampled_from(["gate:go", "gate:no_go", "gate:extend", "gate:accept", "gate:nope", "attest:data-deletion",
                     "attest:", "gate:", "acme-churn", "1", "0", "-1", "9" * 30, "http://127.0.0.1:1/",
                     "http://[::1", "https://hooks.slack.com/actions/T/1/x", "javascript:alert(1)"]),
)
numbers = st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.just(10**4000))
scalars = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
anything = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(nasty_text, inner, max_size=3)), max_leaves=8)
not_approver = nasty_text.filter(lambda s: s not in APPROVERS)


def block_actions(gate_id: int) -> st.SearchStrategy[dict[str, object]]:
    action = st.fixed_dictionaries({"action_id": nasty_text, "value": st.one_of(st.just(str(gate_id)), nasty_text,
                                                                                 numbers),
                                    "action_ts": st.one_of(nasty_text, numbers)})
    return st.fixed_dictionaries({
        "type": st.just("block_actions"),
        "user": st.one_of(st.fixed_dictionaries({"id": not_approver}), anything),
        "actions": st.one_of(st.lists(action, min_size=1, max_size=2), anything),
        "trigger_id": st.one_of(nasty_text, numbers),
        "response_url": st.one_of(nasty_text, numbers),
    })


def view_submissions(gate_id: int) -> st.SearchStrategy[dict[str, object]]:
    return st.builds(
        lambda user, outcome, reason, meta: reason_view(gate_id, outcome, reason) | {"user": {"id": user}}
        if meta is None else reason_view(gate_id, outcome, reason) | {"user": {"id": user}, "view": meta},
        not_approver, st.sampled_from(list(Outcome)),
        st.one_of(nasty_text, anything), st.one_of(st.none(), anything))


def deep(depth: int) -> str:
    return '{"type":"block_actions","user":{"id":"U0NOBODY"},"x":' + "[" * depth + "]" * depth + "}"


def bodies(gate_id: int) -> st.SearchStrategy[bytes]:
    documents = st.one_of(block_actions(gate_id), view_submissions(gate_id), anything)
    as_payload = documents.map(lambda doc: urlencode({"payload": json.dumps(doc)}).encode())
    nested = st.integers(min_value=30, max_value=5000).map(lambda n: urlencode({"payload": deep(n)}).encode())
    raw = st.binary(max_size=200)
    return st.one_of(as_payload, as_payload, as_payload, nested, raw)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ten_thousand_generated_payloads_on_postgresql(ledger_url: str, rt: Runtime, endpoint: Endpoint,
                                                       acme: Engagement) -> None:
    if not ledger_url.startswith("postgresql"):
        pytest.skip("the fuzz run is on PostgreSQL, the stricter backend for text")
    gate_id = posted_gate(rt, acme).id
    before = rows(rt)
    statuses: Counter[int] = Counter()
    logging.getLogger("phasegate.slack").setLevel(logging.ERROR)  # refusals told via odd URLs warn; not errors

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(bodies(gate_id))
    def one(body: bytes) -> None:
        status = endpoint.send_raw(body).status_code
        statuses[status] += 1
        assert status < 500, body[:300]

    one()
    assert sum(statuses.values()) >= EXAMPLES
    assert not [s for s in statuses if s >= 500]
    assert rows(rt) == before, "a refused request wrote to the ledger"
    assert not endpoint.errors.records, endpoint.errors.records[0].getMessage()
    # the endpoint and the ledger still work for a real approver afterwards
    assert endpoint.send(reason_view(gate_id, Outcome.NO_GO, "still here", view_id="Vlast")).status_code == 200
    assert rows(rt)[0] == before[0] + 1

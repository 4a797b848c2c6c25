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

import pytest
from helpers import SignedEndpoint, posted_gate, server_errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from phasegate.configs.schema import Engagement
from phasegate.errors import PolicyError
from phasegate.ledger import change_requests as crs
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AttestationRow, AuditEventRow, ChangeDecisionRow, ChangeRequestRow, DecisionRow
from phasegate.ops.servers import serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Draft
from phasegate.rules.handoff import CHECKS
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps
from phasegate.slack.payloads import Undecodable, decode_json, malformed
from phasegate.slack.signature import sign
from phasegate.slack.team import KEYWORDS
from phasegate.states import ChangeSource, Outcome, Via
from phasegate.tasks.kickoff import record_baseline
from phasegate.text import literal

SECRET = "test-secret"


class Endpoint(SignedEndpoint):
    pass


@pytest.fixture
def endpoint(rt: Runtime) -> Iterator[Endpoint]:
    deps = SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat, resume=lambda run: None,
                     start_change_request=lambda engagement_id, number: None)
    handle = serve_in_thread(create_app(deps))
    with server_errors() as errors:
        point = Endpoint(handle, SECRET, errors)
        yield point
        point.close()
        handle.stop()


def rows(rt: Runtime) -> tuple[int, ...]:
    """(decisions, attestations, audit events, change requests, answers to them)"""
    with transaction(rt.sessions) as session:
        return tuple(session.scalar(select(func.count()).select_from(table)) or 0
                     for table in (DecisionRow, AttestationRow, AuditEventRow, ChangeRequestRow, ChangeDecisionRow))


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
    assert rows(rt) == (0, 0, 0, 0, 0) and not endpoint.errors.records


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


# Any JSON value, its strings drawn from every code point (lone surrogates and NUL included).
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters(exclude_categories=()), max_size=4)
    | st.sampled_from(["\x00", "\ud800", "a\udfffb", "\\u0000"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.booleans(), st.integers(min_value=1, max_value=6))
def test_a_document_decoded_without_its_walk_is_refused_exactly_when_the_walk_refuses_it(
        value: object, ascii_only: bool, depth: int) -> None:
    """decode_json skips the walk over a document whose text shows it needs none (no \\u escape, no
    unstorable text, fewer brackets than the depth allows): what it refuses is what the walk refuses."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    walked = malformed(json.loads(text), depth)
    try:
        decode_json(text, depth=depth)
    except Undecodable as exc:
        assert str(exc) == walked
    else:
        assert walked is None


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


# Generated signed payloads on PostgreSQL, across every way in over HTTP: gate and attest buttons,
# change-request buttons (approve, reject, draft from drift), the gate's reason form, the change-request
# form and its reject form, and the slash command. Hypothesis builds requests that look like Slack's
# around a real open gate and a real assessed change request, then breaks them: NUL, unpaired surrogates,
# control characters, deep nesting, huge and non-finite numbers, wrong types, odd URLs, ids past the
# ledger's integers. Every request must be refused (the clicker is never an approver, a change request
# form never has a usable title, and a slash command only ever opens a form): never a 5xx, no exception
# in the server's log, and the ledger unchanged.

EXAMPLES = 10_000
APPROVERS = {"U0SPONSOR1", "U0VENDLEAD", "U0TECHLEAD", "U0PMACME01"}
OUTSIDERS = ["U0MALLORY1", "U0NOBODY01", "W0OUTSIDER", "U0PMGLOBEX"]  # well-formed ids, no approver's

nasty_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "\r\n", "\x7f", "\x85", "<!channel>", "&", "é",
                              "a", ":", "acme-churn", "C0ACMECHURN"]), max_size=12).map("".join),
    st.sampled_from(["gate:go", "gate:no_go", "gate:extend", "gate:accept", "gate:nope", "attest:data-deletion",
                     "attest:", "gate:", "cr:approve", "cr:reject", "cr:draft-drift", "cr:", "acme-churn",
                     "acme-churn:poc", "acme-churn:C0ACMECHURN", "acme-churn:C0GLOBEXFC", "1", "0", "-1", "9" * 30,
                     "2147483648", "１２", "http://127.0.0.1:1/", "http://[::1", "http://127.0.0.1:1/\r\nX: 1",
                     "https://hooks.slack.com/actions/T/1/x", "javascript:alert(1)"]),
)
numbers = st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.just(10**4000))
scalars = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
anything = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(nasty_text, inner, max_size=3)), max_leaves=8)
not_approver = nasty_text.filter(lambda s: s not in APPROVERS)


def mostly(plausible: st.SearchStrategy[object], hostile: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Three times in four what Slack would send, so that requests get past the shape check to the
    policy, the values and the ledger; else something it never sends."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda usual: plausible if usual else hostile)


user = mostly(st.fixed_dictionaries({"id": st.sampled_from(OUTSIDERS)}),
              st.one_of(st.fixed_dictionaries({"id": not_approver}), anything))
number_text = st.one_of(st.sampled_from(["", " ", "5000", "-3", "1.5", "1e400", "nan", "inf", "1_000", "0x10", "١٢"]),
                        numbers.map(str), numbers, nasty_text)


def clicks(action_ids: st.SearchStrategy[str], values: st.SearchStrategy[object],
           respond: str) -> st.SearchStrategy[dict[str, object]]:
    action = st.fixed_dictionaries({"action_id": mostly(action_ids, nasty_text), "value": values,
                                    "action_ts": mostly(st.just("1700000000.000100"), st.one_of(nasty_text, numbers))})
    return st.fixed_dictionaries({
        "type": st.just("block_actions"), "user": user,
        "actions": mostly(st.lists(action, min_size=1, max_size=2), anything),
        "trigger_id": mostly(st.just("1.2.abc"), st.one_of(nasty_text, numbers)),
        "response_url": mostly(st.just(respond), st.one_of(nasty_text, numbers)),
        "channel": mostly(st.fixed_dictionaries({"id": st.sampled_from(["C0ACMECHURN", "C0GLOBEXFC"])}),
                          st.one_of(st.none(), st.fixed_dictionaries({"id": nasty_text}), anything)),
    })


def gate_clicks(gate_id: int, respond: str) -> st.SearchStrategy[dict[str, object]]:
    return clicks(st.sampled_from([f"gate:{o.value}" for o in Outcome] + ["attest:data-deletion", "attest:poc-report"]),
                  mostly(st.sampled_from([str(gate_id), "acme-churn:poc"]), st.one_of(nasty_text, numbers)), respond)


def cr_clicks(cr_id: int, respond: str) -> st.SearchStrategy[dict[str, object]]:
    return clicks(st.sampled_from(["cr:approve", "cr:reject", "cr:draft-drift", "cr:go"]),
                  mostly(st.sampled_from([str(cr_id), "acme-churn"]), st.one_of(nasty_text, numbers)), respond)


def forms(callback_id: st.SearchStrategy[object], metadata: st.SearchStrategy[object],
          values: st.SearchStrategy[object]) -> st.SearchStrategy[dict[str, object]]:
    """A view_submission; now and then its view, state or values replaced by something else entirely."""
    view = st.fixed_dictionaries({"id": mostly(st.just("V0FORM"), st.one_of(nasty_text, numbers)),
                                  "hash": mostly(st.just("1.abc"), nasty_text),
                                  "callback_id": mostly(callback_id, anything), "private_metadata": metadata,
                                  "state": mostly(st.fixed_dictionaries({"values": mostly(values, anything)}),
                                                  anything)})
    return st.fixed_dictionaries({"type": st.just("view_submission"), "user": user, "view": mostly(view, anything)})


def inputs(**fields: st.SearchStrategy[object]) -> st.SearchStrategy[dict[str, object]]:
    """view.state.values: each field as Slack nests it, with its value (or chosen option) generated."""
    def entry(value: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        typed = st.fixed_dictionaries({"type": st.just("plain_text_input"), "value": value})
        chosen = st.fixed_dictionaries({"type": st.just("static_select"),
                                        "selected_option": st.one_of(st.none(), st.fixed_dictionaries({"value": value}),
                                                                     anything)})
        return mostly(st.one_of(typed, chosen), anything)
    return st.fixed_dictionaries({name: st.fixed_dictionaries({name: entry(value)}) for name, value in fields.items()})


def gate_reasons(gate_id: int) -> st.SearchStrategy[dict[str, object]]:
    metadata = mostly(st.sampled_from([f"{gate_id}:{o.value}" for o in Outcome]), st.one_of(nasty_text, anything))
    return forms(st.just("gate_reason"), metadata, inputs(reason=st.one_of(nasty_text, anything)))


def cr_reasons(cr_id: int) -> st.SearchStrategy[dict[str, object]]:
    metadata = mostly(st.sampled_from([f"{cr_id}:reject", f"{cr_id}:approve", "9" * 20 + ":reject"]),
                      st.one_of(nasty_text, anything))
    return forms(st.just("cr_reason"), metadata, inputs(reason=st.one_of(nasty_text, anything)))


# A title no change request can have: none, blank, too long, not text, text no ledger can store.
refused_title = st.one_of(st.none(), st.sampled_from(["", "   ", "x" * 151, "a\x00b", "\ud800", "\x00"]),
                          st.integers(min_value=151, max_value=400).map(lambda n: "y" * n), numbers, anything)


def cr_forms() -> st.SearchStrategy[dict[str, object]]:
    metadata = mostly(st.sampled_from(["acme-churn:C0ACMECHURN", "acme-churn", "acme-churn:C0GLOBEXFC",
                                       "globex-forecast:C0GLOBEXFC", ":"]), st.one_of(nasty_text, anything))
    values = inputs(title=refused_title, rationale=st.one_of(nasty_text, anything),
                    phase=st.one_of(st.sampled_from(["poc", "development", "handover", "POC"]), nasty_text, anything),
                    scope_added=st.one_of(nasty_text, anything), scope_removed=st.one_of(nasty_text, anything),
                    effort_days=number_text, schedule_days=number_text, cost=number_text)
    return forms(st.just("cr_submit"), metadata, values)


# `team` and `check` text that no user may record from: nasty engagement ids, and on a real engagement
# words that name no check and no team change (showing the team reads only)
not_a_keyword = nasty_text.filter(lambda t: not t.split() or t.split()[0].lower() not in {*CHECKS, *KEYWORDS})
team_or_check = st.one_of(st.just("team acme-churn"), st.just("team"), st.just("check acme-churn"),
                          nasty_text.map(lambda t: "team " + t), nasty_text.map(lambda t: "check " + t),
                          not_a_keyword.map(lambda t: "team acme-churn " + t),
                          not_a_keyword.map(lambda t: "check acme-churn " + t))


def slash_commands(respond: str) -> st.SearchStrategy[bytes]:
    fields = st.fixed_dictionaries({
        "command": mostly(st.just("/phasegate"), nasty_text),
        "text": st.one_of(st.just("cr acme-churn"), nasty_text.map(lambda t: "cr " + t), nasty_text, team_or_check),
        "user_id": mostly(st.sampled_from(OUTSIDERS + sorted(APPROVERS)), nasty_text),
        "channel_id": mostly(st.sampled_from(["C0ACMECHURN", "C0GLOBEXFC"]), nasty_text),
        "trigger_id": mostly(st.just("1.2.abc"), nasty_text),
        "response_url": mostly(st.just(respond), nasty_text),
    })
    subsets = st.tuples(fields, st.sets(st.sampled_from(["user_id", "channel_id", "trigger_id", "text"]), max_size=2))
    return subsets.map(lambda drop: urlencode({k: v for k, v in drop[0].items() if k not in drop[1]},
                                              errors="surrogatepass").encode())


def deep(depth: int) -> str:
    return '{"type":"block_actions","user":{"id":"U0NOBODY"},"x":' + "[" * depth + "]" * depth + "}"


INTERACTIONS, COMMANDS = "/slack/interactions", "/slack/commands"


def requests(gate_id: int, cr_id: int, respond: str) -> st.SearchStrategy[tuple[str, str, bytes]]:
    """(what, path, body) across every way in; `respond`: the response_url a plausible request names."""
    def payload(what: str, documents: st.SearchStrategy[object]) -> st.SearchStrategy[tuple[str, str, bytes]]:
        return documents.map(lambda doc: (what, INTERACTIONS, urlencode({"payload": json.dumps(doc)}).encode()))

    nested = st.integers(min_value=30, max_value=5000).map(
        lambda n: ("nested JSON", INTERACTIONS, urlencode({"payload": deep(n)}).encode()))
    raw = st.tuples(st.sampled_from([INTERACTIONS, COMMANDS]), st.binary(max_size=200)).map(
        lambda pair: ("raw bytes", pair[0], pair[1]))
    return st.one_of(payload("gate button", gate_clicks(gate_id, respond)), payload("change-request button", cr_clicks(cr_id, respond)),
                     payload("gate reason form", gate_reasons(gate_id)), payload("change-request form", cr_forms()),
                     payload("change-request reject form", cr_reasons(cr_id)),
                     slash_commands(respond).map(lambda body: ("slash command", COMMANDS, body)),
                     slash_commands(respond).map(lambda body: ("slash command", COMMANDS, body)),
                     payload("other JSON", anything), nested, raw)


def fuzz_targets(rt: Runtime, acme: Engagement) -> tuple[int, int]:
    """What the generated requests aim at: an open G1 with its prompt posted, and an assessed change
    request on the recorded baseline; (gate id, change request id)."""
    gate_id = posted_gate(rt, acme).id
    record_baseline.fn(rt, acme)
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, acme.id, Draft(title="More data"), requested_by=acme.pm_slack_user,
                           source=ChangeSource.CLI)
        crs.assess(session, cr)
        return gate_id, cr.id


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # Hypothesis describing these strategies
# slack_sdk's retry jitter draws from the global `random` in the endpoint's threads (a refusal told to a
# response_url nobody listens on) while Hypothesis draws: it takes that for a strategy using `random`
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_ten_thousand_generated_requests_on_postgresql(ledger_url: str, rt: Runtime, endpoint: Endpoint,
                                                       slack: SlackStandin, acme: Engagement) -> None:
    if not ledger_url.startswith("postgresql"):
        pytest.skip("the fuzz run is on PostgreSQL, the stricter backend for text")
    assert {a.slack_user for p in acme.phases.present() for a in acme.phases.of(p).gate.approvers} | {acme.pm_slack_user} <= APPROVERS
    gate_id, cr_id = fuzz_targets(rt, acme)
    before = rows(rt)
    statuses: Counter[int] = Counter()
    kinds: Counter[tuple[str, int]] = Counter()
    level = logging.getLogger("phasegate.slack").level
    logging.getLogger("phasegate.slack").setLevel(logging.ERROR)  # refusals told via odd URLs warn; not errors
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(requests(gate_id, cr_id, slack.base_url + "/response/fuzzed"))  # answers 404: no retries
    def one(request: tuple[str, str, bytes]) -> None:
        what, path, body = request
        status = endpoint.post(path, body).status_code
        statuses[status] += 1
        kinds[what, status] += 1
        assert status < 500, (what, body[:300])

    try:
        one()
    finally:
        logging.getLogger("phasegate.slack").setLevel(level)
    print(f"\n{sum(statuses.values())} signed requests in {time.monotonic() - started:.0f} s on PostgreSQL, "
          f"statuses {dict(sorted(statuses.items()))}:")
    for what in sorted({what for what, _ in kinds}):
        print(f"  {what}: " + ", ".join(f"{n} × {status}" for (w, status), n in sorted(kinds.items()) if w == what))
    assert sum(statuses.values()) >= EXAMPLES
    assert not [s for s in statuses if s >= 500]
    assert rows(rt) == before, "a refused request wrote to the ledger"
    assert not endpoint.errors.records, endpoint.errors.records[0].getMessage()
    # the endpoint and the ledger still work for a real approver afterwards
    assert endpoint.send(reason_view(gate_id, Outcome.NO_GO, "still here", view_id="Vlast")).status_code == 200
    assert rows(rt)[0] == before[0] + 1

"""One way in: buttons, forms and the slash command pass the same steps (shape, who is acting, may
they, are the values valid, record, answer). Each case here was a fault found on the change-request
path (issue 18, item 1): a 500, a traceback after the answer, a value recorded wrong, or a request
filed where it may not be. Real signed requests over real HTTP, on SQLite and PostgreSQL; a refused
request writes nothing, is never a 5xx, and leaves the keep-alive connection usable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import SignedEndpoint, register, server_errors, wait_until, with_changes
from sqlalchemy import func, select

from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import ServiceUnavailable
from phasegate.integrations.slack_chat import SlackChat
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.models import AuditEventRow, ChangeDecisionRow, ChangeRequestRow, DecisionRow
from phasegate.ops.servers import serve_in_thread
from phasegate.orchestration.runtime import Runtime
from phasegate.rules.change_requests import Draft
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.slack import inbound
from phasegate.slack.app import create_app
from phasegate.slack.deps import SlackDeps
from phasegate.states import ChangeSource
from phasegate.tasks.kickoff import begin_phase, record_baseline

SECRET = "test-secret"
PM, SPONSOR, OUTSIDER = "U0PMACME01", "U0SPONSOR1", "U0MALLORY1"


class Endpoint(SignedEndpoint):
    started: list[tuple[str, int]]


@pytest.fixture
def endpoint(rt: Runtime) -> Iterator[Endpoint]:
    started: list[tuple[str, int]] = []
    deps = SlackDeps(signing_secret=SECRET, sessions=rt.sessions, chat=rt.chat, resume=lambda run: None,
                     start_change_request=lambda engagement_id, number: started.append((engagement_id, number)))
    handle = serve_in_thread(create_app(deps))
    with server_errors() as errors:
        point = Endpoint(handle, SECRET, errors)
        point.started = started
        yield point
        point.close()
        handle.stop()


def running(rt: Runtime, engagement: Engagement) -> None:
    """Registered, its PoC started and its first baseline recorded, as the phase flow leaves it."""
    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, engagement.pm_slack_user, None)
    record_baseline.fn(rt, engagement)


def filed(rt: Runtime, title: str = "A second model family") -> int:
    with transaction(rt.sessions) as session:
        cr, _ = crs.submit(session, "acme-churn", Draft(title=title), requested_by=PM, source=ChangeSource.CLI)
        crs.assess(session, cr)
        return cr.id


def counts(rt: Runtime) -> tuple[int, int, int, int]:
    with transaction(rt.sessions) as session:
        return tuple(session.scalar(select(func.count()).select_from(table)) or 0  # type: ignore[return-value]
                     for table in (ChangeRequestRow, ChangeDecisionRow, DecisionRow, AuditEventRow))


def cr_click(cr_id: object, user: str = OUTSIDER, answer: str = "approve",
             response_url: object = "http://127.0.0.1:9/") -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": user}, "response_url": response_url, "trigger_id": "t",
            "actions": [{"action_id": f"cr:{answer}", "value": str(cr_id), "action_ts": str(time.time())}]}


def view(callback_id: object, metadata: object, values: object, user: str = SPONSOR, **extra: object) -> dict[str, Any]:
    return {"type": "view_submission", "user": {"id": user},
            "view": {"id": f"V{time.time_ns()}", "hash": "h", "callback_id": callback_id,
                     "private_metadata": metadata, "state": {"values": values}} | extra}


def cr_reason(cr_id: object, reason: object, user: str = SPONSOR) -> dict[str, Any]:
    return view("cr_reason", f"{cr_id}:reject", {"reason": {"reason": {"type": "plain_text_input", "value": reason}}},
                user=user)


def form_values(**fields: object) -> dict[str, Any]:
    return {name: {name: {"type": "plain_text_input", "value": value}} for name, value in fields.items()}


def open_form(endpoint: Endpoint, slack: SlackStandin, engagement: Engagement, user: str = PM) -> dict[str, Any]:
    """The change-request form `/phasegate cr ENGAGEMENT` opens in the engagement's channel."""
    seen = len(slack.views)
    opened = endpoint.command(command="/phasegate", text=f"cr {engagement.id}", user_id=user,
                              channel_id=engagement.slack_channel, trigger_id=slack.issue_trigger_id(),
                              response_url=slack.response_url())
    assert opened.status_code == 200, opened.text
    return wait_until(lambda: slack.views[seen] if len(slack.views) > seen else None, what="the form")


def refused_quietly(endpoint: Endpoint, payload: dict[str, Any], status: int = 400) -> None:
    """Refused with `status`, twice on one keep-alive connection, and nothing logged at ERROR."""
    first, second = endpoint.send(payload), endpoint.send(payload)
    assert (first.status_code, second.status_code) == (status, status), (first.text, second.text)
    assert not endpoint.errors.records, endpoint.errors.records[0].getMessage()


def test_a_cr_click_with_a_crlf_response_url_is_answered_and_the_url_never_fetched(
        rt: Runtime, endpoint: Endpoint, acme: Engagement) -> None:
    running(rt, acme)
    cr_id = filed(rt)
    before = counts(rt)
    for url in ("http://127.0.0.1:9/\r\nX-Injected: 1", "http://127.0.0.1:9/ x", "http://127.0.0.1:9/\x7f"):
        for answer in ("approve", "reject"):  # the refusal is told through response_url, after the answer
            refused_quietly(endpoint, cr_click(cr_id, answer=answer, response_url=url), status=200)
    time.sleep(0.5)  # the background tasks run after the answers
    assert not endpoint.errors.records, endpoint.errors.records[0].getMessage()
    assert counts(rt) == before


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/\r\nX-Injected: 1", "http://127.0.0.1:9/ x", "http://a b/"])
def test_a_response_url_http_client_refuses_is_an_expected_error_behind_the_check_too(url: str) -> None:
    """Were an odd URL ever to get past inbound.response_url, answering through it fails as a
    ServiceUnavailable, which every caller logs, not as http.client's InvalidURL."""
    assert inbound.response_url(url) is None
    with pytest.raises(ServiceUnavailable, match="response_url failed"):
        SlackChat.respond(url, "not recorded")


def test_a_reason_sent_as_an_object_is_refused_not_stored_as_its_repr(rt: Runtime, endpoint: Endpoint,
                                                                      acme: Engagement) -> None:
    running(rt, acme)
    cr_id = filed(rt)
    before = counts(rt)
    for reason in ({"text": "not now"}, ["not now"], 42, True):
        endpoint.send(cr_reason(cr_id, reason))
        with transaction(rt.sessions) as session:
            assert [d.reason for d in crs.decisions(session, cr_id)] == [], "recorded"
        refused_quietly(endpoint, cr_reason(cr_id, reason))
    assert counts(rt) == before
    assert endpoint.send(cr_reason(cr_id, "not now")).status_code == 200  # the real thing still works
    with transaction(rt.sessions) as session:
        assert [d.reason for d in crs.decisions(session, cr_id)] == ["not now"]


def test_a_cost_sent_as_a_json_number_is_refused_not_stored_as_zero(rt: Runtime, endpoint: Endpoint,
                                                                    slack: SlackStandin, acme: Engagement) -> None:
    running(rt, acme)
    metadata = open_form(endpoint, slack, acme)["private_metadata"]
    before = counts(rt)
    for cost in (5000, 5000.5, ["5000"], {"value": "5000"}):
        endpoint.send(view("cr_submit", metadata, form_values(title="More data", cost=cost), user=PM))
        with transaction(rt.sessions) as session:
            assert [cr.cost for cr in crs.all_for(session, acme.id)] == [], "filed"
        refused_quietly(endpoint, view("cr_submit", metadata, form_values(title="More data", cost=cost), user=PM))
    assert counts(rt) == before
    assert endpoint.send(view("cr_submit", metadata, form_values(title="More data", cost="5000"),
                              user=PM)).status_code == 200
    with transaction(rt.sessions) as session:
        assert [cr.cost for cr in crs.all_for(session, acme.id)] == [5000.0]


def test_the_cr_form_is_held_to_the_channel_it_was_opened_in(rt: Runtime, endpoint: Endpoint, slack: SlackStandin,
                                                           acme: Engagement) -> None:
    """A member of acme's channel opens the form there; the form names globex: nothing is filed."""
    globex = with_changes(load_engagement(ENGAGEMENTS_DIR / "globex-forecast.yaml"), phases__selection=None)  # at its PoC
    running(rt, acme)
    running(rt, globex)
    form = open_form(endpoint, slack, acme)
    before = counts(rt)
    forged = dict(form, private_metadata=str(form["private_metadata"]).replace(acme.id, globex.id))
    answer = endpoint.send(view("cr_submit", forged["private_metadata"], form_values(title="Globex, from acme"),
                                user=PM))
    with transaction(rt.sessions) as session:
        assert [(cr.title, cr.requested_by) for cr in crs.all_for(session, globex.id)] == [], "filed on globex"
    assert answer.status_code == 200 and answer.json()["response_action"] == "errors"
    assert "channel" in answer.json()["errors"]["title"]
    assert counts(rt) == before and endpoint.started == []
    unnamed = endpoint.send(view("cr_submit", acme.id, form_values(title="From an older form"), user=PM))
    assert "open it again" in unnamed.json()["errors"]["title"] and counts(rt) == before
    # the form as opened files on acme
    assert endpoint.send(view("cr_submit", form["private_metadata"], form_values(title="Acme, from acme"),
                              user=PM)).status_code == 200
    with transaction(rt.sessions) as session:
        assert [cr.title for cr in crs.all_for(session, acme.id)] == ["Acme, from acme"]
        assert crs.all_for(session, globex.id) == []
    # the weekly report's "Draft change request" button, clicked elsewhere, opens no form either
    drift = {"type": "block_actions", "user": {"id": PM}, "channel": {"id": globex.slack_channel},
             "trigger_id": slack.issue_trigger_id(), "response_url": slack.response_url(),
             "actions": [{"action_id": "cr:draft-drift", "value": acme.id, "action_ts": "1"}]}
    assert endpoint.send(drift).status_code == 200
    told = wait_until(lambda: slack.responses, what="the clicker to be told")
    assert "channel" in told[0]["text"] and len(slack.views) == 1


@pytest.mark.parametrize("engagement_id", ["acme\x00churn", "acme-churn\x00", "\x00"])
def test_a_nul_in_the_slash_commands_engagement_id_is_answered_not_a_500(rt: Runtime, endpoint: Endpoint,
                                                                         acme: Engagement, engagement_id: str) -> None:
    running(rt, acme)
    before = counts(rt)
    for _ in range(2):  # on one keep-alive connection
        answer = endpoint.command(command="/phasegate", text=f"cr {engagement_id}", user_id=PM,
                                  channel_id=acme.slack_channel, trigger_id="t")
        assert answer.status_code == 200, answer.text
        assert answer.json()["response_type"] == "ephemeral" and "nothing was filed" in answer.json()["text"]
    assert counts(rt) == before and not endpoint.errors.records


@pytest.mark.parametrize("cr_id", ["9" * 20, "2147483648", "-1", "0x10", "１２"])
def test_a_cr_id_the_ledger_cannot_hold_is_refused(rt: Runtime, endpoint: Endpoint, acme: Engagement,
                                                   cr_id: str) -> None:
    running(rt, acme)
    filed(rt)
    before = counts(rt)
    refused_quietly(endpoint, cr_reason(cr_id, "not now"))
    refused_quietly(endpoint, cr_click(cr_id, user=SPONSOR), status=200)  # not one of ours: nothing to do
    assert counts(rt) == before


ODD_VIEW_SHAPES: list[dict[str, Any]] = [
    {"callback_id": ["cr_submit"]}, {"callback_id": {"cr_submit": 1}}, {"callback_id": 7},
    {"state": "values"}, {"state": ["values"]}, {"state": {"values": "title"}}, {"state": {"values": ["title"]}},
    {"state": {"values": {"title": "x"}}}, {"state": {"values": {"title": {"title": "x"}}}},
    {"state": {"values": {"phase": {"phase": {"selected_option": "poc"}}}}},
    {"private_metadata": ["acme-churn"]}, {"private_metadata": {"id": "acme-churn"}},
]


@pytest.mark.parametrize("callback_id", ["cr_submit", "cr_reason", "gate_reason"])
def test_odd_shapes_in_a_view_are_a_400(rt: Runtime, endpoint: Endpoint, slack: SlackStandin, acme: Engagement,
                                        callback_id: str) -> None:
    """Each shape on one engagement (nothing is recorded, so each finds the same ledger); a failure
    names the shape."""
    running(rt, acme)
    cr_id = filed(rt)
    metadata = {"cr_submit": open_form(endpoint, slack, acme)["private_metadata"], "cr_reason": f"{cr_id}:reject",
                "gate_reason": "1:no_go"}[callback_id]
    before = counts(rt)
    for shape in ODD_VIEW_SHAPES:
        payload = view(callback_id, metadata, form_values(title="ok", reason="ok"), user=PM)
        payload["view"] |= shape
        try:
            refused_quietly(endpoint, payload)
            assert counts(rt) == before
        except AssertionError as exc:
            raise AssertionError(f"shape {shape}: {exc}") from exc


@pytest.mark.parametrize(("metadata", "fields", "refusal"), [
    ("", {"reason": "x"}, "without a row id"),
    ("12345678901:go", {"reason": "x"}, "without a row id"),  # more digits than the ledger's ids hold
    ("7:maybe", {"reason": "x"}, "without an outcome"),
    ("7:no_go", {}, "without a reason"),
], ids=["no-id", "id-too-long", "unknown-outcome", "no-reason-field"])
def test_a_reason_form_is_read_once_for_gates_and_change_requests_alike(metadata: str, fields: dict[str, str | None],
                                                                          refusal: str) -> None:
    """Both reason forms (a gate's, a change request's) are read by one function; what it refuses,
    it refuses for both, naming the form."""
    for form in ("gate_reason", "cr_reason"):
        submitted = inbound.Submission(user="U0SPONSOR1", form=None, metadata=metadata, view_id="V1", view_hash="h1",
                                       fields=fields)
        with pytest.raises(inbound.Refused, match=f"^{form} view {refusal}$"):
            inbound.reason_form(submitted, form, "a row id")
    read = inbound.reason_form(inbound.Submission(user="U0SPONSOR1", form=None, metadata="7:no_go", view_id="V1",
                                                  view_hash="h1", fields={"reason": None}), "gate_reason", "a row id")
    assert (read.row, read.outcome.value, read.text) == (7, "no_go", "") and read.delivery

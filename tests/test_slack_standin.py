"""The Slack stand-in, driven over real HTTP by the real slack_sdk clients.

Why: every Slack-facing test in phasegate trusts this stand-in to refuse what Slack refuses
and to fail the way Slack fails; these tests pin that behaviour down.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from phasegate.sandbox.standins.slack_api import SlackStandin

TOKEN = "xoxb-test-token"
CHANNEL = "C0GATES"


class SteppedClock:
    """Real monotonic time plus an offset a test can advance instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture(scope="module")
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture(scope="module")
def slack(clock: SteppedClock) -> Iterator[SlackStandin]:
    standin = SlackStandin(bot_token=TOKEN, clock=clock)
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def client(slack: SlackStandin) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.base_url)


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(value: str = "go", action_id: str = "gate_go", text: str = "Go") -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": text}, "value": value, "action_id": action_id}


def modal(**overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "gate_decision",
        "title": {"type": "plain_text", "text": "Phase 2 gate"},
        "submit": {"type": "plain_text", "text": "Decide"},
        "private_metadata": '{"gate": 7}',
        "blocks": [{
            "type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True, "max_length": 3000},
        }],
    }
    view.update(overrides)
    return view


def slack_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


def test_post_update_and_thread_reply_round_trip(slack: SlackStandin, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="Phase 1 gate", blocks=[section("*Phase 1*: go?")])
    ts = posted["ts"]
    assert posted["channel"] == CHANNEL and posted["message"]["text"] == "Phase 1 gate"

    updated = client.chat_update(channel=CHANNEL, ts=ts, text="Phase 1 gate: approved")
    reply = client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="approved by U123")

    assert updated["ts"] == ts and updated["message"]["blocks"] == [section("*Phase 1*: go?")]
    stored = slack.message(CHANNEL, ts)
    assert (stored.text, stored.edits, stored.thread_ts) == ("Phase 1 gate: approved", 1, None)
    assert stored.blocks == [section("*Phase 1*: go?")]  # omitted blocks are kept, as in Slack
    assert [m.text for m in slack.thread(CHANNEL, ts)] == ["approved by U123"]
    assert float(reply["ts"]) > float(ts)
    assert [m.ts for m in slack.messages(CHANNEL)][-2:] == [ts, reply["ts"]]


def test_auth_test_names_the_bot(client: WebClient) -> None:
    answer = client.auth_test()
    assert answer["user_id"].startswith("U") and answer["bot_id"].startswith("B") and answer["team_id"]


@pytest.mark.parametrize(("token", "error"), [(None, "not_authed"), ("xoxb-wrong", "invalid_auth")])
def test_bad_credentials_are_refused(slack: SlackStandin, token: str | None, error: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token=token, base_url=slack.base_url).chat_postMessage(channel=CHANNEL, text="hi")
    assert slack_error(excinfo) == error
    assert excinfo.value.response.status_code == 200


def test_token_in_a_form_field_is_accepted(slack: SlackStandin) -> None:
    # slack_sdk turns a token param into a header, so post the form by hand
    good = httpx.post(slack.base_url + "chat.postMessage", data={"token": TOKEN, "channel": CHANNEL, "text": "form"})
    bad = httpx.post(slack.base_url + "chat.postMessage", data={"token": "xoxb-no", "channel": CHANNEL, "text": "x"})
    assert good.json()["ok"] is True and slack.message(CHANNEL, good.json()["ts"]).text == "form"
    assert bad.json() == {"ok": False, "error": "invalid_auth"}


@pytest.mark.parametrize(("blocks", "pointer"), [
    ([section(f"block {i}") for i in range(51)], "/blocks"),
    ([section("x" * 3001)], "/blocks/0/text/text"),
    ([{"type": "actions", "elements": [button(value="v" * 2001)]}], "/blocks/0/elements/0/value"),
    ([{"type": "actions", "elements": [button(action_id="a" * 256)]}], "/blocks/0/elements/0/action_id"),
    ([section("one", block_id="b"), section("two", block_id="b")], "/blocks/1/block_id"),
    ([section("ok"), {"type": "carousel"}], "/blocks/1/type"),
    ([{"type": "section", "text": {"type": "markdown", "text": "hi"}}], "/blocks/0/text/type"),
    ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
    ([{"type": "actions", "elements": [button(text="b" * 76)]}], "/blocks/0/elements/0/text/text"),
], ids=["51-blocks", "3001-char-section", "2001-char-value", "256-char-action-id", "duplicate-block-id",
        "unknown-type", "bad-text-type", "151-char-header", "76-char-button"])
def test_block_kit_violations_are_invalid_blocks(client: WebClient, blocks: list[dict[str, Any]], pointer: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL, text="gate", blocks=blocks)
    assert slack_error(excinfo) == "invalid_blocks"
    messages = excinfo.value.response["response_metadata"]["messages"]
    assert any(m.startswith("[ERROR]") and m.endswith(f"[json-pointer:{pointer}]") for m in messages), messages


def test_blocks_exactly_at_the_limits_are_accepted(slack: SlackStandin, client: WebClient) -> None:
    blocks = [section("x" * 3000), {"type": "actions", "elements": [button(value="v" * 2000, action_id="a" * 255)]}]
    blocks += [{"type": "divider"} for _ in range(48)]
    ts = client.chat_postMessage(channel=CHANNEL, text="gate", blocks=blocks)["ts"]
    assert len(slack.message(CHANNEL, ts).blocks) == 50


def test_update_is_validated_like_a_post(client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="gate")["ts"]
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=CHANNEL, ts=ts, text="gate", blocks=[section("x" * 3001)])
    assert slack_error(excinfo) == "invalid_blocks"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel=CHANNEL, ts="1.000001", text="nope")
    assert slack_error(excinfo) == "message_not_found"


def test_form_encoded_blocks_are_parsed_and_validated(slack: SlackStandin, client: WebClient) -> None:
    ok = client.api_call("chat.postMessage", params={"channel": CHANNEL, "blocks": '[{"type": "divider"}]'})
    assert slack.message(CHANNEL, ok["ts"]).blocks == [{"type": "divider"}]
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.postMessage", params={"channel": CHANNEL, "blocks": '[{"type": "nope"}]'})
    assert slack_error(excinfo) == "invalid_blocks"


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"channel": CHANNEL, "text": "x" * 40_001}, "msg_too_long"),
    ({"channel": CHANNEL}, "no_text"),
    ({"channel": "general", "text": "hi"}, "channel_not_found"),
])
def test_message_arguments_are_checked(client: WebClient, kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:  # api_call: chat_postMessage would warn about a missing text
        client.api_call("chat.postMessage", json=kwargs)
    assert slack_error(excinfo) == error


def test_unknown_method_and_bad_json_answer_like_slack(slack: SlackStandin, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.teleport")
    assert slack_error(excinfo) == "unknown_method"
    raw = httpx.post(slack.base_url + "chat.postMessage", content=b"{not json",
                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert (raw.status_code, raw.json()) == (200, {"ok": False, "error": "invalid_json"})


def test_rate_limit_is_retried_by_the_sdk_handler(slack: SlackStandin) -> None:
    client = WebClient(token=TOKEN, base_url=slack.base_url,
                       retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    before = len(slack.calls)
    slack.fail_next("chat.postMessage", 429, retry_after=1)
    started = time.monotonic()
    answer = client.chat_postMessage(channel=CHANNEL, text="after the limit")
    assert time.monotonic() - started >= 1.0
    assert slack.calls[before:] == ["chat.postMessage", "chat.postMessage"]
    assert slack.message(CHANNEL, answer["ts"]).text == "after the limit"


def test_rate_limit_without_a_handler_raises_with_retry_after(slack: SlackStandin, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", 429, retry_after=7)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=CHANNEL, text="limited")
    response = excinfo.value.response
    assert (response.status_code, response["error"], response.headers["Retry-After"]) == (429, "ratelimited", "7")


@pytest.mark.parametrize(("status", "error"), [(500, "internal_error"), (503, "service_unavailable")])
def test_server_errors_raise_then_recover(slack: SlackStandin, client: WebClient, status: int, error: str) -> None:
    slack.fail_next("chat.update", status, times=2)
    ts = client.chat_postMessage(channel=CHANNEL, text="gate")["ts"]  # other methods are unaffected
    for _ in range(2):
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_update(channel=CHANNEL, ts=ts, text="edited")
        assert (excinfo.value.response.status_code, slack_error(excinfo)) == (status, error)
    client.chat_update(channel=CHANNEL, ts=ts, text="edited")
    assert slack.message(CHANNEL, ts).edits == 1


def test_trigger_id_opens_one_modal_only(slack: SlackStandin, client: WebClient) -> None:
    trigger = slack.issue_trigger_id()
    opened = client.views_open(trigger_id=trigger, view=modal())
    assert opened["view"]["id"] and opened["view"]["callback_id"] == "gate_decision"
    assert slack.views[-1] == modal()
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=trigger, view=modal())
    assert slack_error(excinfo) == "invalid_trigger_id"
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id="123.456.made-up", view=modal())
    assert slack_error(excinfo) == "invalid_trigger_id"


def test_trigger_id_expires_after_three_seconds(slack: SlackStandin, client: WebClient, clock: SteppedClock) -> None:
    trigger = slack.issue_trigger_id()
    clock.offset += 3.5
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=trigger, view=modal())
    assert slack_error(excinfo) == "expired_trigger_id"


@pytest.mark.parametrize(("view", "pointer"), [
    (modal(title={"type": "plain_text", "text": "t" * 25}), "/view/title/text"),
    (modal(submit=None), "/view/submit"),
    (modal(private_metadata="m" * 3001), "/view/private_metadata"),
    (modal(blocks=[{"type": "divider"}] * 101), "/view/blocks"),
], ids=["long-title", "input-without-submit", "long-metadata", "101-blocks"])
def test_invalid_modals_are_refused(slack: SlackStandin, client: WebClient, view: dict[str, Any],
                                    pointer: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=slack.issue_trigger_id(), view={k: v for k, v in view.items() if v is not None})
    assert slack_error(excinfo) == "invalid_arguments"
    assert any(m.endswith(f"[json-pointer:{pointer}]") for m in excinfo.value.response["response_metadata"]["messages"])


def test_post_ephemeral_is_recorded(slack: SlackStandin, client: WebClient) -> None:
    answer = client.chat_postEphemeral(channel=CHANNEL, user="U0APPROVER", text="only you", blocks=[section("hi")])
    assert answer["message_ts"]
    assert slack.ephemeral[-1] == {"channel": CHANNEL, "user": "U0APPROVER", "text": "only you",
                                   "blocks": [section("hi")]}


def test_response_url_works_five_times_then_404(slack: SlackStandin) -> None:
    hook = WebhookClient(slack.response_url())
    before = len(slack.responses)
    for i in range(5):
        answer = hook.send(text=f"decision {i}", replace_original=True)
        assert (answer.status_code, answer.body) == (200, "ok")
    assert [r["text"] for r in slack.responses[before:]] == [f"decision {i}" for i in range(5)]
    sixth = hook.send(text="too many")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert len(slack.responses) == before + 5
    unknown = WebhookClient(slack.url + "/response/not-a-token").send(text="hi")
    assert unknown.status_code == 404


def marked(event_type: str = "phasegate_gate_prompt", **payload: Any) -> dict[str, Any]:
    return {"event_type": event_type, "event_payload": payload}


def history_channel(slack: SlackStandin, name: str) -> str:
    """A channel of the test's own (the module's stand-in is shared), empty at first."""
    assert not slack.messages(name)
    return name


def test_metadata_is_stored_and_returned_with_the_post(slack: SlackStandin, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="G1", metadata=marked(engagement="acme", revision=1))
    assert posted["message"]["metadata"] == marked(engagement="acme", revision=1)
    assert slack.message(CHANNEL, posted["ts"]).metadata == marked(engagement="acme", revision=1)
    form = client.api_call("chat.postMessage", params={"channel": CHANNEL, "text": "form",
                                                       "metadata": '{"event_type": "x", "event_payload": {}}'})
    assert slack.message(CHANNEL, form["ts"]).metadata == marked("x")


@pytest.mark.parametrize(("metadata", "error"), [
    ("{not json", "invalid_metadata_format"),
    (["phasegate"], "invalid_metadata_format"),
    ({"event_payload": {}}, "invalid_metadata_schema"),
    (marked("gate-prompt"), "invalid_metadata_schema"),
    (marked("gate prompt"), "invalid_metadata_schema"),
    (marked("g" * 256), "invalid_metadata_schema"),
    ({"event_type": 7, "event_payload": {}}, "invalid_metadata_schema"),
    ({"event_type": "gate", "event_payload": "acme"}, "invalid_metadata_schema"),
    ({"event_type": "gate"}, "invalid_metadata_schema"),
], ids=["bad-json", "not-an-object", "no-event-type", "dash", "space", "256-chars", "number", "payload-string",
        "no-payload"])
def test_metadata_of_the_wrong_shape_is_refused(slack: SlackStandin, client: WebClient, metadata: object,
                                                error: str) -> None:
    before = len(slack.messages(CHANNEL))
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.postMessage", json={"channel": CHANNEL, "text": "G1", "metadata": metadata})
    assert slack_error(excinfo) == error
    assert len(slack.messages(CHANNEL)) == before
    client.chat_postMessage(channel=CHANNEL, text="ok", metadata=marked("g" * 255))  # the limit itself is fine


def test_history_pages_newest_first_with_a_cursor(slack: SlackStandin, client: WebClient) -> None:
    channel = history_channel(slack, "C0HISTORY")
    posted = [client.chat_postMessage(channel=channel, text=f"m{i}", metadata=marked(n=i))["ts"] for i in range(7)]
    client.chat_postMessage(channel=channel, thread_ts=posted[0], text="a reply")  # replies are not in history

    pages, cursor = [], None
    while True:
        page = client.conversations_history(channel=channel, limit=3, cursor=cursor)
        pages.append([m["text"] for m in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] is bool(cursor)
        if not cursor:
            break
    assert pages == [["m6", "m5", "m4"], ["m3", "m2", "m1"], ["m0"]]
    everything = client.conversations_history(channel=channel)  # default limit 100
    assert [m["ts"] for m in everything["messages"]] == posted[::-1] and everything["has_more"] is False
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_history(channel=channel, cursor="bm90LWEtY3Vyc29y")
    assert slack_error(excinfo) == "invalid_cursor"


def test_history_limit_is_capped_at_999(slack: SlackStandin, client: WebClient) -> None:
    channel = history_channel(slack, "C0THOUSAND")
    with httpx.Client(base_url=slack.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:  # keep-alive
        for i in range(1000):
            assert http.post("chat.postMessage", json={"channel": channel, "text": f"m{i}"}).json()["ok"]
    first = client.conversations_history(channel=channel, limit=5000)
    assert len(first["messages"]) == 999 and first["has_more"] is True
    rest = client.conversations_history(channel=channel, limit=5000, cursor=first["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["m0"] and rest["has_more"] is False
    for bad in ("0", "many"):
        with pytest.raises(SlackApiError) as excinfo:
            client.conversations_history(channel=channel, limit=bad)
        assert slack_error(excinfo) == "invalid_limit"


def test_history_bounds_and_metadata_only_when_asked(slack: SlackStandin, client: WebClient) -> None:
    channel = history_channel(slack, "C0BOUNDS")
    ts = [client.chat_postMessage(channel=channel, text=f"m{i}", metadata=marked(n=i))["ts"] for i in range(4)]

    def texts(**kwargs: Any) -> list[str]:
        return [m["text"] for m in client.conversations_history(channel=channel, **kwargs)["messages"]]

    assert texts(oldest=ts[1]) == ["m3", "m2"]
    assert texts(oldest=ts[1], inclusive=True) == ["m3", "m2", "m1"]
    assert texts(oldest=ts[0], latest=ts[3]) == ["m2", "m1"]
    assert texts(latest=ts[1], inclusive=True) == ["m1", "m0"]
    plain = client.conversations_history(channel=channel, limit=1)["messages"][0]
    full = client.conversations_history(channel=channel, limit=1, include_all_metadata=True)["messages"][0]
    assert "metadata" not in plain and full["metadata"] == marked(n=3)
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_history(channel=channel, oldest="yesterday")
    assert slack_error(excinfo) == "invalid_ts_oldest"


def test_history_reads_form_arguments_not_a_json_body(slack: SlackStandin, client: WebClient) -> None:
    """Slack's read methods take form or query arguments; a JSON body's `channel` is not seen."""
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("conversations.history", json={"channel": CHANNEL})
    assert slack_error(excinfo) == "channel_not_found"
    assert client.api_call("conversations.history", params={"channel": CHANNEL})["ok"] is True


def test_a_dropped_connection_after_the_post_is_seen_as_an_error(slack: SlackStandin) -> None:
    """drop_after: Slack has the message, the client gets no answer (and, without retry handlers,
    an error; slack_sdk's default ConnectionErrorRetryHandler would post it again)."""
    client = WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[])
    before = len(slack.messages(CHANNEL))
    slack.drop_after("chat.postMessage")
    with pytest.raises(Exception, match="Remote end closed connection without response"):
        client.chat_postMessage(channel=CHANNEL, text="stored, never answered")
    assert [m.text for m in slack.messages(CHANNEL)[before:]] == ["stored, never answered"]
    client.chat_postMessage(channel=CHANNEL, text="answered again")  # only the next call was dropped
    assert len(slack.messages(CHANNEL)) == before + 2

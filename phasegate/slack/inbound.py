"""The one way in: what every Slack request passes before anything is recorded, however it arrived
(HTTP or Socket Mode) and whatever it is (a button, a form, the slash command):

    1. shape     only what Slack sends: the types of user, ids, callback_id, state, values and
                 response_url; no NUL, unpaired surrogate or control character in an id; ids that
                 fit the ledger's integer columns (`row_id`); nesting within MAX_DEPTH   (here)
    2. identity  who is acting: the user Slack names, a Slack user id; nothing in a button's value or
                 a form's metadata ever names the actor                                  (here)
    3. policy    may they: the channel a change request is filed from
                 (`phasegate.slack.channels`), and in the ledger, inside the
                 transaction that records, the gate and change policy (`phasegate.rules.policy`)
    4. values    a reason is text the ledger can store (`phasegate.text.checked`); a change request's
                 fields parse and validate (`phasegate.rules.change_requests`), as from the CLI and Jira
    5. record    one ledger transaction; a refusal at any step before writes nothing
    6. answer    an empty 200, field errors in the form, an ephemeral text, or after the answer
                 through the response_url

Steps 1 and 2 turn the decoded payload into a `Click`, a `Submission` or a `Command`, so no handler
reads a raw payload; anything else is `Refused`. The router (`phasegate.slack.interactions`) runs
them for both entry points and turns each refusal into the answer Slack expects: a 400 for an
interaction, an ephemeral text for a slash command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from phasegate.configs.schema_base import SLACK_CHANNEL_ID, SLACK_USER_ID
from phasegate.messages.ids import REASON_INPUT, ActionId, View, parse_action_id
from phasegate.slack.payloads import delivery_id, malformed
from phasegate.states import Outcome
from phasegate.text import unstorable

MAX_ID_DIGITS = 9  # a row id the ledger can hold: every backend's INTEGER takes 999,999,999
MAX_TOKEN = 255  # callback_id, action_id, trigger_id, view id and hash
MAX_VALUE = 2000  # a button's value (Slack's limit)
MAX_METADATA = 3000  # a view's private_metadata (Slack's limit)
MAX_URL = 2000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_UNSAFE_IN_URL = re.compile(r"[\x00-\x1f\x7f-\x9f]|\s")  # \s: what str.isspace() calls space


class Refused(ValueError):
    """Not something Slack sends: refused before any handler runs, and nothing is written."""


@dataclass(frozen=True)
class Click:
    """A button clicked (block_actions)."""

    user: str
    action: ActionId | None  # None: not one of phasegate's buttons
    value: str
    action_ts: str | None
    trigger_id: str | None
    response_url: str | None  # None also for one that is not a plain http(s) URL: never fetched
    channel: str | None  # where the button was clicked
    message_ts: str | None = None  # the message the button is on (`container.message_ts`)


@dataclass(frozen=True)
class Submission:
    """A form submitted (view_submission)."""

    user: str
    form: View | None  # None: not one of phasegate's forms
    metadata: str
    view_id: str | None
    view_hash: str | None
    fields: Mapping[str, str | None]  # each input, by its block id: the text typed or the option chosen


@dataclass(frozen=True)
class Command:
    """A slash command."""

    user: str
    channel: str
    text: str
    trigger_id: str | None
    response_url: str | None


def interaction(payload: object, *, decoded: bool = False) -> Click | Submission | None:
    """An interaction payload as phasegate acts on it; None for a kind it does not use. `decoded`: it
    came from `payloads.decode_json`, which refused what `malformed` refuses (the HTTP endpoint's)."""
    problem = None if decoded else malformed(payload)
    if problem is not None:
        raise Refused(problem)
    if not isinstance(payload, dict):
        raise Refused("payload is not an object")
    user = identity(payload.get("user"))
    kind = payload.get("type")
    if kind == "block_actions":
        return click(payload, user)
    if kind == "view_submission":
        return submission(payload, user)
    return None


def identity(user: object) -> str:
    """Who is acting: the payload's user, named by Slack (the request is signed, or came over the
    app's own socket)."""
    if not isinstance(user, dict):
        raise Refused("payload has no user")
    user_id = user.get("id")
    if not isinstance(user_id, str) or not SLACK_USER_ID.fullmatch(user_id):
        raise Refused("payload has no user id")
    return user_id


def click(payload: dict[str, Any], user: str) -> Click:
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise Refused("block_actions without actions")
    action = actions[0]
    action_id = token(action.get("action_id"), "action_id")
    return Click(user=user, action=parse_action_id(action_id),
                 value=token(action.get("value", ""), "the button's value", MAX_VALUE),
                 action_ts=optional(action.get("action_ts"), "action_ts", limit=None),
                 trigger_id=optional(payload.get("trigger_id"), "trigger_id"),
                 response_url=response_url(payload.get("response_url")), channel=channel_of(payload),
                 message_ts=optional(container.get("message_ts") if isinstance(container := payload.get("container"), dict)
                                     else None, "container.message_ts"))


def channel_of(payload: dict[str, Any]) -> str | None:
    """The channel a button was clicked in: `channel.id`, or the message container's `channel_id`."""
    where = payload.get("channel")
    found = where.get("id") if isinstance(where, dict) else None
    if found is None:
        container = payload.get("container")
        found = container.get("channel_id") if isinstance(container, dict) else None
    if found is not None and (not isinstance(found, str) or not SLACK_CHANNEL_ID.fullmatch(found)):
        raise Refused("the payload's channel is not a channel id")
    return found


def submission(payload: dict[str, Any], user: str) -> Submission:
    view = payload.get("view")
    if not isinstance(view, dict):
        raise Refused("view_submission without a view")
    callback_id = token(view.get("callback_id"), "callback_id")
    try:
        form: View | None = View(callback_id)
    except ValueError:
        form = None
    return Submission(user=user, form=form, metadata=token(view.get("private_metadata", ""), "private_metadata",
                                                            MAX_METADATA),
                      view_id=optional(view.get("id"), "view id"), view_hash=optional(view.get("hash"), "view hash"),
                      fields=fields_of(view))


@dataclass(frozen=True)
class Reason:
    """A filled-in reason form (a gate's or a change request's): the row it answers, the outcome
    chosen with the button that opened it, the reason as typed, and the delivery id under which
    Slack's retries of the same submission count once."""

    row: int
    outcome: Outcome
    text: str
    delivery: str


def reason_form(submission: Submission, form: str, row: str) -> Reason:
    """A reason form's answer (step 1): its metadata is `<row id>:<outcome>` as the form was opened
    with, and its reason field is there; `form` and `row` name them in a refusal."""
    row_part, _, outcome_part = submission.metadata.partition(":")
    row_number = row_id(row_part)
    if row_number is None:
        raise Refused(f"{form} view without {row}")
    try:
        outcome = Outcome(outcome_part)
    except ValueError:
        raise Refused(f"{form} view without an outcome") from None
    if REASON_INPUT not in submission.fields:
        raise Refused(f"{form} view without a reason")
    return Reason(row_number, outcome, submission.fields[REASON_INPUT] or "",
                  delivery_id("slack-view", submission.view_id, submission.view_hash))


def fields_of(view: dict[str, Any]) -> dict[str, str | None]:
    """`view.state.values` as {block id: text}: an input's `value`, or its `selected_option`'s value.
    Every entry must be shaped as Slack shapes it, whether phasegate reads it or not."""
    state = view.get("state", {})
    if not isinstance(state, dict):
        raise Refused("view.state is not an object")
    values = state.get("values", {})
    if not isinstance(values, dict):
        raise Refused("view.state.values is not an object")
    fields: dict[str, str | None] = {}
    for block_id, inputs in values.items():
        if not isinstance(inputs, dict):
            raise Refused("an input block in view.state.values is not an object")
        for action_id, entry in inputs.items():
            if not isinstance(entry, dict):
                raise Refused("an input in view.state.values is not an object")
            if action_id == block_id:
                fields[block_id] = entry_text(entry)
            else:
                entry_text(entry)
    return fields


def entry_text(entry: dict[str, Any]) -> str | None:
    if "selected_option" in entry:
        option = entry["selected_option"]
        if option is None:
            return None
        if not isinstance(option, dict) or not isinstance(option.get("value"), str):
            raise Refused("a chosen option in view.state.values is not an option")
        return str(option["value"])
    value = entry.get("value")
    if value is not None and not isinstance(value, str):
        raise Refused("an input's value in view.state.values is not text")
    return value


def command(fields: Mapping[str, object]) -> Command:
    """A slash command's fields (form-encoded over HTTP, JSON over Socket Mode) as phasegate acts on them."""
    user = fields.get("user_id")
    if not isinstance(user, str) or not SLACK_USER_ID.fullmatch(user):
        raise Refused("the command has no user id")
    where = fields.get("channel_id")
    if not isinstance(where, str) or not SLACK_CHANNEL_ID.fullmatch(where):
        raise Refused("the command has no channel id")
    return Command(user=user, channel=where, text=token(fields.get("text", ""), "the command's text", MAX_VALUE),
                   trigger_id=optional(fields.get("trigger_id"), "trigger_id"),
                   response_url=response_url(fields.get("response_url")))


def token(value: object, what: str, limit: int | None = MAX_TOKEN) -> str:
    """An id or short text that names something: text, within `limit`, no control character, storable."""
    if not isinstance(value, str):
        raise Refused(f"{what} is not text")
    if limit is not None and len(value) > limit:
        raise Refused(f"{what} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise Refused(f"{what} contains a control character")
    problem = unstorable(value)
    if problem is not None:
        raise Refused(f"{what} is unusable: {problem}")
    return value


def optional(value: object, what: str, limit: int | None = MAX_TOKEN) -> str | None:
    return None if value is None else token(value, what, limit)


def response_url(url: object) -> str | None:
    """The response_url if it is a plain http(s) URL; anything else is ignored, never fetched (the
    answer it would have carried is lost, the request is not refused for it)."""
    if not isinstance(url, str) or len(url) > MAX_URL or _UNSAFE_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or unstorable(url) is not None:
        return None
    return url


def row_id(text: str) -> int | None:
    """A gate or change-request id named in a button's value or a form's metadata, if it is one the
    ledger could hold: ASCII digits, at most MAX_ID_DIGITS of them."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
        return int(text)
    return None

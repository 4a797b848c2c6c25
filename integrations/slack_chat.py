"""Posting to Slack through a `slack_sdk.WebClient` that the caller builds and passes in.

A post the caller records by its ts carries a `Mark` (Slack message metadata naming what it is).
When the answer to chat.postMessage is lost (a dropped connection, a process killed before it
wrote the ts down), Slack may have the message anyway; `post_marked` looks for the mark in the
channel's recent history before posting, so the message is found, not posted a second time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from phasegate.integrations.errors import IntegrationError, ServiceUnavailable
from phasegate.integrations.slack_metadata import WITNESS_KEYS

log = logging.getLogger(__name__)
UNREADABLE = frozenset({"not_in_channel", "missing_scope"})  # history refused for good: post without looking
HISTORY_PAGE = 200  # messages per conversations.history call while looking for a marked post
HISTORY_PAGES = 5  # at most this many pages (1,000 messages) back to the post's earliest moment


@dataclass(frozen=True)
class Mark:
    """What a post is, as Slack message metadata: `event_type` (letters, digits, `_`) and a payload
    of names, e.g. Mark("phasegate_gate_prompt", {"engagement": "acme-churn", "revision": 2}); and
    the chain head it witnesses (`witness`, keyed by WITNESS_KEYS), if any."""

    event_type: str
    payload: Mapping[str, str | int]
    witness: Mapping[str, str | int] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "event_payload": dict(self.payload) | dict(self.witness)}

    def on(self, message: Mapping[str, Any]) -> bool:
        """Whether a message from conversations.history carries this mark (whatever head it witnessed)."""
        metadata = message.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("event_payload"), dict):
            return False
        names = {k: v for k, v in metadata["event_payload"].items() if k not in WITNESS_KEYS}
        return metadata.get("event_type") == self.event_type and names == dict(self.payload)


def _posts_a_mark(request: HttpRequest) -> bool:
    if not request.url.endswith("/chat.postMessage") or not request.data:
        return False
    try:
        body = json.loads(request.data)
    except ValueError:
        return False
    return isinstance(body, dict) and "metadata" in body


class ResendUnlessMarked(ConnectionErrorRetryHandler):
    """Retry a dropped connection, except for a marked post: Slack may have stored it before the
    connection dropped, and `post_marked` looks for it before posting again."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if _posts_a_mark(request):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


def make_web_client(token: str, base_url: str, timeout: int = 10) -> WebClient:
    """A WebClient that honours Retry-After on 429 and retries dropped connections once (a marked
    post is looked for instead: `SlackChat.post_marked`)."""
    return WebClient(token=token, base_url=base_url, timeout=timeout,
                     retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3),
                                     ResendUnlessMarked(max_retry_count=1)])


class CannotLook(IntegrationError):
    """The channel's history cannot be read at all (the bot is not in it, or lacks channels:history)."""


class SlackChat:
    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._bot_id: str | None = None

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.client.api_call(method, json=kwargs)
        except SlackApiError as exc:
            raise ServiceUnavailable(f"Slack {method} failed: {exc.response.get('error', exc.response.status_code)}") from None
        except (SlackClientError, OSError) as exc:
            raise ServiceUnavailable(f"Slack {method} failed: {type(exc).__name__}: {exc}") from None
        data: dict[str, Any] = response.data if isinstance(response.data, dict) else {}
        return data

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None,
             thread_ts: str | None = None, *, mark: Mark | None = None) -> str:
        """Post a message and return its ts."""
        kwargs: dict[str, Any] = {"channel": channel, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if mark is not None:
            kwargs["metadata"] = mark.metadata()
        return str(self._call("chat.postMessage", **kwargs)["ts"])

    def find(self, channel: str, mark: Mark, *, oldest: float) -> str | None:
        """The ts of the earliest top-level message in `channel` carrying `mark`, posted after `oldest`
        (Unix seconds), looking at most HISTORY_PAGES pages back; None if there is none."""
        found: str | None = None
        for message in self.history(channel, oldest=oldest, pages=HISTORY_PAGES)[0]:  # newest first
            if mark.on(message):
                found = str(message.get("ts"))  # the last match is the earliest
        return found

    def history(self, channel: str, *, oldest: float, pages: int) -> tuple[list[dict[str, Any]], bool]:
        """(the channel's top-level messages since `oldest` (Unix seconds), newest first, with their
        metadata; whether that is all of them) reading at most `pages` pages of HISTORY_PAGE.
        CannotLook or ServiceUnavailable when Slack cannot be read."""
        found: list[dict[str, Any]] = []
        more: dict[str, str] = {}  # the cursor, from the second page on
        for _ in range(pages):
            try:
                page = self.client.api_call("conversations.history", params={
                    "channel": channel, "oldest": f"{oldest:.6f}", "limit": HISTORY_PAGE,
                    "include_all_metadata": "true", **more}).data
            except SlackApiError as exc:
                error = exc.response.get("error", exc.response.status_code)
                if error in UNREADABLE:
                    raise CannotLook(f"Slack conversations.history failed: {error}") from None
                raise ServiceUnavailable(f"Slack conversations.history failed: {error}") from None
            except (SlackClientError, OSError) as exc:
                raise ServiceUnavailable(f"Slack conversations.history failed: {type(exc).__name__}: {exc}") from None
            if not isinstance(page, dict):
                return found, False
            found += [m for m in page.get("messages") or [] if isinstance(m, dict)]
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not page.get("has_more") or not cursor:
                return found, True
            more = {"cursor": cursor}
        return found, False

    def post_marked(self, channel: str, text: str, blocks: list[dict[str, Any]] | None, mark: Mark, *,
                    oldest: float) -> str:
        """Post once: the ts of the message carrying `mark` since `oldest` if Slack has one already, else
        of a new post. Call it only while the caller has no ts recorded (it costs a history read).

        A post whose answer is lost is looked for again; found, it is the post. Not found, the error is
        raised (ServiceUnavailable) and the caller's retry starts with the look-up again.
        """
        try:
            existing = self.find(channel, mark, oldest=oldest)
        except CannotLook as exc:  # e.g. posting through chat:write.public without being in the channel
            log.warning("%s in %s: posting %s without looking for an earlier copy", exc, channel, mark.event_type)
            return self.post(channel, text, blocks, mark=mark)
        if existing is not None:
            return existing
        try:
            return self.post(channel, text, blocks, mark=mark)
        except ServiceUnavailable:
            existing = self.find(channel, mark, oldest=oldest)
            if existing is None:
                raise
            return existing

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        """A message only `user` sees, in `channel` (for answers with no response_url, such as a form's)."""
        self._call("chat.postEphemeral", channel=channel, user=user, text=text)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]], *, mark: Mark | None = None
               ) -> None:
        """Redraw one of our messages; with `mark`, its metadata too (e.g. the chain head it now witnesses)."""
        extra = {"metadata": mark.metadata()} if mark is not None else {}
        self._call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks, **extra)

    def bot_id(self) -> str:
        """Our own bot's id (auth.test, asked once), to tell our messages from anyone else's."""
        if self._bot_id is None:
            self._bot_id = str(self._call("auth.test").get("bot_id") or "")
        return self._bot_id

    def upload(self, channel: str, path: Path, title: str, thread_ts: str | None = None) -> str:
        """Share a file in the channel (in the thread when given) and return its file id.

        Through `files_upload_v2`, the upload path Slack supports today: files.getUploadURLExternal,
        a POST of the bytes to the URL it returns, then files.completeUploadExternal.
        """
        try:
            response = self.client.files_upload_v2(channel=channel, file=str(path), filename=path.name, title=title,
                                                   thread_ts=thread_ts)
        except SlackApiError as exc:
            raise ServiceUnavailable(f"Slack file upload failed: {exc.response.get('error', exc.response.status_code)}") from None
        except (SlackClientError, OSError) as exc:
            raise ServiceUnavailable(f"Slack file upload failed: {type(exc).__name__}: {exc}") from None
        uploaded = response.get("file") or {}
        return str(uploaded.get("id", "")) if isinstance(uploaded, dict) else ""

    def open_modal(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._call("views.open", trigger_id=trigger_id, view=view)

    @staticmethod
    def respond(response_url: str, text: str) -> None:
        """An ephemeral answer to the person who clicked, through the click's response_url."""
        try:
            WebhookClient(response_url, timeout=5).send(text=text, response_type="ephemeral", replace_original=False)
        except (SlackClientError, OSError, ValueError, HTTPException) as exc:  # a URL urllib or http.client refuses
            raise ServiceUnavailable(f"Slack response_url failed: {exc}") from None

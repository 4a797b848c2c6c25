"""Posting to Slack through a `slack_sdk.WebClient` that the caller builds and passes in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from integrations.errors import ServiceUnavailable


def make_web_client(token: str, base_url: str, timeout: int = 10) -> WebClient:
    """A WebClient that honours Retry-After on 429 and retries dropped connections once."""
    return WebClient(token=token, base_url=base_url, timeout=timeout,
                     retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3),
                                     ConnectionErrorRetryHandler(max_retry_count=1)])


class SlackChat:
    def __init__(self, client: WebClient) -> None:
        self.client = client

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
             thread_ts: str | None = None) -> str:
        """Post a message and return its ts."""
        kwargs: dict[str, Any] = {"channel": channel, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        return str(self._call("chat.postMessage", **kwargs)["ts"])

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        """A message only `user` sees, in `channel` (for answers with no response_url, such as a form's)."""
        self._call("chat.postEphemeral", channel=channel, user=user, text=text)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self._call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

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
        except (SlackClientError, OSError, ValueError) as exc:  # ValueError: a URL urllib cannot use
            raise ServiceUnavailable(f"Slack response_url failed: {exc}") from None

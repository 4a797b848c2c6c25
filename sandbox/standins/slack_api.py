"""A local stand-in for the part of the Slack Web API that phasegate uses.

Why: tests and the local demo should drive the real `slack_sdk.WebClient` over real HTTP, so
the request encoding, auth, retries and error handling under test are the ones production
uses. The stand-in therefore enforces what Slack enforces where it matters (auth, channel ids,
Block Kit limits, single-use trigger ids that expire after 3 s, response URLs good for 5 posts,
message metadata and history paging) and can be told to rate-limit, fail, or lose the answer to a
call it carried out (`drop_after`), so a test that passes against it means something.

    slack = SlackStandin(channels=["C0GATES"])
    slack.start()
    client = WebClient(token=slack.bot_token, base_url=slack.base_url)
    client.chat_postMessage(channel="C0GATES", text="Phase 1 gate")
    slack.messages("C0GATES")[0].text        # "Phase 1 gate"
    slack.stop()

The trigger ids and response URLs of interactions are in `slack_interactions`, file uploads in
`slack_files`, history paging in `slack_history`, the wire format in `slack_wire`.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from phasegate.sandbox.standins.dropped import DROP, DropConnections
from phasegate.sandbox.standins.loopback import LoopbackServer
from phasegate.sandbox.standins.slack_files import FileUploads
from phasegate.sandbox.standins.slack_history import history, metadata_of
from phasegate.sandbox.standins.slack_interactions import Interactions
from phasegate.sandbox.standins.slack_wire import (  # noqa: F401  (TEAM_ID and friends: the stand-in's identity)
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    MAX_TEXT,
    TEAM_ID,
    Args,
    Message,
    SlackError,
    _content,
    _copy,
    _failure_response,
    _parse_args,
    _render,
)

CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,20}$")
FORM_ONLY = frozenset({"conversations.history"})  # read methods: Slack ignores a JSON body's arguments

class SlackStandin(LoopbackServer):
    """The Slack Web API subset phasegate calls, served by a Starlette app on a loopback port."""

    def __init__(self, bot_token: str = "xoxb-phasegate-local", channels: Iterable[str] | None = None,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bot_token = bot_token
        self.app_token = "xapp-phasegate-local"  # apps.connections.open takes this one, not the bot token
        self.socket_url: str | None = None  # set by a SocketModeStandin; what apps.connections.open hands out
        self.channels: frozenset[str] | None = frozenset(channels) if channels is not None else None
        self.clock = clock  # injectable so trigger/response-url expiry can be tested without sleeping
        self._lock = threading.Lock()
        # trigger ids and response URLs; the modals opened and what was posted to response URLs
        self.interactions = Interactions(lambda: self.clock(), self._lock)
        self.views, self.responses = self.interactions.views, self.interactions.responses
        self.ephemeral: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.not_member: set[str] = set()  # channels posted to via chat:write.public only: no history
        self._messages: list[Message] = []
        self._last_ts_us = 0
        self._failures: dict[str, deque[tuple[int, int]]] = {}  # method -> (status, retry_after)
        self._delays: dict[str, deque[float]] = {}  # method -> seconds to hold the next calls (delay_next)
        self._drops: dict[str, int] = {}  # method -> calls still to be applied and then left unanswered
        self._methods: dict[str, Callable[[Args], Args]] = {  # each runs with self._lock held
            "auth.test": self._auth_test, "chat.postMessage": self._post_message, "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral, "views.open": self.interactions.views_open,
            "apps.connections.open": self._connections_open, "conversations.history": self._history,
        }
        self.files = FileUploads(lambda: self.url, SlackError, self._channel)  # files_upload_v2's three steps
        self._methods.update({"files.getUploadURLExternal": self.files.get_upload_url,
                              "files.completeUploadExternal": self.files.complete})
        self.app = DropConnections(Starlette(routes=[
            Route("/api/{method}", self._api, methods=["GET", "POST"]),
            Route("/response/{token}", self.interactions.respond, methods=["POST"]),
            Route("/upload/v1/{file_id}", self.files.upload, methods=["POST"]),
        ]))


    @property
    def base_url(self) -> str:
        """What `WebClient(base_url=...)` takes: slack_sdk appends the method name to it."""
        return self.url + "/api/"


    def fail_next(self, method: str, status: int = 429, retry_after: int = 1, times: int = 1) -> None:
        """Make the next `times` calls of `method` answer HTTP `status` (429 or 5xx), before auth."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"fail_next supports 429 and 5xx, not {status}")
        with self._lock:
            queue = self._failures.setdefault(method, deque())
            queue.extend((status, retry_after) for _ in range(times))

    def delay_next(self, method: str, seconds: float) -> None:
        """Hold the next call of `method` for `seconds` before applying it, as network jitter can, so a
        call sent earlier lands later than one sent after it. The request has been read in full by then:
        it is applied even if its client has gone away meanwhile."""
        with self._lock:
            self._delays.setdefault(method, deque()).append(seconds)

    def drop_after(self, method: str, times: int = 1) -> None:
        """Apply the next `times` calls of `method`, then close each connection without answering, as a
        connection lost after Slack acted looks to the client ("Remote end closed connection without
        response"): the post exists, the caller never learns its ts."""
        with self._lock:
            self._drops[method] = self._drops.get(method, 0) + times

    def issue_trigger_id(self) -> str:
        """A trigger_id as Slack puts in an interaction payload: one views.open, within 3 s."""
        return self.interactions.issue_trigger_id()

    def response_url(self) -> str:
        """A fresh response URL (POST JSON to it) that, like Slack's, works at most 5 times."""
        return self.interactions.response_url(self.url)

    def said_to(self, response_url: str) -> list[str]:
        """The texts the app posted to this response URL (what the clicker was told), in order."""
        return self.interactions.said_to(response_url)

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages and thread replies in `channel`, in post order."""
        with self._lock:
            return [_copy(m) for m in self._messages if m.channel == channel]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The replies in the thread started by `ts` (the parent itself is not included)."""
        with self._lock:
            return [_copy(m) for m in self._messages if m.channel == channel and m.thread_ts == ts]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            found = self._find(channel, ts)
            if found is None:
                raise KeyError(f"no message {ts} in {channel}")
            return _copy(found)

    def reset(self) -> None:
        """Forget messages, recorded calls and pending failures (lists are cleared in place)."""
        with self._lock:
            self._messages.clear()
            self._failures.clear()
            self._delays.clear()
            self._drops.clear()
            self.not_member.clear()
            self.files.files.clear()
            for recorded in (self.views, self.ephemeral, self.responses, self.calls):
                recorded.clear()


    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        body = await request.body()  # read in full first: a call recorded here has reached Slack
        with self._lock:
            self.calls.append(method)
            queue = self._failures.get(method)
            failure = queue.popleft() if queue else None
            delays = self._delays.get(method)
            delay = delays.popleft() if delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        if failure is not None:
            return _failure_response(*failure)
        try:
            if method not in self._methods:
                raise SlackError("unknown_method")
            args = _parse_args(request, body, form_only=method in FORM_ONLY)
            self._authenticate(request, args, self.app_token if method == "apps.connections.open" else self.bot_token)
            with self._lock:
                result = self._methods[method](args)
                if self._drops.get(method):
                    self._drops[method] -= 1
                    request.scope[DROP] = True
        except SlackError as err:
            answer: Args = {"ok": False, "error": err.error}
            if err.messages:
                answer["response_metadata"] = {"messages": err.messages}
            return JSONResponse(answer)  # Slack answers API errors with HTTP 200
        return JSONResponse({"ok": True, **result})

    def _authenticate(self, request: Request, args: Args, expected: str) -> None:
        header = request.headers.get("authorization", "")
        form_token = args.pop("token", None)  # Slack also takes the token as a form field
        token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else form_token
        if not token:
            raise SlackError("not_authed")
        if token != expected:
            raise SlackError("invalid_auth")

    def _connections_open(self, args: Args) -> Args:
        if self.socket_url is None:
            raise SlackError("invalid_app")  # no Socket Mode stand-in is attached
        return {"url": self.socket_url}


    def _auth_test(self, args: Args) -> Args:
        url = self._handle.url if self._handle is not None else "http://127.0.0.1"
        return {"url": url + "/", "team": "phasegate-local", "user": "phasegate", "team_id": TEAM_ID,
                "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _post_message(self, args: Args) -> Args:
        channel = self._channel(args)
        text, blocks = _content(args)
        if text is None and not blocks:
            raise SlackError("no_text")
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        message = Message(self._next_ts(), channel, text or "", blocks or [], thread_ts, metadata=metadata_of(args))
        self._messages.append(message)
        return {"channel": channel, "ts": message.ts, "message": _render(message)}

    def _update(self, args: Args) -> Args:
        channel = self._channel(args)
        text, blocks = _content(args)
        message = self._find(channel, str(args.get("ts", "")))
        if message is None:
            raise SlackError("message_not_found")
        if text is None and blocks is None:
            raise SlackError("no_text")
        metadata = metadata_of(args)
        if text is not None:  # like Slack, an omitted field keeps its previous value
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        if metadata is not None:
            message.metadata = metadata
        message.edits += 1
        return {"channel": channel, "ts": message.ts, "text": message.text, "message": _render(message)}

    def _history(self, args: Args) -> Args:
        channel = self._channel(args)
        if channel in self.not_member:
            raise SlackError("not_in_channel")  # channels:history covers channels the bot is in
        return history((m for m in self._messages if m.channel == channel), args)

    def _post_ephemeral(self, args: Args) -> Args:
        channel = self._channel(args)
        user = args.get("user")
        if not user:
            raise SlackError("user_not_found")
        text, blocks = _content(args)
        if text is None and not blocks:
            raise SlackError("no_text")
        self.ephemeral.append({"channel": channel, "user": str(user), "text": text or "", "blocks": blocks or []})
        return {"message_ts": self._next_ts()}

    def _channel(self, args: Args) -> str:
        channel = str(args.get("channel", ""))
        allowed = channel in self.channels if self.channels is not None else bool(CHANNEL_ID.match(channel))
        if not allowed:
            raise SlackError("channel_not_found")
        return channel

    def _find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self._messages if m.channel == channel and m.ts == ts), None)

    def _next_ts(self) -> str:
        """Slack-style "seconds.micros" timestamps, unique and strictly increasing."""
        self._last_ts_us = max(self._last_ts_us + 1, int(time.time() * 1_000_000))
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

"""What Slack hands an app with each interaction, as the Slack stand-in hands it out: a trigger id,
good for one `views.open` within 3 s, and a response URL, good for 5 posts within 30 minutes.
Records the modals opened (`views`) and what was posted to response URLs (`responses`).
"""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import threading
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from phasegate.sandbox.standins.blockkit import validate_blocks, validate_modal
from phasegate.sandbox.standins.slack_wire import APP_ID, BOT_ID, TEAM_ID, Args, SlackError, _ResponseUrl

TRIGGER_TTL = 3.0  # seconds a trigger_id stays usable, as in Slack
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0  # Slack's response_urls expire after 30 minutes


class Interactions:
    """Held by SlackStandin and sharing its lock; `clock` is the stand-in's, so expiry can be tested
    without sleeping."""

    def __init__(self, clock: Callable[[], float], lock: threading.Lock) -> None:
        self.clock, self._lock = clock, lock
        self.views: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self._triggers: dict[str, float] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._view_ids = itertools.count(1)

    def issue_trigger_id(self) -> str:
        """A trigger_id as Slack puts in an interaction payload: one views.open, within 3 s."""
        trigger = f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = self.clock()
        return trigger

    def response_url(self, base_url: str) -> str:
        """A fresh response URL (POST JSON to it) that, like Slack's, works at most 5 times."""
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._response_urls[token] = _ResponseUrl(created=self.clock())
        return f"{base_url}/response/{token}"

    def said_to(self, response_url: str) -> list[str]:
        """The texts the app posted to this response URL (what the clicker was told), in order."""
        with self._lock:
            entry = self._response_urls.get(response_url.rsplit("/", 1)[-1])
            return list(entry.said) if entry is not None else []

    async def respond(self, request: Request) -> Response:
        """A response_url: plain-text answers, like Slack's hooks endpoints."""
        token = request.path_params["token"]
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        with self._lock:
            entry = self._response_urls.get(token)
            if entry is None:
                return PlainTextResponse("no_service", status_code=404)
            if entry.uses >= RESPONSE_URL_USES:
                return PlainTextResponse("used_url", status_code=404)
            if self.clock() - entry.created > RESPONSE_URL_TTL:
                return PlainTextResponse("expired_url", status_code=404)
            if not isinstance(body, dict):
                return PlainTextResponse("invalid_payload", status_code=400)
            if "blocks" in body and validate_blocks(body["blocks"]):
                return PlainTextResponse("invalid_blocks", status_code=400)
            entry.uses += 1
            entry.said.append(str(body.get("text", "")))
            self.responses.append(body)
        return PlainTextResponse("ok")

    def views_open(self, args: Args) -> Args:
        """`views.open`, run with the stand-in's lock held like every API method."""
        trigger = str(args.get("trigger_id", ""))
        issued = self._triggers.get(trigger)
        if issued is None:
            raise SlackError("invalid_trigger_id")
        if self.clock() - issued > TRIGGER_TTL:
            raise SlackError("expired_trigger_id")
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise SlackError("invalid_arguments", ["[ERROR] invalid json [json-pointer:/view]"]) from None
        errors = validate_modal(view)
        if errors:  # Slack reports view problems as invalid_arguments, not invalid_blocks
            raise SlackError("invalid_arguments", errors)
        assert isinstance(view, dict)
        del self._triggers[trigger]
        self.views.append(copy.deepcopy(view))
        view_id = f"V{next(self._view_ids):010d}"
        opened = {**copy.deepcopy(view), "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID,
                  "root_view_id": view_id, "previous_view_id": None, "hash": secrets.token_hex(8),
                  "state": {"values": {}}}
        return {"view": opened}

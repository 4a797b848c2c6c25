"""The Slack endpoint: `POST /slack/interactions`.

Verify, record, answer; everything slow (updating the prompt, opening a modal, waking the
flow run) happens after the answer, inside Slack's three seconds for the answer itself. The
approver is the verified payload's `user.id`; a button's value only names the gate revision.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import BackgroundTasks, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from configs.schema import Phase
from integrations.slack_blocks import clip
from integrations.slack_chat import SlackChat
from phasegate import messages
from phasegate.errors import EXPECTED, GateClosed, NotFound, PolicyError
from phasegate.ledger import gates
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import attest, attestations, config_of, get
from phasegate.policy import needs_reason
from phasegate.prompts import refresh
from phasegate.slack_ids import REASON_INPUT, Action, View, parse_action_id
from phasegate.slack_signature import verify
from phasegate.states import Channel, Outcome

log = logging.getLogger("phasegate.slack")
MAX_BODY = 1_000_000  # Slack's interaction payloads are a few kilobytes


@dataclass
class SlackDeps:
    signing_secret: str
    sessions: sessionmaker[Session]
    chat: SlackChat
    resume: Callable[[str], object]
    clock: Callable[[], float] = field(default=time.time)


class BadPayload(ValueError):
    pass


def parse_payload(body: bytes) -> dict[str, Any]:
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise BadPayload("expected a form field `payload` holding JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), dict):
        raise BadPayload("payload has no user")
    if not isinstance(payload["user"].get("id"), str):
        raise BadPayload("payload has no user id")
    return payload


def is_gate_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 9  # fits every backend's integer column


def delivery_id(kind: str, *parts: object) -> str:
    """A fixed-length key naming one Slack delivery, so a repeat of it is recognised."""
    return f"{kind}:" + hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def after_answer(deps: SlackDeps, gate_id: int, decided: bool) -> None:
    """Show the gate as it now stands to everyone, and wake the run if the gate was decided."""
    with transaction(deps.sessions) as session:
        run = gates.by_id(session, gate_id).flow_run_id
    try:
        refresh(deps.sessions, deps.chat, gate_id)
    except EXPECTED as exc:
        log.warning("could not update the prompt of gate %s: %s", gate_id, exc)
    if decided and run:
        deps.resume(run)


def tell(deps: SlackDeps, response_url: str | None, text: str) -> None:
    if response_url:
        try:
            deps.chat.respond(response_url, text)
        except EXPECTED as exc:
            log.warning("could not answer the clicker: %s", exc)


def record(deps: SlackDeps, background: BackgroundTasks, *, gate_id: int, user: str, outcome: Outcome,
           reason: str, delivery_id: str, response_url: str | None) -> str | None:
    """Record the answer; the refusal text if the policy refused it."""
    try:
        with transaction(deps.sessions) as session:
            result = gates.answer(session, gate_id, approver=user, outcome=outcome, reason=reason,
                                  channel=Channel.SLACK, delivery_id=delivery_id)
    except GateClosed as exc:
        background.add_task(tell, deps, response_url, str(exc))
        return str(exc)
    except (PolicyError, NotFound) as exc:
        background.add_task(tell, deps, response_url, f"Not recorded: {exc}")
        return str(exc)
    if result.recorded:
        background.add_task(after_answer, deps, gate_id, result.decided is not None)
    return None


def on_block_action(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks) -> Response:
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise BadPayload("block_actions without actions")
    action = actions[0]
    parsed, value = parse_action_id(str(action.get("action_id", ""))), str(action.get("value", ""))
    if parsed is not None and parsed.action is Action.ATTEST:
        return on_attest(deps, payload, parsed.argument, value, background)
    if parsed is None or parsed.action is not Action.GATE or not is_gate_id(value):
        return Response(status_code=200)  # not one of ours; nothing to do
    try:
        outcome = Outcome(parsed.argument)
    except ValueError:
        raise BadPayload(f"unknown gate action {parsed.argument!r}") from None
    gate_id, user = int(value), payload["user"]["id"]
    response_url = payload.get("response_url") if isinstance(payload.get("response_url"), str) else None
    refusal, unmet = precheck(deps, gate_id, user, outcome)
    if refusal is not None:
        background.add_task(tell, deps, response_url, refusal)
        return Response(status_code=200)
    if needs_reason(outcome, unmet):
        trigger = payload.get("trigger_id")
        if isinstance(trigger, str):
            view = messages.reason_modal(gate_id=gate_id, outcome=outcome, gate_title=f"gate {gate_id}",
                                         waiver=outcome.passes)
            background.add_task(open_modal, deps, trigger, view, response_url)
        return Response(status_code=200)
    delivery = delivery_id("slack", gate_id, user, action.get("action_ts"))
    record(deps, background, gate_id=gate_id, user=user, outcome=outcome, reason="", delivery_id=delivery,
           response_url=response_url)
    return Response(status_code=200)


def on_attest(deps: SlackDeps, payload: dict[str, Any], milestone: str, engagement_id: str,
              background: BackgroundTasks) -> Response:
    """A handover item attested from its button on the kickoff message, by the verified user."""
    user = payload["user"]["id"]
    response_url = payload.get("response_url") if isinstance(payload.get("response_url"), str) else None
    try:
        with transaction(deps.sessions) as session:
            engagement = config_of(get(session, engagement_id))
            previous = attestations(session, engagement_id, Phase.HANDOVER).get(milestone)
            if previous is not None and previous[0] == user:
                background.add_task(tell, deps, response_url, f"You already attested {milestone}.")
                return Response(status_code=200)
            attest(session, engagement, Phase.HANDOVER, milestone, by=user, note="attested in Slack",
                   channel=Channel.SLACK)
    except (PolicyError, NotFound) as exc:
        background.add_task(tell, deps, response_url, f"Not recorded: {exc}")
        return Response(status_code=200)
    background.add_task(tell, deps, response_url, f"Recorded: <@{user}> attested {milestone}.")
    return Response(status_code=200)


def precheck(deps: SlackDeps, gate_id: int, user: str, outcome: Outcome) -> tuple[str | None, list[str]]:
    """(the refusal, if the answer could never be recorded; the exit criteria not met), before a
    reason is asked for: a GO or ACCEPT past unmet criteria needs one too, as a written waiver."""
    try:
        with transaction(deps.sessions) as session:
            gate = gates.by_id(session, gate_id)
            gates.check(session, gate, config_of(get(session, gate.engagement_id)), approver=user,
                        outcome=outcome, reason="(to be given)")
            return None, gates.snapshot_of(session, gate).unmet
    except GateClosed as exc:
        return str(exc), []
    except (PolicyError, NotFound) as exc:
        return f"Not recorded: {exc}", []


def open_modal(deps: SlackDeps, trigger_id: str, view: dict[str, Any], response_url: str | None) -> None:
    try:
        deps.chat.open_modal(trigger_id, view)
    except EXPECTED as exc:
        tell(deps, response_url, f"Could not open the reason form ({exc}); use `phasegate gate decide` instead.")


def on_view_submission(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks) -> Response:
    view = payload.get("view")
    if not isinstance(view, dict) or view.get("callback_id") != View.GATE_REASON.value:
        return Response(status_code=200)
    gate_part, _, outcome_part = str(view.get("private_metadata", "")).partition(":")
    if not is_gate_id(gate_part):
        raise BadPayload("gate_reason view without a gate id")
    try:
        gate_id, outcome = int(gate_part), Outcome(outcome_part)
        reason = view["state"]["values"][REASON_INPUT][REASON_INPUT]["value"] or ""
    except (ValueError, KeyError, TypeError):
        raise BadPayload("gate_reason view without gate, outcome or reason") from None
    if not isinstance(reason, str):
        raise BadPayload("reason is not text")
    delivery = delivery_id("slack-view", view.get("id"), view.get("hash"))
    refusal = record(deps, background, gate_id=gate_id, user=payload["user"]["id"], outcome=outcome,
                     reason=reason, delivery_id=delivery, response_url=None)
    if refusal is not None:
        return JSONResponse({"response_action": "errors", "errors": {REASON_INPUT: clip(refusal, 150)}})
    return Response(status_code=200)


def create_app(deps: SlackDeps) -> FastAPI:
    app = FastAPI(title="phasegate Slack endpoint", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/slack/interactions")
    async def interactions(request: Request, background: BackgroundTasks) -> Response:
        body = await read_capped(request)
        if body is None:
            return JSONResponse({"error": "body too large"}, status_code=413)
        if not verify(deps.signing_secret, body, request.headers.get("x-slack-request-timestamp"),
                      request.headers.get("x-slack-signature"), now=deps.clock()):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            payload = parse_payload(body)
            kind = payload.get("type")
            if kind == "block_actions":
                return await run_sync(on_block_action, deps, payload, background)
            if kind == "view_submission":
                return await run_sync(on_view_submission, deps, payload, background)
        except BadPayload as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return Response(status_code=200)

    return app


async def read_capped(request: Request) -> bytes | None:
    """The raw body, or None past MAX_BODY bytes (declared or streamed) without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


async def run_sync(handler: Callable[..., Response], *args: Any) -> Response:
    """Ledger work is blocking; keep it off the event loop."""
    return await run_in_threadpool(handler, *args)

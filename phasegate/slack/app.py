"""The Slack endpoint: `POST /slack/interactions` and `POST /slack/commands`.

Verify, record, answer; everything slow happens after the answer, inside Slack's three seconds for
the answer itself: a modal or an ephemeral reply as a request background task, and the prompt
update and the run's wake-up on threads of their own (phasegate.slack.followups), so that they never
slow the next clicks' answers. The approver is the verified payload's `user.id`; a button's value
only names the gate revision.
Change requests (the slash command, their form and buttons) are handled in `phasegate.slack.change_requests`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from phasegate.changes import operations as cr_operations
from phasegate.configs.schema import Phase
from phasegate.errors import EXPECTED, GateClosed, NotFound, PolicyError, ReasonRequired
from phasegate.gates import answers
from phasegate.integrations.slack_blocks import clip
from phasegate.integrations.slack_chat import SlackChat
from phasegate.ledger import gates
from phasegate.ledger.db import LEDGER_DOWN, transaction
from phasegate.ledger.engagements import attest, attestations, config_of, get
from phasegate.messages import gates as messages
from phasegate.messages.ids import REASON_INPUT, Action, View, parse_action_id, parse_attest_value
from phasegate.slack import change_requests as slack_cr
from phasegate.slack.followups import Followups
from phasegate.slack.payloads import (
    BadPayload,
    BodyRefused,
    delivery_id,
    is_gate_id,
    parse_payload,
    read_capped,
    response_url_of,
)
from phasegate.slack.signature import verify
from phasegate.states import Outcome, Via

log = logging.getLogger("phasegate.slack")
NOT_RECORDED = "Not recorded: the ledger is unavailable, please click again in a minute."


@dataclass
class SlackDeps:
    signing_secret: str
    sessions: sessionmaker[Session]
    chat: SlackChat
    resume: Callable[[str], object]
    clock: Callable[[], float] = field(default=time.time)
    start_change_request: Callable[[str, int], object] = field(default=cr_operations.start_flow)
    followups: Followups = field(default_factory=Followups)  # after-answer work, off the answering path


def after_answer(deps: SlackDeps, gate_id: int, decided: bool, user: str, response_url: str | None) -> None:
    """Runs after Slack has its answer: the shared step, with its problems logged (the clicker's
    answer is recorded either way). A decision whose run could not be woken, Prefect being down, is
    said to the clicker alone: recorded, and acted on when the orchestrator is back."""
    done = answers.after_answer(deps.sessions, deps.chat, gate_id, decided=decided, wake=deps.resume)
    for problem in done.problems:
        log.warning("gate %s: %s", gate_id, problem)
    if not done.orchestrator_down:
        return
    if response_url:
        tell(deps, response_url, answers.RECORDED_NEXT_STEP_LATER)
        return
    with transaction(deps.sessions, write=False) as session:
        channel = gates.by_id(session, gate_id).channel
    try:
        deps.chat.ephemeral(channel, user, answers.RECORDED_NEXT_STEP_LATER)
    except EXPECTED as exc:
        log.warning("could not answer the approver: %s", exc)


def tell(deps: SlackDeps, response_url: str | None, text: str) -> None:
    if response_url:
        try:
            deps.chat.respond(response_url, text)
        except EXPECTED as exc:
            log.warning("could not answer the clicker: %s", exc)


def record(deps: SlackDeps, background: BackgroundTasks, *, gate_id: int, user: str, outcome: Outcome,
           reason: str, delivery_id: str, response_url: str | None) -> str | None:
    """Record the answer in one write transaction; the refusal text if the policy refused it.
    ReasonRequired propagates: the caller asks for the reason instead of refusing."""
    try:
        with transaction(deps.sessions) as session:
            result = gates.answer(session, gate_id, approver=user, outcome=outcome, reason=reason,
                                  via=Via.SLACK, delivery_id=delivery_id)
    except GateClosed as exc:
        background.add_task(tell, deps, response_url, str(exc))
        return str(exc)
    except ReasonRequired:
        raise
    except (PolicyError, NotFound) as exc:
        background.add_task(tell, deps, response_url, f"Not recorded: {exc}")
        return str(exc)
    if result.recorded:
        # answers pending on one gate make one follow-up: the last one's, which decides if any did
        deps.followups.submit(("gate", gate_id),
                              lambda decided: after_answer(deps, gate_id, decided, user, response_url),
                              result.decided is not None)
    return None


def on_block_action(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks) -> Response:
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise BadPayload("block_actions without actions")
    action = actions[0]
    parsed, value = parse_action_id(str(action.get("action_id", ""))), str(action.get("value", ""))
    if parsed is not None and parsed.action is Action.ATTEST:
        return on_attest(deps, payload, parsed.argument, value, background)
    if parsed is not None and parsed.action is Action.CHANGE:
        delivery = delivery_id("slack-cr", value, payload["user"]["id"], action.get("action_ts"))
        return slack_cr.on_action(deps, payload, parsed.argument, value, background, delivery)
    if parsed is None or parsed.action is not Action.GATE or not is_gate_id(value):
        return Response(status_code=200)  # not one of ours; nothing to do
    try:
        outcome = Outcome(parsed.argument)
    except ValueError:
        raise BadPayload(f"unknown gate action {parsed.argument!r}") from None
    gate_id, user = int(value), payload["user"]["id"]
    response_url = response_url_of(payload)
    if outcome.needs_reason:  # NO-GO, EXTEND, NOT YET: the form asks why, unless the answer is refused anyway
        refusal = precheck(deps, gate_id, user, outcome)
        if refusal is not None:
            background.add_task(tell, deps, response_url, refusal)
        else:
            ask_reason(deps, payload, gate_id, outcome, background)
        return Response(status_code=200)
    delivery = delivery_id("slack", gate_id, user, action.get("action_ts"))
    try:  # GO, ACCEPT: recorded at once, in one transaction, unless exit criteria fail
        record(deps, background, gate_id=gate_id, user=user, outcome=outcome, reason="", delivery_id=delivery,
               response_url=response_url)
    except ReasonRequired:  # ... and then the form asks for the written waiver
        ask_reason(deps, payload, gate_id, outcome, background)
    return Response(status_code=200)


def ask_reason(deps: SlackDeps, payload: dict[str, Any], gate_id: int, outcome: Outcome,
               background: BackgroundTasks) -> None:
    """Open the modal that asks for the reason (or, for GO and ACCEPT, the waiver) of this answer."""
    trigger = payload.get("trigger_id")
    if isinstance(trigger, str):
        view = messages.reason_modal(gate_id=gate_id, outcome=outcome, gate_title=f"gate {gate_id}",
                                     waiver=outcome.passes)
        background.add_task(open_modal, deps, trigger, view, response_url_of(payload))


def on_attest(deps: SlackDeps, payload: dict[str, Any], milestone: str, value: str,
              background: BackgroundTasks) -> Response:
    """A milestone attested from its button on a phase's kickoff message, by the verified user."""
    user = payload["user"]["id"]
    response_url = response_url_of(payload)
    engagement_id, phase_name = parse_attest_value(value)
    try:
        phase = Phase(phase_name)
    except ValueError:
        raise BadPayload(f"attest button for an unknown phase {phase_name!r}") from None
    try:
        with transaction(deps.sessions) as session:
            engagement = config_of(get(session, engagement_id))
            previous = attestations(session, engagement_id, phase).get(milestone)
            if previous is not None and previous[0] == user:
                background.add_task(tell, deps, response_url, f"You already attested {milestone}.")
                return Response(status_code=200)
            attest(session, engagement, phase, milestone, by=user, note="attested in Slack", via=Via.SLACK)
    except (PolicyError, NotFound) as exc:
        background.add_task(tell, deps, response_url, f"Not recorded: {exc}")
        return Response(status_code=200)
    background.add_task(tell, deps, response_url, f"Recorded: <@{user}> attested {milestone}.")
    return Response(status_code=200)


def precheck(deps: SlackDeps, gate_id: int, user: str, outcome: Outcome) -> str | None:
    """The refusal, if the answer could never be recorded, before its reason is asked for."""
    try:
        with transaction(deps.sessions, write=False) as session:
            gate = gates.by_id(session, gate_id)
            gates.check(session, gate, config_of(get(session, gate.engagement_id)), approver=user,
                        outcome=outcome, reason="(to be given)", via=Via.SLACK)
            return None
    except GateClosed as exc:
        return str(exc)
    except (PolicyError, NotFound) as exc:
        return f"Not recorded: {exc}"


def open_modal(deps: SlackDeps, trigger_id: str, view: dict[str, Any], response_url: str | None) -> None:
    try:
        deps.chat.open_modal(trigger_id, view)
    except EXPECTED as exc:
        tell(deps, response_url, f"Could not open the reason form ({exc}); use `phasegate gate decide` instead.")


def on_view_submission(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks) -> Response:
    view = payload.get("view")
    if isinstance(view, dict) and view.get("callback_id") in slack_cr.VIEWS:
        delivery = delivery_id("slack-view", view.get("id"), view.get("hash"))
        return slack_cr.VIEWS[str(view["callback_id"])](deps, payload, view, background, delivery)
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
    try:
        refusal = record(deps, background, gate_id=gate_id, user=payload["user"]["id"], outcome=outcome,
                         reason=reason, delivery_id=delivery, response_url=None)
    except ReasonRequired as exc:  # a reason of blanks only: the form stays open and says so
        refusal = str(exc)
    if refusal is not None:
        return JSONResponse({"response_action": "errors", "errors": {REASON_INPUT: clip(refusal, 150)}})
    return Response(status_code=200)


def create_app(deps: SlackDeps) -> FastAPI:
    app = FastAPI(title="phasegate Slack endpoint", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> Response:
        """200 when the ledger answers; 503 naming the ledger when it does not (a load balancer or
        `curl` sees at once why clicks are refused)."""
        try:
            with deps.sessions() as session:
                session.execute(text("SELECT 1"))
        except LEDGER_DOWN as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return JSONResponse({"status": "unavailable", "ledger": f"unreachable: {reason}"}, status_code=503)
        return JSONResponse({"status": "ok", "ledger": "ok"})

    @app.post("/slack/commands")
    async def commands(request: Request, background: BackgroundTasks) -> Response:
        body, refusal = await verified_body(deps, request)
        if refusal is not None:
            return refusal
        try:
            return await run_sync(slack_cr.on_command, deps, body, background)
        except LEDGER_DOWN as exc:
            log.warning("slash command not recorded, the ledger is unavailable: %s", exc)
            return JSONResponse({"response_type": "ephemeral", "text": NOT_RECORDED})

    @app.post("/slack/interactions")
    async def interactions(request: Request, background: BackgroundTasks) -> Response:
        body, refusal = await verified_body(deps, request)
        if refusal is not None:
            return refusal
        try:
            payload = parse_payload(body)
        except BadPayload as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return await run_sync(on_interaction, deps, payload, background)

    return app


def ledger_down(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks, exc: Exception) -> Response:
    """Nothing was recorded (the transaction never committed): say so to the clicker alone, in time,
    instead of the generic error Slack shows for a 500. A form keeps its input and shows the text."""
    log.warning("%s not recorded, the ledger is unavailable: %s", payload.get("type"), exc)
    if payload.get("type") == "view_submission":
        return JSONResponse({"response_action": "errors", "errors": {REASON_INPUT: NOT_RECORDED}})
    background.add_task(tell, deps, response_url_of(payload), NOT_RECORDED)
    return Response(status_code=200)


def on_interaction(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks) -> Response:
    """An interaction payload, however it arrived (the HTTP endpoint, Socket Mode): the answer to give."""
    try:
        kind = payload.get("type")
        if kind == "block_actions":
            return on_block_action(deps, payload, background)
        if kind == "view_submission":
            return on_view_submission(deps, payload, background)
    except BadPayload as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    except LEDGER_DOWN as exc:
        return ledger_down(deps, payload, background, exc)
    return Response(status_code=200)


async def verified_body(deps: SlackDeps, request: Request) -> tuple[bytes, Response | None]:
    """The raw body if it is Slack's (whole, signed, fresh, not oversized); else the refusal to send."""
    try:
        body = await read_capped(request)
    except BodyRefused as exc:
        return b"", JSONResponse({"error": str(exc)}, status_code=exc.status)
    if not verify(deps.signing_secret, body, request.headers.get("x-slack-request-timestamp"),
                  request.headers.get("x-slack-signature"), now=deps.clock()):
        return b"", JSONResponse({"error": "invalid signature"}, status_code=401)
    return body, None


async def run_sync(handler: Callable[..., Response], *args: Any) -> Response:
    """Ledger work is blocking; keep it off the event loop."""
    return await run_in_threadpool(handler, *args)

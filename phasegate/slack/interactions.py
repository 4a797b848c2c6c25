"""An interaction payload routed to its handler: gate buttons and forms to `phasegate.slack.gates`,
change-request buttons and forms to `phasegate.slack.change_requests`.

Used by both entry points, the HTTP endpoint (`phasegate.slack.app`) and Socket Mode
(`phasegate.slack.socket`), so that a click is answered the same way however it arrived.
"""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, Response
from fastapi.responses import JSONResponse

from phasegate.ledger.db import LEDGER_DOWN
from phasegate.messages.ids import REASON_INPUT, Action, View, parse_action_id
from phasegate.slack import change_requests as slack_cr
from phasegate.slack import gates as slack_gates
from phasegate.slack.deps import NOT_RECORDED, SlackDeps, log, tell
from phasegate.slack.payloads import BadPayload, delivery_id, response_url_of


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


def on_block_action(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks) -> Response:
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise BadPayload("block_actions without actions")
    action = actions[0]
    parsed, value = parse_action_id(str(action.get("action_id", ""))), str(action.get("value", ""))
    if parsed is not None and parsed.action is Action.ATTEST:
        return slack_gates.on_attest(deps, payload, parsed.argument, value, background)
    if parsed is not None and parsed.action is Action.CHANGE:
        delivery = delivery_id("slack-cr", value, payload["user"]["id"], action.get("action_ts"))
        return slack_cr.on_action(deps, payload, parsed.argument, value, background, delivery)
    if parsed is None or parsed.action is not Action.GATE:
        return Response(status_code=200)  # not one of ours; nothing to do
    return slack_gates.on_action(deps, payload, parsed.argument, value, action.get("action_ts"), background)


def on_view_submission(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks) -> Response:
    view = payload.get("view")
    if isinstance(view, dict) and view.get("callback_id") in slack_cr.VIEWS:
        delivery = delivery_id("slack-view", view.get("id"), view.get("hash"))
        return slack_cr.VIEWS[str(view["callback_id"])](deps, payload, view, background, delivery)
    if not isinstance(view, dict) or view.get("callback_id") != View.GATE_REASON.value:
        return Response(status_code=200)
    return slack_gates.on_reason(deps, payload, view, background)


def ledger_down(deps: SlackDeps, payload: dict[str, Any], background: BackgroundTasks, exc: Exception) -> Response:
    """Nothing was recorded (the transaction never committed): say so to the clicker alone, in time,
    instead of the generic error Slack shows for a 500. A form keeps its input and shows the text."""
    log.warning("%s not recorded, the ledger is unavailable: %s", payload.get("type"), exc)
    if payload.get("type") == "view_submission":
        return JSONResponse({"response_action": "errors", "errors": {REASON_INPUT: NOT_RECORDED}})
    background.add_task(tell, deps, response_url_of(payload), NOT_RECORDED)
    return Response(status_code=200)

"""Change requests in Slack: the `/phasegate cr ENGAGEMENT` slash command, the form it opens, and
the Approve / Reject buttons on a request's prompt.

Buttons and forms are routed here from `phasegate.slack.interactions`, the slash command from the
entry points (`phasegate.slack.app`, `phasegate.slack.socket`), once the request is verified. The
same rule holds as for gates: verify, record, answer; opening modals, redrawing prompts and starting
or waking flow runs happen after the answer. A command that cannot be served (unknown engagement, the
wrong channel, an engagement not running) is answered ephemerally and writes nothing.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from fastapi import BackgroundTasks, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from phasegate.changes import operations as cr_operations
from phasegate.errors import EXPECTED, GateClosed, InvalidRequest, NotFound, PolicyError
from phasegate.integrations.slack_blocks import clip
from phasegate.ledger import change_decisions
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.ledger.models import WeeklyReportRow
from phasegate.messages import changes as cr_messages
from phasegate.messages import refusals
from phasegate.messages.ids import DRAFT_DRIFT, REASON_INPUT, CrField, View
from phasegate.rules import drift
from phasegate.slack.deps import SlackDeps, tell
from phasegate.states import ChangeSource, EngagementState, Outcome, ReportKind, Via
from phasegate.text import literal

log = logging.getLogger("phasegate.slack")
USAGE = "Usage: `/phasegate cr ENGAGEMENT` opens a change-request form for that engagement."


def ephemeral(text: str) -> Response:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def on_command(deps: SlackDeps, body: bytes, background: BackgroundTasks) -> Response:
    """`/phasegate cr ENGAGEMENT`, only from the engagement's own channel."""
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
    except UnicodeDecodeError:
        return JSONResponse({"error": "expected a form-encoded slash command"}, status_code=400)
    words = form.get("text", "").split()
    if len(words) != 2 or words[0] != "cr":
        return ephemeral(USAGE)
    engagement_id, channel, trigger = words[1], form.get("channel_id", ""), form.get("trigger_id", "")
    try:
        with transaction(deps.sessions) as session:
            row = get(session, engagement_id)
            engagement, state, phase = config_of(row), row.state, row.current_phase
    except NotFound:
        return ephemeral(f"There is no engagement `{literal(clip(engagement_id, 64))}`; nothing was filed.")
    if channel != engagement.slack_channel:
        return ephemeral(f"Change requests for `{literal(engagement_id)}` are filed in its channel "
                         f"<#{engagement.slack_channel}>, not here; nothing was filed.")
    if state is not EngagementState.ACTIVE or phase is None:
        return ephemeral(f"`{literal(engagement_id)}` is {state.value}; change requests are for running engagements.")
    if not trigger:
        return JSONResponse({"error": "slash command without trigger_id"}, status_code=400)
    background.add_task(open_form, deps, trigger, cr_messages.form(engagement, phase), form.get("response_url"))
    return Response(status_code=200)


def open_form(deps: SlackDeps, trigger_id: str, view: dict[str, Any], response_url: str | None) -> None:
    try:
        deps.chat.open_modal(trigger_id, view)
    except EXPECTED as exc:
        if response_url:
            try:
                deps.chat.respond(response_url, f"Could not open the form ({literal(str(exc))}); use `phasegate cr submit`.")
            except EXPECTED:
                log.warning("could not tell the user the form failed: %s", exc)


def field_errors(exc: InvalidRequest) -> Response:
    """Each problem next to its input; problems about no input of the form go on the title."""
    fields = {f.value for f in CrField}
    errors: dict[str, str] = {}
    for name, reason in exc.problems.items():
        key = name if name in fields else CrField.TITLE.value
        errors[key] = clip(f"{errors[key]}; {reason}" if key in errors else reason, 150)
    return JSONResponse({"response_action": "errors", "errors": errors})


def on_submit(deps: SlackDeps, payload: dict[str, Any], view: dict[str, Any], background: BackgroundTasks,
              delivery: str) -> Response:
    """The filled-in form: filed and assessed now, its flow started after the answer."""
    engagement_id = str(view.get("private_metadata", ""))
    values = (view.get("state") or {}).get("values") or {}
    try:
        draft = cr_messages.draft_from_form(values if isinstance(values, dict) else {})
        filed = cr_operations.file(deps.sessions, engagement_id, draft, requested_by=payload["user"]["id"],
                                   source=ChangeSource.SLACK, delivery_id=delivery)
    except InvalidRequest as exc:
        return field_errors(exc)
    except (PolicyError, NotFound) as exc:
        return JSONResponse({"response_action": "errors", "errors": {CrField.TITLE.value: clip(str(exc), 150)}})
    if filed.created:
        background.add_task(start_flow, deps, engagement_id, filed.number)
    return Response(status_code=200)


def start_flow(deps: SlackDeps, engagement_id: str, number: int) -> None:
    try:
        deps.start_change_request(engagement_id, number)
    except EXPECTED as exc:
        log.warning("%s CR-%s is filed but its flow did not start: %s", engagement_id, number, exc)


def on_action(deps: SlackDeps, payload: dict[str, Any], argument: str, value: str,
              background: BackgroundTasks, delivery: str) -> Response:
    """Approve records at once; Reject first asks for the reason in a modal; Draft change request
    (on a weekly report's scope drift) opens the form pre-filled."""
    if argument == DRAFT_DRIFT:
        return on_draft_drift(deps, payload, value, background)
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        return Response(status_code=200)
    try:
        outcome = Outcome(argument)
    except ValueError:
        return Response(status_code=200)
    cr_id, user = int(value), payload["user"]["id"]
    response_url = payload.get("response_url") if isinstance(payload.get("response_url"), str) else None
    if outcome is Outcome.REJECT:
        refusal = precheck(deps, cr_id, user, outcome)
        trigger = payload.get("trigger_id")
        if refusal is not None:
            background.add_task(tell, deps, response_url, refusal)
        elif isinstance(trigger, str):
            with transaction(deps.sessions) as session:
                number = crs.by_id(session, cr_id).number
            background.add_task(open_form, deps, trigger, cr_messages.reason_modal(cr_id, number), response_url)
        return Response(status_code=200)
    refusal = record(deps, cr_id=cr_id, user=user, outcome=outcome, reason="", delivery=delivery)
    if refusal is not None:
        background.add_task(tell, deps, response_url, refusal)
    return Response(status_code=200)


def on_draft_drift(deps: SlackDeps, payload: dict[str, Any], engagement_id: str,
                   background: BackgroundTasks) -> Response:
    """The form pre-filled with the drift the engagement's latest weekly report found (read from the
    ledger, not from Jira: the form has to open within Slack's three seconds)."""
    trigger = payload.get("trigger_id")
    response_url = payload.get("response_url") if isinstance(payload.get("response_url"), str) else None
    if not isinstance(trigger, str) or len(engagement_id) > 64:
        return Response(status_code=200)
    try:
        with transaction(deps.sessions) as session:
            row = get(session, engagement_id)
            engagement, phase = config_of(row), row.current_phase
            body = session.scalar(select(WeeklyReportRow.body).where(
                WeeklyReportRow.kind == ReportKind.ENGAGEMENT, WeeklyReportRow.subject == engagement_id)
                .order_by(WeeklyReportRow.week.desc()).limit(1))
    except NotFound:
        return Response(status_code=200)
    found = (body or {}).get("change_requests", {}).get("drift_issues") or []
    if row.state is not EngagementState.ACTIVE or phase is None or (body or {}).get("phase") != phase.value:
        background.add_task(tell, deps, response_url, f"`{engagement_id}` has no running phase with drift to draft.")
    elif not found:
        background.add_task(tell, deps, response_url, f"`{engagement_id}`'s latest report found no scope drift.")
    else:
        items = [drift.DriftItem(str(i["key"]), str(i.get("summary", "")), str(i["milestone"])) for i in found]
        draft = drift.draft(drift.Drift(engagement_id, phase, items))
        background.add_task(open_form, deps, trigger, cr_messages.form(engagement, phase, draft), response_url)
    return Response(status_code=200)


def on_reason(deps: SlackDeps, payload: dict[str, Any], view: dict[str, Any], background: BackgroundTasks,
              delivery: str) -> Response:
    cr_part, _, outcome_part = str(view.get("private_metadata", "")).partition(":")
    try:
        cr_id, outcome = int(cr_part), Outcome(outcome_part)
        reason = view["state"]["values"][REASON_INPUT][REASON_INPUT]["value"] or ""
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "cr_reason view without request, outcome or reason"}, status_code=400)
    refusal = record(deps, cr_id=cr_id, user=payload["user"]["id"], outcome=outcome,
                     reason=str(reason), delivery=delivery)
    if refusal is not None:
        return JSONResponse({"response_action": "errors", "errors": {REASON_INPUT: clip(refusal, 150)}})
    return Response(status_code=200)


def precheck(deps: SlackDeps, cr_id: int, user: str, outcome: Outcome) -> str | None:
    try:
        with transaction(deps.sessions) as session:
            cr = crs.by_id(session, cr_id)
            change_decisions.check(session, cr, config_of(get(session, cr.engagement_id)), approver=user,
                                   outcome=outcome, reason="(to be given)")
    except GateClosed as exc:
        return refusals.render(exc)
    except (PolicyError, NotFound) as exc:
        return refusals.render(exc, "Not recorded: ")
    return None


def record(deps: SlackDeps, *, cr_id: int, user: str, outcome: Outcome, reason: str,
           delivery: str) -> str | None:
    """Record the answer; the refusal text if the policy refused it."""
    try:
        with transaction(deps.sessions) as session:
            result = change_decisions.answer(session, cr_id, approver=user, outcome=outcome, reason=reason,
                                             via=Via.SLACK, delivery_id=delivery)
    except GateClosed as exc:
        return refusals.render(exc)
    except (PolicyError, NotFound) as exc:
        return refusals.render(exc, "Not recorded: ")
    if result.recorded:
        deps.followups.submit(("change request", cr_id), lambda decided: after_answer(deps, cr_id, decided),
                              result.decided is not None)
    return None


def after_answer(deps: SlackDeps, cr_id: int, decided: bool) -> None:
    try:
        cr_messages.refresh(deps.after_sessions, deps.chat, cr_id)
    except EXPECTED as exc:
        log.warning("could not update the prompt of change request %s: %s", cr_id, exc)
    if decided:
        with transaction(deps.after_sessions, write=False) as session:
            run = crs.by_id(session, cr_id).flow_run_id
        if run:
            try:
                deps.resume(run)
            except EXPECTED as exc:  # the gate watch wakes it once Prefect answers again
                log.warning("change request %s: %s", cr_id, exc)


VIEWS = {View.CR_SUBMIT.value: on_submit, View.CR_REASON.value: on_reason}

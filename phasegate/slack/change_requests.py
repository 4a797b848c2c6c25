"""Change requests in Slack: the `/phasegate cr ENGAGEMENT` slash command, the form it opens, and
the Approve / Reject buttons on a request's prompt.

Routed here from `phasegate.slack.interactions` once `phasegate.slack.inbound` has read the request
(shape, identity). Here: may they (a request is filed from its engagement's own channel,
`phasegate.slack.channels`, for the command, the form and the weekly report's "Draft change request" button
alike; answers under the change policy, in the ledger), are the values valid (the form's fields by
`phasegate.rules.change_fields`, as from the CLI), record, answer. Opening modals, redrawing prompts
and starting or waking flow runs happen after the answer. A command that cannot be served (unknown
engagement, the wrong channel, an engagement not running) is answered ephemerally and writes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import BackgroundTasks, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from phasegate.changes import operations as cr_operations
from phasegate.configs.schema_base import IDENT
from phasegate.errors import EXPECTED, GateClosed, InvalidRequest, NotFound, PolicyError
from phasegate.integrations.slack_blocks import clip
from phasegate.ledger import change_decisions
from phasegate.ledger import change_requests as crs
from phasegate.ledger.db import on_commit, transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.ledger.models import WeeklyReportRow
from phasegate.messages import changes as cr_messages
from phasegate.messages import refusals
from phasegate.messages.ids import DRAFT_DRIFT, REASON_INPUT, CrField, parse_form_metadata
from phasegate.rules import drift
from phasegate.rules.change_fields import draft_from_fields
from phasegate.slack.channels import FILING, in_its_channel, wrong_channel
from phasegate.slack.deps import SlackDeps, tell
from phasegate.slack.inbound import Click, Command, Submission, reason_form, row_id
from phasegate.slack.payloads import delivery_id
from phasegate.states import ChangeSource, EngagementState, Outcome, ReportKind, Via
from phasegate.text import literal

log = logging.getLogger("phasegate.slack")
USAGE = ("Usage: `/phasegate cr ENGAGEMENT` opens a change-request form for that engagement; "
         "`/phasegate team ENGAGEMENT` shows or changes the vendor's team; "
         "`/phasegate check ENGAGEMENT CHECK` confirms a running check.")


def ephemeral(text: str) -> Response:
    return JSONResponse({"response_type": "ephemeral", "text": text})


def on_command(deps: SlackDeps, command: Command, background: BackgroundTasks) -> Response:
    """`/phasegate cr ENGAGEMENT`, only from the engagement's own channel."""
    words = command.text.split()
    if len(words) != 2 or words[0] != "cr":
        return ephemeral(USAGE)
    found = in_its_channel(deps.sessions, words[1], command.channel, FILING)
    if isinstance(found, str):
        return ephemeral(found)
    if found.state is not EngagementState.ACTIVE or found.phase is None:
        return ephemeral(f"`{literal(found.engagement.id)}` is {found.state.value}; change requests are for running "
                         "engagements.")
    if command.trigger_id is None:
        return JSONResponse({"error": "slash command without trigger_id"}, status_code=400)
    form = cr_messages.form(found.engagement, found.phase, channel=command.channel)
    background.add_task(open_form, deps, command.trigger_id, form, command.response_url)
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


def title_error(text: str) -> Response:
    return JSONResponse({"response_action": "errors", "errors": {CrField.TITLE.value: clip(text, 150)}})


def on_submit(deps: SlackDeps, submission: Submission, background: BackgroundTasks) -> Response:
    """The filled-in form: filed and assessed now, its flow started after the answer."""
    engagement_id, channel = parse_form_metadata(submission.metadata)
    delivery = delivery_id("slack-view", submission.view_id, submission.view_hash)
    try:
        with transaction(deps.sessions, write=False) as session:
            engagement = config_of(get(session, engagement_id))
        if channel is None:  # opened before forms named their channel
            return title_error(f"This form does not say which channel it was opened in; open it again with "
                               f"/phasegate cr {engagement_id} in the engagement's channel. Nothing was filed.")
        refusal = wrong_channel(engagement, channel, FILING)
        if refusal is not None:
            return title_error(refusal)
        draft = draft_from_fields({f.value: submission.fields.get(f.value) for f in CrField})
        filed = cr_operations.file(deps.sessions, engagement_id, draft, requested_by=submission.user,
                                   source=ChangeSource.SLACK, delivery_id=delivery)
    except InvalidRequest as exc:
        return field_errors(exc)
    except (PolicyError, NotFound) as exc:
        return title_error(str(exc))
    if filed.created:
        background.add_task(start_flow, deps, engagement_id, filed.number)
    return Response(status_code=200)


def start_flow(deps: SlackDeps, engagement_id: str, number: int) -> None:
    try:
        deps.start_change_request(engagement_id, number)
    except EXPECTED as exc:
        log.warning("%s CR-%s is filed but its flow did not start: %s", engagement_id, number, exc)


def on_action(deps: SlackDeps, click: Click, argument: str, background: BackgroundTasks) -> Response:
    """Approve records at once; Reject first asks for the reason in a modal; Draft change request
    (on a weekly report's scope drift) opens the form pre-filled."""
    if argument == DRAFT_DRIFT:
        return on_draft_drift(deps, click, background)
    cr_id = row_id(click.value)
    if cr_id is None:
        return Response(status_code=200)  # not one of ours; nothing to do
    try:
        outcome = Outcome(argument)
    except ValueError:
        return Response(status_code=200)
    user, response_url = click.user, click.response_url
    superseded = earlier_revision(deps, cr_id, click.message_ts)
    if superseded is not None:
        background.add_task(tell, deps, response_url, superseded)
        return Response(status_code=200)
    if outcome is Outcome.REJECT:
        refusal = precheck(deps, cr_id, user, outcome)
        if refusal is not None:
            background.add_task(tell, deps, response_url, refusal)
        elif click.trigger_id is not None:
            with transaction(deps.sessions, write=False) as session:
                number = crs.by_id(session, cr_id).number
            background.add_task(open_form, deps, click.trigger_id, cr_messages.reason_modal(cr_id, number),
                                response_url)
        return Response(status_code=200)
    delivery = delivery_id("slack-cr", click.value, user, click.action_ts)
    refusal = record(deps, cr_id=cr_id, user=user, outcome=outcome, reason="", delivery=delivery)
    if refusal is not None:
        background.add_task(tell, deps, response_url, refusal)
    return Response(status_code=200)


def on_draft_drift(deps: SlackDeps, click: Click, background: BackgroundTasks) -> Response:
    """The form pre-filled with the drift the engagement's latest weekly report found (read from the
    ledger, not from Jira: the form has to open within Slack's three seconds)."""
    engagement_id, trigger, response_url = click.value, click.trigger_id, click.response_url
    if trigger is None or not IDENT.fullmatch(engagement_id):
        return Response(status_code=200)
    try:
        with transaction(deps.sessions, write=False) as session:
            row = get(session, engagement_id)
            engagement, phase = config_of(row), row.current_phase
            body = session.scalar(select(WeeklyReportRow.body).where(
                WeeklyReportRow.kind == ReportKind.ENGAGEMENT, WeeklyReportRow.subject == engagement_id)
                .order_by(WeeklyReportRow.week.desc()).limit(1))
    except NotFound:
        return Response(status_code=200)
    kept = (body or {}).get("change_requests", {})
    found, left = kept.get("drift_issues") or [], kept.get("drift_left") or []  # reports before left ones: none
    refusal = wrong_channel(engagement, click.channel, FILING)
    if refusal is not None:
        background.add_task(tell, deps, response_url, refusal)
    elif row.state is not EngagementState.ACTIVE or phase is None or (body or {}).get("phase") != phase.value:
        background.add_task(tell, deps, response_url, f"`{engagement_id}` has no running phase with drift to draft.")
    elif not found and not left:
        background.add_task(tell, deps, response_url, f"`{engagement_id}`'s latest report found no scope drift.")
    else:
        def items(kept_issues: list[dict[str, object]]) -> list[drift.DriftItem]:
            return [drift.DriftItem(str(i["key"]), str(i.get("summary", "")), str(i["milestone"]))
                    for i in kept_issues]

        total = kept.get("drift_count")  # the report keeps the first 25 of each
        draft = drift.draft(drift.Drift(engagement_id, phase, items(found), left=items(left)),
                            total if isinstance(total, int) else None)
        form = cr_messages.form(engagement, phase, draft, channel=engagement.slack_channel)
        background.add_task(open_form, deps, trigger, form, response_url)
    return Response(status_code=200)


def on_reason(deps: SlackDeps, submission: Submission, background: BackgroundTasks) -> Response:
    form = reason_form(submission, "cr_reason", "a change request id")
    refusal = record(deps, cr_id=form.row, user=submission.user, outcome=form.outcome, reason=form.text,
                     delivery=form.delivery)
    if refusal is not None:
        return JSONResponse({"response_action": "errors", "errors": {REASON_INPUT: clip(refusal, 150)}})
    return Response(status_code=200)


def earlier_revision(deps: SlackDeps, cr_id: int, clicked: str | None) -> str | None:
    """Why a click is not taken when it comes from the prompt of a revision the request has left (its
    Jira issue was edited since): the answer would be to what that prompt no longer shows."""
    if clicked is None:
        return None
    try:
        with transaction(deps.sessions) as session:
            cr = crs.by_id(session, cr_id)
            current, revision, name = cr.message_ts, cr.revision, f"CR-{cr.number}"
    except NotFound:
        return None  # the answer's own refusal says so
    if revision == 1 or clicked == current:
        return None
    where = "in the new prompt" if current else "in a new prompt shortly"
    return (f"Not recorded: this prompt shows an earlier revision of {name}. Its Jira issue changed, and "
            f"revision {revision} is asked {where}.")


def precheck(deps: SlackDeps, cr_id: int, user: str, outcome: Outcome) -> str | None:
    try:
        with transaction(deps.sessions) as session:
            cr = crs.by_id(session, cr_id)
            change_decisions.check(session, cr, config_of(get(session, cr.engagement_id)), approver=user,
                                   outcome=outcome, reason="(to be given)", via=Via.SLACK)
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
    if result.recorded:  # the answer's transaction marked the prompt (and the run, if it decided): once it commits
        on_commit(deps.refresh_soon)
    return None

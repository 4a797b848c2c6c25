"""Gates in Slack: the answer buttons on a gate's prompt, the form that asks for a reason or a
waiver, and the Attest buttons on a phase's kickoff message.

Routed from `phasegate.slack.interactions` once `phasegate.slack.inbound` has read the request
(shape, identity); the gate policy is applied in the ledger, in the transaction that records. Verify,
record, answer: the answer is recorded in one write transaction, which also marks the prompt for a
redraw and, if the answer decided, the run for a wake (phasegate.ledger.followups); opening the form
and answering the clicker are request background tasks, and the redraw and the wake are done by the
refresher (phasegate.gates.refresher), in production a process of its own. The approver is the verified payload's `user.id`; a button's value only
names the gate revision.
"""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from phasegate.configs.schema import Phase
from phasegate.errors import EXPECTED, GateClosed, NotFound, PolicyError, ReasonRequired
from phasegate.integrations.slack_blocks import clip
from phasegate.ledger import followups, gates
from phasegate.ledger.db import on_commit, transaction
from phasegate.ledger.engagements import attest, config_of, get
from phasegate.messages import gates as messages
from phasegate.messages import refusals
from phasegate.messages.ids import REASON_INPUT, Action, parse_attest_value
from phasegate.slack.deps import SlackDeps, log, tell
from phasegate.slack.inbound import Click, Refused, Submission, reason_form, row_id
from phasegate.slack.payloads import delivery_id
from phasegate.states import Outcome, Prompt, Via
from phasegate.text import literal


def after_late_commit(deps: SlackDeps) -> None:
    """An answer whose COMMIT was confirmed only later (phasegate.slack.unconfirmed): its mark was
    committed with it, so the refresher redraws the prompt and, if the gate is decided, wakes the run."""
    deps.refresh_soon()


def record(deps: SlackDeps, background: BackgroundTasks, *, gate_id: int, user: str, outcome: Outcome,
           reason: str, delivery_id: str, response_url: str | None) -> str | None:
    """Record the answer in one write transaction; the refusal text if the policy refused it.
    ReasonRequired propagates: the caller asks for the reason instead of refusing."""
    try:
        with transaction(deps.sessions) as session:
            result = gates.answer(session, gate_id, approver=user, outcome=outcome, reason=reason,
                                  via=Via.SLACK, delivery_id=delivery_id)
    except GateClosed as exc:
        background.add_task(tell, deps, response_url, refusals.render(exc))
        background.add_task(redraw, deps, gate_id)
        return str(exc)
    except ReasonRequired:
        raise
    except (PolicyError, NotFound) as exc:
        background.add_task(tell, deps, response_url, refusals.render(exc, "Not recorded: "))
        return str(exc)
    if result.recorded:  # the answer's transaction marked the prompt (and the run, if it decided): once it commits
        on_commit(deps.refresh_soon)
    return None


def redraw(deps: SlackDeps, gate_id: int) -> None:
    """A click on a gate that takes no more answers: its prompt still showed buttons (a timeout decided
    it, or it was drawn before the deciding answer and not since), so it is marked for the refresher
    to draw again from the ledger. After the answer; a ledger that refuses the mark is logged."""
    try:
        with transaction(deps.after_sessions) as session:
            followups.mark(session, Prompt.GATE, gate_id)
    except SQLAlchemyError as exc:
        log.warning("gate %s: could not mark its prompt for a redraw: %s", gate_id, exc)
        return
    deps.refresh_soon()


def hint(request: Click | Submission | None) -> tuple[int, str] | None:
    """The gate and delivery id a click will record its answer under, if it is a GO or ACCEPT button
    (`on_action`): its group reads them with its others before any handler runs
    (phasegate.ledger.gates.prefetch). Only a hint: an answer recorded under anything else reads
    for itself."""
    if not isinstance(request, Click) or request.action is None or request.action.action in (Action.ATTEST, Action.CHANGE):
        return None
    try:
        button = answer_button(request, request.action.argument)
    except Refused:
        return None
    if button is None or button[1].needs_reason:
        return None
    return button[0], delivery_of(request, button[0])


def answer_button(click: Click, argument: str) -> tuple[int, Outcome] | None:
    """What a gate's answer button says: the gate revision in its value, the outcome `argument` names;
    None when the value names no gate of ours. Refused: an outcome phasegate does not know."""
    gate_id = row_id(click.value)
    if gate_id is None:
        return None
    try:
        return gate_id, Outcome(argument)
    except ValueError:
        raise Refused(f"unknown gate action {argument!r}") from None


def delivery_of(click: Click, gate_id: int) -> str:
    """The key a click's answer is recorded under: Slack delivering the click again is recognised."""
    return delivery_id("slack", gate_id, click.user, click.action_ts)


def on_action(deps: SlackDeps, click: Click, argument: str, background: BackgroundTasks) -> Response:
    """One of a gate's answer buttons: `argument` names the outcome, the value the gate revision."""
    button = answer_button(click, argument)
    if button is None:
        return Response(status_code=200)  # not one of ours; nothing to do
    gate_id, outcome = button
    user, response_url = click.user, click.response_url
    if outcome.needs_reason:  # NO-GO, EXTEND, NOT YET: the form asks why, unless the answer is refused anyway
        refusal = precheck(deps, gate_id, user, outcome, background)
        if refusal is not None:
            background.add_task(tell, deps, response_url, refusal)
        else:
            ask_reason(deps, click, gate_id, outcome, background)
        return Response(status_code=200)
    try:  # GO, ACCEPT: recorded at once, in one transaction, unless exit criteria fail
        record(deps, background, gate_id=gate_id, user=user, outcome=outcome, reason="",
               delivery_id=delivery_of(click, gate_id), response_url=response_url)
    except ReasonRequired as exc:  # ... and then the form asks for the written waiver
        ask_reason(deps, click, gate_id, outcome, background, waives=exc.waives)
    return Response(status_code=200)


def ask_reason(deps: SlackDeps, click: Click, gate_id: int, outcome: Outcome, background: BackgroundTasks,
               waives: str = "") -> None:
    """Open the modal that asks for the reason (or, for GO and ACCEPT, the waiver of what `waives`
    names) of this answer."""
    if click.trigger_id is not None:
        view = messages.reason_modal(gate_id=gate_id, outcome=outcome, gate_title=f"gate {gate_id}", waives=waives)
        background.add_task(open_modal, deps, click.trigger_id, view, click.response_url)


def on_attest(deps: SlackDeps, click: Click, milestone: str, background: BackgroundTasks) -> Response:
    """A milestone attested from its button on a phase's kickoff message, by the verified user."""
    user, response_url = click.user, click.response_url
    engagement_id, phase_name = parse_attest_value(click.value)
    try:
        phase = Phase(phase_name)
    except ValueError:
        raise Refused(f"attest button for an unknown phase {phase_name!r}") from None
    try:
        with transaction(deps.sessions) as session:
            engagement = config_of(get(session, engagement_id))
            recorded = attest(session, engagement, phase, milestone, by=user, note="attested in Slack", via=Via.SLACK)
    except (PolicyError, NotFound) as exc:
        background.add_task(tell, deps, response_url, refusals.render(exc, "Not recorded: "))
        return Response(status_code=200)
    if recorded is None:
        background.add_task(tell, deps, response_url, f"You already attested {literal(milestone)}.")
    else:
        background.add_task(tell, deps, response_url, f"Recorded: <@{user}> attested {literal(milestone)}.")
    return Response(status_code=200)


def precheck(deps: SlackDeps, gate_id: int, user: str, outcome: Outcome, background: BackgroundTasks) -> str | None:
    """The refusal, if the answer could never be recorded, before its reason is asked for."""
    try:
        with transaction(deps.sessions, write=False) as session:
            gates.check(session, gates.ballot(session, gate_id), approver=user, outcome=outcome,
                        reason="(to be given)", via=Via.SLACK)
            return None
    except GateClosed as exc:
        background.add_task(redraw, deps, gate_id)
        return refusals.render(exc)
    except (PolicyError, NotFound) as exc:
        return refusals.render(exc, "Not recorded: ")


def open_modal(deps: SlackDeps, trigger_id: str, view: dict[str, Any], response_url: str | None) -> None:
    try:
        deps.chat.open_modal(trigger_id, view)
    except EXPECTED as exc:
        tell(deps, response_url, f"Could not open the reason form ({literal(str(exc))}); use `phasegate gate decide` "
                                 "instead.")


def on_reason(deps: SlackDeps, submission: Submission, background: BackgroundTasks) -> Response:
    """The filled-in reason (or waiver) form: the answer recorded, or the refusal shown in the form."""
    form = reason_form(submission, "gate_reason", "a gate id")
    try:
        refusal = record(deps, background, gate_id=form.row, user=submission.user, outcome=form.outcome,
                         reason=form.text, delivery_id=form.delivery, response_url=None)
    except ReasonRequired as exc:  # a reason of blanks only: the form stays open and says so
        refusal = str(exc)
    if refusal is not None:
        return JSONResponse({"response_action": "errors", "errors": {REASON_INPUT: clip(refusal, 150)}})
    return Response(status_code=200)

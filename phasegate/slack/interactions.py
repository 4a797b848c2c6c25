"""The router both entry points hand every request to (the HTTP endpoint, `phasegate.slack.app`; Socket
Mode, `phasegate.slack.socket`), so that a click, a form or a slash command is answered the same way
however it arrived: read through `phasegate.slack.inbound` (shape, identity), routed to its handler
(gate buttons and forms to `phasegate.slack.gates`, change-request ones and the slash command to
`phasegate.slack.change_requests`: policy, values, record), and each refusal turned into the answer
Slack expects.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

from fastapi import BackgroundTasks, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from phasegate.ledger import faults
from phasegate.ledger.db import busy_patience
from phasegate.ledger.writers import DEADLINE, busy
from phasegate.messages.ids import REASON_INPUT, Action, CrField, View
from phasegate.slack import change_requests as slack_cr
from phasegate.slack import gates as slack_gates
from phasegate.slack import inbound, unconfirmed
from phasegate.slack import team as slack_team
from phasegate.slack.deps import NOT_RECORDED, SlackDeps, log, tell
from phasegate.slack.inbound import Click, Refused, Submission


def on_interaction(deps: SlackDeps, payload: object, background: BackgroundTasks) -> Response:
    """A decoded interaction payload, however it arrived: the answer to give.

    A write that found its locks held by another process's transactions (a busy ledger: another
    replica, a flow run, the CLI) is handled again, as Slack's redelivery of it would be, for
    `busy_patience` after the first such try and within the request's deadline; only then is the
    clicker told it was not recorded. A click whose pooled connection was found gone (the database
    restarted since it was last used) is handled again once, on a new connection."""
    try:
        request = inbound.interaction(payload)
    except Refused as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return on_request(deps, request, background)


def on_request(deps: SlackDeps, request: Click | Submission | None, background: BackgroundTasks) -> Response:
    """`on_interaction` of a payload already read through `phasegate.slack.inbound`."""
    give_up: float | None = None
    stale = False
    while True:
        try:
            if isinstance(request, Click):
                return on_click(deps, request, background)
            if isinstance(request, Submission):
                return on_submission(deps, request, background)
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except SQLAlchemyError as exc:
            if not faults.is_fault(exc):
                raise
            if isinstance(request, Click) and not stale and faults.stale_connection(exc):
                stale = True  # once more, on a new connection: its delivery id keeps a click recorded once
                log.info("%s: its ledger connection was gone, trying again: %s", type(request).__name__.lower(), exc)
                continue
            if busy(exc):
                if give_up is None:
                    give_up = min(time.monotonic() + busy_patience(deps.sessions), DEADLINE.get() or math.inf)
                if time.monotonic() < give_up:
                    log.info("%s: the ledger is busy, trying again: %s", type(request).__name__.lower(), faults.reason(exc))
                    continue
            return ledger_down(deps, request, background, exc)
        return Response(status_code=200)


def on_command(deps: SlackDeps, fields: Mapping[str, object], background: BackgroundTasks) -> Response:
    """A slash command's fields, however they arrived: the answer, always one the user sees."""
    try:
        command = inbound.command(fields)
    except Refused as exc:
        return slack_cr.ephemeral(f"phasegate could not read that command ({exc}); nothing was filed.")
    first = command.text.split()[:1]
    try:
        if first == ["team"]:
            return slack_team.on_team(deps, command)
        if first == ["check"]:
            return slack_team.on_check(deps, command)
        return slack_cr.on_command(deps, command, background)
    except SQLAlchemyError as exc:
        if not faults.is_fault(exc):
            raise
        log.warning("slash command not recorded, the ledger is unavailable: %s", exc)
        return slack_cr.ephemeral(not_recorded(exc))


def on_click(deps: SlackDeps, click: Click, background: BackgroundTasks) -> Response:
    if click.action is None:
        return Response(status_code=200)  # not one of ours; nothing to do
    if click.action.action is Action.ATTEST:
        return slack_gates.on_attest(deps, click, click.action.argument, background)
    if click.action.action is Action.CHANGE:
        return slack_cr.on_action(deps, click, click.action.argument, background)
    return slack_gates.on_action(deps, click, click.action.argument, background)


def on_submission(deps: SlackDeps, submission: Submission, background: BackgroundTasks) -> Response:
    if submission.form is View.GATE_REASON:
        return slack_gates.on_reason(deps, submission, background)
    if submission.form is View.CR_SUBMIT:
        return slack_cr.on_submit(deps, submission, background)
    if submission.form is View.CR_REASON:
        return slack_cr.on_reason(deps, submission, background)
    return Response(status_code=200)  # not one of ours; nothing to do


def ledger_down(deps: SlackDeps, request: Click | Submission | None, background: BackgroundTasks,
                exc: Exception) -> Response:
    """The ledger did not take it: say so to the clicker alone, in time, instead of the generic error
    Slack shows for a 500, and say what is wrong when it will not pass by itself (a full disk, a
    read-only ledger). A COMMIT sent and not answered may have been recorded: a click is told so, and
    told which it was once the ledger answers (phasegate.slack.unconfirmed). A form keeps its input
    and shows the text."""
    log.warning("%s not recorded, the ledger is unavailable: %s", type(request).__name__.lower(), exc)
    maybe, xid = faults.unconfirmed(exc)
    if isinstance(request, Submission):
        key = CrField.TITLE.value if request.form is View.CR_SUBMIT else REASON_INPUT  # an input the form has
        return JSONResponse({"response_action": "errors", "errors": {key: not_recorded(exc)}})
    if isinstance(request, Click):
        background.add_task(tell, deps, request.response_url, unconfirmed.NOT_CONFIRMED if maybe else not_recorded(exc))
        if maybe:
            background.add_task(unconfirmed.confirm_later, deps, xid, request.response_url, late_followups(deps, request))
    return Response(status_code=200)


def late_followups(deps: SlackDeps, click: Click) -> Callable[[], None] | None:
    """For a gate answer confirmed late: the refresher looks for the mark committed with it now (any
    other click's mark is found at its next look)."""
    gate_id = inbound.row_id(click.value)
    if click.action is None or click.action.action in (Action.ATTEST, Action.CHANGE) or gate_id is None:
        return None
    return lambda: slack_gates.after_late_commit(deps)


def not_recorded(exc: Exception) -> str:
    """What to tell someone whose request the ledger did not take: NOT_RECORDED for a ledger that is
    down or busy (a minute usually mends it); what it is for the others; and for a COMMIT that went
    unanswered, that it may have been recorded."""
    if faults.unconfirmed(exc)[0]:
        return unconfirmed.MAYBE
    fault = faults.classify(exc)
    if fault is None or fault.transient:
        return NOT_RECORDED
    return f"Not recorded: {faults.WHAT[fault]}. Please tell phasegate's operators, and click again once it is fixed."

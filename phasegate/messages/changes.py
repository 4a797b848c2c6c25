"""What phasegate says in Slack about change requests: the approval prompt with its assessment and
the form the slash command opens (its answers become a `Draft` by `phasegate.rules.change_fields`).

Rendered from the ledger alone, like the gate prompts, so any process can redraw a prompt.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import SLACK_USER_ID, Engagement, Phase
from phasegate.integrations.slack_blocks import (
    Block,
    Button,
    actions,
    context,
    form_modal,
    header,
    number_input,
    section,
    select_input,
    text_input,
    text_input_modal,
)
from phasegate.integrations.slack_chat import Mark, SlackChat
from phasegate.ledger import change_requests as crs
from phasegate.ledger import jira_requests
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import config_of, get
from phasegate.ledger.models import ChangeRequestRow
from phasegate.messages import marks, witness
from phasegate.messages.gates import quote_reason, role_words
from phasegate.messages.ids import REASON_INPUT, Action, CrField, View, action_id, cr_block_id, form_metadata
from phasegate.rules import change_requests as cr_model
from phasegate.rules import jira_requests as jira_rules
from phasegate.rules import policy
from phasegate.states import ChangeRequestState, ChangeSource, Outcome
from phasegate.text import literal

STATE_ICON = {ChangeRequestState.APPROVED: ":white_check_mark:", ChangeRequestState.REJECTED: ":x:",
              ChangeRequestState.WITHDRAWN: ":leftwards_arrow_with_hook:"}


def requester(cr: ChangeRequestRow) -> str:
    """Who filed the request: a person by Slack mention, an outside requester (`jira:<reporter>`) in words."""
    outside = jira_rules.outside_name(cr.requested_by)
    if outside is not None:
        return f"{literal(outside)} (in Jira):"
    return f"<@{cr.requested_by}>" if SLACK_USER_ID.match(cr.requested_by) else literal(cr.requested_by)


def summary(cr: ChangeRequestRow, currency: str = "") -> str:
    added, removed, unknown = cr.scope_added["items"], cr.scope_removed["items"], crs.not_estimated(cr)
    cost = cr_model.figure(cr.cost, 'cost', unknown, f" {literal(currency)}" if currency else "")
    parts = [f"*Phase* {cr.phase.value} · *effort* {cr_model.figure(cr.effort_days, 'effort_days', unknown, ' days')}"
             f" · *schedule* {cr_model.figure(cr.schedule_days, 'schedule_days', unknown, ' days')}"
             f" · *cost* {cost}"]
    if added:
        parts.append("*Adds:* " + ", ".join(literal(item) for item in added))
    if removed:
        parts.append("*Removes:* " + ", ".join(literal(item) for item in removed))
    return "\n".join(parts)


def filed_by(cr: ChangeRequestRow) -> str:
    """Who filed the request and how: a person by Slack mention, an outside requester by name."""
    outside = jira_rules.outside_name(cr.requested_by)
    who = f"{literal(outside)}, an outside requester," if outside is not None else requester(cr)
    how = "in Jira" if cr.source is ChangeSource.JIRA else f"via {cr.source.value}"
    return f"filed by {who} {how}" + (f" ({literal(cr.jira_issue)})" if cr.jira_issue else "")


def render(session: Session, cr: ChangeRequestRow, engagement: Engagement | None = None) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for the request's prompt as it should look now; every outside text
    (title, rationale, scope items, names from the file, the Jira key) rendered by `literal`."""
    engagement = engagement or config_of(get(session, cr.engagement_id))
    assessment = crs.assessment_of(cr)
    who = {a.slack_user: a.name for p in engagement.phases.present() for a in engagement.phases.of(p).gate.approvers}
    who |= {a.slack_user: a.name for a in (engagement.change_requests.approvers if engagement.change_requests else [])}
    decided = crs.decisions(session, cr.id)
    answers = [(f"{literal(who[d.approver])} (<@{d.approver}>, {literal(role_words(d.side, d.role))})"
                if d.approver in who else f"<@{d.approver}> ({literal(role_words(d.side, d.role))})")
               + f" {d.outcome.label} via {d.via.value}" + quote_reason(d.reason) for d in decided]
    name = literal(engagement.name)
    blocks = [header(f"CR-{cr.number} · {literal(cr.title, plain=True)}"),
              section(f"*{name}* · {filed_by(cr)}" + (f"\n{literal(cr.rationale)}" if cr.rationale else "")),
              section(summary(cr, engagement.budget.currency))]
    if assessment is not None:
        blocks.append(section(f"*What it changes in the approved plan* (scope baseline v{assessment.baseline_version})\n"
                              + "\n".join(literal(line) for line in assessment.lines())))
    if answers:
        blocks.append(section("*Answers so far*\n" + "\n".join(answers)))
    if cr.revision > 1:
        changed = literal("; ".join(jira_requests.revision_changes(session, cr)) or "its Jira issue changed")
        blocks.append(context(f"Revision {cr.revision}: {changed}. Answers to revision {cr.revision - 1} "
                              "no longer count."))
    if cr.state is ChangeRequestState.ASSESSED:
        rule = policy.describe(policy.change_policy(engagement, cr.phase))
        answered = {d.approver for d in decided}
        waiting = [f"{literal(a.name)} (<@{a.slack_user}>)" for a in policy.change_policy(engagement, cr.phase).approvers
                   if a.slack_user not in answered and a.slack_user != cr.requested_by]
        if waiting:
            blocks.append(section("*Waiting for* " + ", ".join(waiting)))
        blocks += actions(cr_block_id(cr.id), [
            Button(action_id(Action.CHANGE, Outcome.APPROVE.value), "Approve", str(cr.id), "primary"),
            Button(action_id(Action.CHANGE, Outcome.REJECT.value), "Reject", str(cr.id), "danger")])
        blocks.append(context(f"Decided by {rule}; only the people named here can approve it, and the requester "
                              "cannot."))
        revision = f" (revision {cr.revision})" if cr.revision > 1 else ""
        return f"Change request CR-{cr.number}{revision} for {name}: {literal(cr.title)}", blocks
    outcome = f"{STATE_ICON.get(cr.state, '')} *{cr.state.value.capitalize()}*" + quote_reason(cr.closed_reason)
    if cr.baseline_version:
        outcome += f" · baseline v{cr.baseline_version}"
    blocks.append(section(outcome))
    stamped = witnessed_mark(session, cr)
    if stamped is not None:
        blocks.append(witness.block(stamped))
    return f"CR-{cr.number} for {name}: {cr.state.value}", blocks


def superseded(session: Session, cr: ChangeRequestRow) -> tuple[str, list[Block]]:
    """What the prompt of the revision before says once the current one is asked: no buttons."""
    changed = literal("; ".join(jira_requests.revision_changes(session, cr)) or "its Jira issue changed")
    before = cr.revision - 1
    return (f"CR-{cr.number} revision {before}: superseded by revision {cr.revision}",
            [header(f"CR-{cr.number} · revision {before}"),
             section(f":arrows_counterclockwise: *Superseded* by revision {cr.revision} ({changed}). "
                     f"Answers to revision {before} no longer count; answer the new prompt.")])


def witnessed_mark(session: Session, cr: ChangeRequestRow) -> Mark | None:
    """A decided request's prompt mark with the chain head it witnesses (None until it is final)."""
    if not cr.state.final:
        return None
    return witness.stamp(session, marks.change_request(cr), cr.engagement_id)


def refresh(sessions: sessionmaker[Session], chat: SlackChat, cr_id: int) -> None:
    """Redraw the posted prompt for everyone (a decided one witnesses the chain head); ServiceUnavailable
    if Slack fails."""
    with transaction(sessions) as session:
        cr = crs.by_id(session, cr_id)
        text, blocks = render(session, cr)
        channel, ts, mark = cr.channel, cr.message_ts, witnessed_mark(session, cr)
    if ts:
        chat.update(channel, ts, text, blocks, mark=mark)


def announcement(cr: ChangeRequestRow, engagement_name: str) -> str:
    title, name = literal(cr.title), literal(engagement_name)
    if cr.state is ChangeRequestState.APPROVED:
        moved = f"; {cr.phase.value} timebox moved by {cr.schedule_days:+d} days" if cr.schedule_days else ""
        return (f":white_check_mark: CR-{cr.number} “{title}” for {name} is approved: baseline "
                f"v{cr.baseline_version}{moved}.")
    return (f"{STATE_ICON.get(cr.state, '')} {requester(cr)} CR-{cr.number} “{title}” for {name} "
            f"is {cr.state.value}" + quote_reason(cr.closed_reason) + ".")


def reason_modal(cr_id: int, number: int) -> dict[str, Any]:
    return text_input_modal(callback_id=View.CR_REASON.value, private_metadata=f"{cr_id}:{Outcome.REJECT.value}",
                            title=f"Reject CR-{number}", label="Reason (recorded in the ledger)",
                            input_id=REASON_INPUT)


def form(engagement: Engagement, current: Phase, initial: cr_model.Draft | None = None, *,
         channel: str) -> dict[str, Any]:
    """The slash command's form; the engagement and the channel it was opened in travel in
    private_metadata (`form_metadata`), who files it is the verified user of the submission. `initial`
    pre-fills title, rationale and the scope items added and removed (the "Draft change request" button on
    scope drift)."""
    limit = cr_model.ITEMS_LIMIT
    blocks = [
        text_input(CrField.TITLE.value, "Title", max_length=cr_model.TITLE_LIMIT),
        text_input(CrField.RATIONALE.value, "Rationale", multiline=True, max_length=cr_model.RATIONALE_LIMIT,
                   optional=True),
        select_input(CrField.PHASE.value, "Phase", [(p.value, p.heading) for p in engagement.phases.present()],
                     current.value),
        text_input(CrField.SCOPE_ADDED.value, "Scope items added (one a line)", multiline=True, optional=True,
                   hint=f"At most {limit} items"),
        text_input(CrField.SCOPE_REMOVED.value, "Scope items removed (one a line)", multiline=True, optional=True),
        number_input(CrField.EFFORT_DAYS.value, "Effort (person-days)", decimal=True),
        number_input(CrField.SCHEDULE_DAYS.value, "Schedule change (days, negative pulls in)", decimal=False),
        number_input(CrField.COST.value, f"Cost ({literal(engagement.budget.currency, plain=True)})", decimal=True),
    ]
    if initial is not None:
        filled = {CrField.TITLE.value: initial.title, CrField.RATIONALE.value: initial.rationale,
                  CrField.SCOPE_ADDED.value: "\n".join(initial.scope_added),
                  CrField.SCOPE_REMOVED.value: "\n".join(initial.scope_removed)}
        for block in blocks:
            if filled.get(block["block_id"]):
                block["element"]["initial_value"] = filled[block["block_id"]]
    return form_modal(callback_id=View.CR_SUBMIT.value, private_metadata=form_metadata(engagement.id, channel),
                      title="Change request", blocks=blocks, submit="File")

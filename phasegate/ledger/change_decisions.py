"""Answers to change requests, and what an approval changes, in one locked transaction.

`answer` holds a change request to the same rules as a gate (`phasegate.rules.policy.check`: only the
listed approvers, never the requester, a reason for a rejection, the quorum and sides counted by
`policy.reached`, over the answers to its current revision only). The answer that completes an
approval also writes the new baseline version, moves the running phase's timebox and replaces the
engagement file if the request amends it, so a request is never approved without its effect, nor
its effect recorded without the approval.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Approver, Engagement
from phasegate.errors import InvalidRequest, PolicyError
from phasegate.ledger import audit, followups
from phasegate.ledger.change_requests import (
    assessment_of,
    baseline,
    by_id,
    check_schedule,
    closed,
    decisions,
    draft_of,
    parse_amendment,
)
from phasegate.ledger.engagements import config_of, digest_of, get
from phasegate.ledger.models import BaselineRow, ChangeDecisionRow, ChangeRequestRow, utcnow
from phasegate.ledger.phases import current_timebox
from phasegate.rules import policy
from phasegate.rules.change_requests import diff, scope_after
from phasegate.states import AuditKind, ChangeRequestState, Outcome, Prompt, Via

DECIDES = {Outcome.APPROVE: ChangeRequestState.APPROVED, Outcome.REJECT: ChangeRequestState.REJECTED}


@dataclass(frozen=True)
class Answered:
    cr: ChangeRequestRow
    recorded: bool  # False: a repeat (double click, redelivery) that changed nothing
    decided: ChangeRequestState | None  # set when this answer completed the quorum


def check(session: Session, cr: ChangeRequestRow, engagement: Engagement, *, via: Via, approver: str,
          outcome: Outcome, reason: str) -> Approver:
    """The approver's entry if the request would take this answer now; GateClosed or PolicyError if not."""
    if cr.state is not ChangeRequestState.ASSESSED:
        raise closed(session, cr)
    entry = policy.check(policy.change_policy(engagement, cr.phase), cr.name, policy.CHANGE_OUTCOMES, via=via,
                         approver=approver, requested_by=cr.requested_by, outcome=outcome, reason=reason)
    if outcome is Outcome.APPROVE:
        still_applies(session, cr, engagement)
    return entry


def still_applies(session: Session, cr: ChangeRequestRow, engagement: Engagement) -> None:
    """What was true when the request was filed may not be any more (another request approved)."""
    row = get(session, cr.engagement_id)
    if cr.amendment is not None and row.config_digest != cr.base_digest:
        raise PolicyError(f"the engagement file changed since {cr.name} was filed; withdraw it and file the "
                          "amendment again against the current file")
    try:
        check_schedule(session, engagement, row, cr.phase, cr.schedule_days)
    except InvalidRequest as exc:
        raise PolicyError(f"{cr.name} cannot be approved now: {exc}") from None


def answer(session: Session, cr_id: int, *, approver: str, outcome: Outcome, reason: str, via: Via,
           delivery_id: str | None = None, operator: str | None = None) -> Answered:
    """Record one approver's answer; an approval that meets the quorum applies the change.
    `operator` is the user@host that ran a CLI command, kept beside the Slack id it claimed."""
    cr = by_id(session, cr_id, lock=True)
    if delivery_id is not None and session.scalar(select(ChangeDecisionRow.id)
                                                  .where(ChangeDecisionRow.delivery_id == delivery_id)):
        return Answered(cr, recorded=False, decided=None)
    engagement = config_of(get(session, cr.engagement_id))
    entry = check(session, cr, engagement, via=via, approver=approver, outcome=outcome, reason=reason)
    previous = {d.approver: d for d in decisions(session, cr.id)}
    mine = previous.get(approver)
    if mine is not None and mine.outcome is outcome and mine.reason == reason.strip():
        return Answered(cr, recorded=False, decided=None)
    given = ChangeDecisionRow(change_request_id=cr.id, outcome=outcome, approver=approver, side=entry.side.value,
                              role=entry.role, reason=reason.strip(), via=via, delivery_id=delivery_id,
                              operator=operator, revision=cr.revision)
    session.add(given)
    audit.record(session, cr.engagement_id, AuditKind.CR_DECISION_RECORDED, cr.name, covers=given, cr_id=cr.id,
                 approver=approver,
                 outcome=outcome.value, reason=reason.strip(), channel=via.value, operator=operator, revision=cr.revision)
    tally = {user: row.outcome for user, row in previous.items()} | {approver: outcome}
    reached = policy.reached(policy.change_policy(engagement, cr.phase), tally)
    if reached is Outcome.APPROVE:
        approve(session, cr, engagement)
    elif reached is Outcome.REJECT:
        reasons = [d.reason for d in decisions(session, cr.id) if d.outcome is Outcome.REJECT and d.reason]
        settle(session, cr, ChangeRequestState.REJECTED, "; ".join(dict.fromkeys(reasons)))
    followups.answered(session, Prompt.CHANGE_REQUEST, cr.id, decided=reached is not None, approver=approver, via=via)
    return Answered(cr, recorded=True, decided=DECIDES[reached] if reached is not None else None)


def settle(session: Session, cr: ChangeRequestRow, state: ChangeRequestState, reason: str = "") -> None:
    if not cr.state.can_become(state):
        raise closed(session, cr)
    cr.state, cr.closed_reason, cr.decided_at = state, reason, utcnow()
    assessment = assessment_of(cr)
    kind = AuditKind.CR_APPROVED if state is ChangeRequestState.APPROVED else AuditKind.CR_REJECTED
    audit.record(session, cr.engagement_id, kind, cr.name, covers=cr, cr_id=cr.id, reason=reason,
                 over_budget=bool(assessment and assessment.over_budget), baseline_version=cr.baseline_version)


def approve(session: Session, cr: ChangeRequestRow, engagement: Engagement) -> BaselineRow:
    """Write what the approval means: a new baseline version, a moved timebox, an amended file."""
    current = baseline(session, cr.engagement_id)
    if current is None:
        raise PolicyError(f"{cr.engagement_id} has no baseline to change")
    amended = parse_amendment(engagement, cr.amendment) if cr.amendment is not None else None
    config = amended or engagement
    scope = dict(current.scope)
    scope["items"] = scope_after(current.scope, draft_of(cr), cr.phase, engagement, amended)
    scope["change_spent"] = float(scope.get("change_spent", 0.0)) + cr.cost
    scope["change_request"] = cr.number
    scope["phases"] = {p.value: {"planned_weeks": config.phases.of(p).planned_weeks,
                                 "milestones": [m.key for m in config.phases.of(p).milestones]} for p in config.phases.present()}
    scope["budget"] = config.budget.model_dump(mode="json")
    if cr.schedule_days:
        box = current_timebox(session, cr.engagement_id, cr.phase)
        before, box.ends_on = box.ends_on, box.ends_on + dt.timedelta(days=cr.schedule_days)
        scope["timebox_ends"] = {cr.phase.value: box.ends_on.isoformat()}
        audit.record(session, cr.engagement_id, AuditKind.TIMEBOX_MOVED, cr.phase.value, covers=box, number=box.number,
                     before=before.isoformat(), after=box.ends_on.isoformat(), cr_id=cr.id)
    if amended is not None:
        row = get(session, cr.engagement_id)
        new_config = amended.model_dump(mode="json")
        changes = diff(row.config, new_config)
        row.config, row.config_digest, row.name = new_config, digest_of(new_config), amended.name
        audit.record(session, cr.engagement_id, AuditKind.CONFIG_AMENDED, cr.name, covers=row, cr_id=cr.id,
                     digest=row.config_digest, changes=changes)
    version = BaselineRow(engagement_id=cr.engagement_id, version=current.version + 1, scope=scope)
    session.add(version)
    audit.record(session, cr.engagement_id, AuditKind.BASELINE_RECORDED, f"v{version.version}", covers=version,
                 scope=scope,
                 cr_id=cr.id)
    cr.baseline_version = version.version
    settle(session, cr, ChangeRequestState.APPROVED)
    return version

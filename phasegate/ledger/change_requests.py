"""Change requests in the ledger: filing, assessment, withdrawal, and reading them back.

Filing checks everything a request could be refused for before writing anything, so a refused
request leaves no trace but its error message. Answers and what an approval changes live in
`phasegate.ledger.change_decisions`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import GateClosed, InvalidRequest, NotFound, PolicyError
from phasegate.ledger import audit, spend
from phasegate.ledger.engagements import config_of, get
from phasegate.ledger.models import (
    BaselineRow,
    ChangeDecisionRow,
    ChangeRequestRow,
    EngagementRow,
    TimeboxRow,
    utcnow,
)
from phasegate.ledger.phases import max_weeks, weeks_used
from phasegate.rules import change_requests as cr_model
from phasegate.rules import drift
from phasegate.rules.change_requests import Assessment, Draft, Timebox
from phasegate.states import AuditKind, ChangeRequestState, ChangeSource, EngagementState, Outcome


def baseline(session: Session, engagement_id: str, version: int | None = None) -> BaselineRow | None:
    """The newest baseline, or the given version."""
    query = select(BaselineRow).where(BaselineRow.engagement_id == engagement_id)
    query = query.where(BaselineRow.version == version) if version else query.order_by(BaselineRow.version.desc())
    return session.scalar(query.limit(1))


def by_id(session: Session, cr_id: int, *, lock: bool = False) -> ChangeRequestRow:
    query = select(ChangeRequestRow).where(ChangeRequestRow.id == cr_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"no change request {cr_id}")
    return row


def by_number(session: Session, engagement_id: str, number: int) -> ChangeRequestRow:
    row = session.scalar(select(ChangeRequestRow).where(ChangeRequestRow.engagement_id == engagement_id,
                                                        ChangeRequestRow.number == number))
    if row is None:
        raise NotFound(f"{engagement_id} has no change request CR-{number}")
    return row


def all_for(session: Session, engagement_id: str) -> list[ChangeRequestRow]:
    return list(session.scalars(select(ChangeRequestRow).where(ChangeRequestRow.engagement_id == engagement_id)
                                .order_by(ChangeRequestRow.number)))


def decisions(session: Session, cr_id: int, *, every_revision: bool = False) -> list[ChangeDecisionRow]:
    """The answers to the request's current revision (an earlier revision's answers do not count),
    or with `every_revision` all of them."""
    query = select(ChangeDecisionRow).where(ChangeDecisionRow.change_request_id == cr_id)
    if not every_revision:
        current = select(ChangeRequestRow.revision).where(ChangeRequestRow.id == cr_id).scalar_subquery()
        query = query.where(ChangeDecisionRow.revision == current)
    return list(session.scalars(query.order_by(ChangeDecisionRow.id)))


def not_estimated(cr: ChangeRequestRow) -> tuple[str, ...]:
    """The figures (effort_days, schedule_days, cost) the request does not give."""
    return tuple((cr.not_estimated or {}).get("items", ()))


def draft_of(cr: ChangeRequestRow) -> Draft:
    return Draft(title=cr.title, rationale=cr.rationale, phase=cr.phase,
                 scope_added=tuple(cr.scope_added["items"]), scope_removed=tuple(cr.scope_removed["items"]),
                 effort_days=cr.effort_days, schedule_days=cr.schedule_days, cost=cr.cost, amendment=cr.amendment,
                 jira_issue=cr.jira_issue, not_estimated=not_estimated(cr))


def days_booked(session: Session, engagement_id: str, phase: Phase) -> int:
    """The phase's length so far in days: its timeboxes plus every approved schedule change."""
    moved = session.scalar(select(func.sum(ChangeRequestRow.schedule_days)).where(
        ChangeRequestRow.engagement_id == engagement_id, ChangeRequestRow.phase == phase,
        ChangeRequestRow.state == ChangeRequestState.APPROVED))
    return weeks_used(session, engagement_id, phase) * 7 + int(moved or 0)


def timebox_of(session: Session, engagement_id: str, phase: Phase) -> Timebox | None:
    box = session.scalar(select(TimeboxRow).where(TimeboxRow.engagement_id == engagement_id, TimeboxRow.phase == phase)
                         .order_by(TimeboxRow.number.desc()).limit(1))
    if box is None:
        return None
    return Timebox(ends_on=box.ends_on, days_booked=days_booked(session, engagement_id, phase))


def check_schedule(session: Session, engagement: Engagement, row: EngagementRow, phase: Phase, days: int) -> None:
    """A schedule change moves the running phase's timebox, never past the phase's maximum."""
    if not days:
        return
    if phase is not row.current_phase:
        raise InvalidRequest({"schedule_days": f"{phase.value} is not the running phase; a phase not yet started "
                                               "takes its length from planned_weeks (amend the file instead)"})
    booked, limit = days_booked(session, engagement.id, phase), max_weeks(engagement, phase)
    if limit is not None and booked + days > limit * 7:
        raise InvalidRequest({"schedule_days": f"{phase.value} would run {booked + days} days, past its maximum "
                                               f"of {limit} weeks ({limit * 7} days)"})
    if booked + days < 7:
        raise InvalidRequest({"schedule_days": f"{phase.value} would be shorter than a week"})


def parse_amendment(engagement: Engagement, data: dict[str, object]) -> Engagement:
    try:
        amended = Engagement.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest({"amendment": f"the amended file is invalid: {exc.errors()[0]['msg']}"}) from None
    if amended.id != engagement.id:
        raise InvalidRequest({"amendment": f"the file is for {amended.id}, not {engagement.id}"})
    return amended


def submit(session: Session, engagement_id: str, draft: Draft, *, requested_by: str, source: ChangeSource,
           delivery_id: str | None = None, operator: str | None = None,
           extra: dict[str, Any] | None = None) -> tuple[ChangeRequestRow, bool]:
    """File a request: (row, True) when new; a repeated Slack delivery or Jira issue finds the first.
    `operator`: the user@host of the CLI command that filed it. `extra` goes into the `cr_submitted`
    audit event (what a Jira issue was, as filed)."""
    if delivery_id is not None:
        seen = session.scalar(select(ChangeRequestRow).where(ChangeRequestRow.delivery_id == delivery_id))
        if seen is not None:
            return seen, False
    row = get(session, engagement_id)
    if row.state is not EngagementState.ACTIVE or row.current_phase is None:
        hint = " (change its file with `phasegate engagement create`)" if row.state is EngagementState.REGISTERED else ""
        raise PolicyError(f"{engagement_id} is {row.state.value}; change requests are for running engagements{hint}")
    if draft.jira_issue:
        seen = session.scalar(select(ChangeRequestRow).where(ChangeRequestRow.engagement_id == engagement_id,
                                                             ChangeRequestRow.jira_issue == draft.jira_issue))
        if seen is not None:
            return seen, False
    current = baseline(session, engagement_id)
    if current is None:
        raise PolicyError(f"{engagement_id} has no baseline yet; wait for its phase run to record one")
    draft = cr_model.validate(draft)
    engagement, phase = config_of(row), draft.phase or row.current_phase
    if draft.amendment is not None:
        parse_amendment(engagement, draft.amendment)
    items, issues = cr_model.items_of(current.scope).get(phase.value, []), drift.baseline_keys(current.scope, phase)
    unknown = [i for i in draft.scope_removed if i not in items and not drift.keys_named([i]) & (issues or set())]
    if unknown:  # a removed item is a scope item, or names a Jira issue the phase's baseline holds
        raise InvalidRequest({"scope_removed": f"not in the {phase.value} baseline: {', '.join(unknown)}"})
    check_schedule(session, engagement, row, phase, draft.schedule_days)
    number = int(session.scalar(select(func.max(ChangeRequestRow.number))
                                .where(ChangeRequestRow.engagement_id == engagement_id)) or 0) + 1
    cr = ChangeRequestRow(engagement_id=engagement_id, number=number, title=draft.title, rationale=draft.rationale,
                          phase=phase, requested_by=requested_by, source=source, operator=operator,
                          jira_issue=draft.jira_issue,
                          scope_added={"items": list(draft.scope_added)},
                          scope_removed={"items": list(draft.scope_removed)}, effort_days=draft.effort_days,
                          schedule_days=draft.schedule_days, cost=draft.cost, amendment=draft.amendment,
                          not_estimated={"items": list(draft.not_estimated)} if draft.not_estimated else None,
                          base_digest=row.config_digest, delivery_id=delivery_id, channel=engagement.slack_channel)
    session.add(cr)
    session.flush()
    payload: dict[str, Any] = {"not_estimated": list(draft.not_estimated)} if draft.not_estimated else {}
    audit.record(session, engagement_id, AuditKind.CR_SUBMITTED, cr.name, covers=cr, cr_id=cr.id, title=draft.title,
                 requested_by=requested_by, source=source.value, phase=phase.value, cost=draft.cost,
                 effort_days=draft.effort_days, schedule_days=draft.schedule_days, operator=operator,
                 **payload | (extra or {}))
    return cr, True


def assessment_of(cr: ChangeRequestRow) -> Assessment | None:
    return Assessment.model_validate(cr.assessment) if cr.assessment is not None else None


def assess(session: Session, cr: ChangeRequestRow) -> Assessment:
    """Assess the request against the current baseline once; later calls return what was stored."""
    stored = assessment_of(cr)
    if stored is not None:
        return stored
    if not cr.state.can_become(ChangeRequestState.ASSESSED):
        raise closed(session, cr)
    engagement = config_of(get(session, cr.engagement_id))
    current, first = baseline(session, cr.engagement_id), baseline(session, cr.engagement_id, 1)
    if current is None or first is None:
        raise PolicyError(f"{cr.engagement_id} has no baseline to assess {cr.name} against")
    result = cr_model.assess(draft_of(cr), cr.phase, engagement, scope=current.scope, version=current.version,
                             original=first.scope, timebox=timebox_of(session, cr.engagement_id, cr.phase),
                             max_weeks=max_weeks(engagement, cr.phase),
                             spent=spend.status_of(session, cr.engagement_id, engagement=engagement).changes.used)
    cr.assessment, cr.state = result.model_dump(mode="json"), ChangeRequestState.ASSESSED
    audit.record(session, cr.engagement_id, AuditKind.CR_ASSESSED, cr.name, covers=cr, cr_id=cr.id,
                 baseline_version=current.version, over_budget=result.over_budget, past_max=result.past_max,
                 growth_percent=round(result.growth_percent, 1))
    return result


def withdraw(session: Session, cr_id: int, *, by: str, reason: str, operator: str | None = None) -> ChangeRequestRow:
    """The requester (or the engagement's PM) takes an open request back, saying why (`operator`: the
    user@host of the CLI command that did)."""
    cr = by_id(session, cr_id, lock=True)
    if not cr.state.can_become(ChangeRequestState.WITHDRAWN):
        raise closed(session, cr)
    engagement = config_of(get(session, cr.engagement_id))
    if by not in (cr.requested_by, engagement.pm_slack_user):
        raise PolicyError(f"only {cr.requested_by} (who filed {cr.name}) or the PM may withdraw it")
    if not reason.strip():
        raise PolicyError("a withdrawal needs a written reason")
    cr.state, cr.closed_reason, cr.decided_at = ChangeRequestState.WITHDRAWN, reason.strip(), utcnow()
    audit.record(session, cr.engagement_id, AuditKind.CR_WITHDRAWN, cr.name, covers=cr, cr_id=cr.id, by=by,
                 reason=reason.strip(),
                 operator=operator)
    return cr


DECIDED_BY = {ChangeRequestState.APPROVED: Outcome.APPROVE, ChangeRequestState.REJECTED: Outcome.REJECT}


def closed(session: Session, cr: ChangeRequestRow) -> GateClosed:
    """The refusal of an answer to a request that takes none (yet, or any more), naming who decided it."""
    if cr.state is ChangeRequestState.WITHDRAWN:
        return GateClosed(f"{cr.name} was withdrawn: {cr.closed_reason}")
    if cr.state in DECIDED_BY:
        latest = {d.approver: d for d in decisions(session, cr.id)}
        winners = [d.approver for d in latest.values() if d.outcome is DECIDED_BY[cr.state]]
        who = ", ".join(f"<@{approver}>" for approver in winners)
        return GateClosed(f"{cr.name} was already {cr.state.value}" + (f" by {who}" if who else ""), mentions=winners)
    return GateClosed(f"{cr.name} is {cr.state.value} and takes no answers yet")

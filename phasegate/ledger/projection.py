"""The status projection (phasegate.ledger.models.status), written in the transaction of the change.

`track` registers two hooks on a session factory: after each flush it notes the engagements whose
rows changed (the engagement itself, its phase runs, timeboxes, spend, change requests and weekly
reports), and before the commit it rewrites their projection rows with `refresh`. The rows are a
read-side copy for `phasegate status`: nothing decides anything from them, and `refresh` rebuilds
them from the ledger (the migration that added them ran it for every engagement).

Open gates and their answers are not copied: the status view reads them (two indexed queries), so a
click's transaction writes nothing here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger.engagements import config_of
from phasegate.ledger.models import (
    Base,
    ChangeRequestRow,
    EngagementRow,
    EngagementStatusRow,
    PhaseRunRow,
    SpendRow,
    TimeboxRow,
    WeeklyReportRow,
    utcnow,
)
from phasegate.rules.budget import Extension
from phasegate.rules.budget import status as budget_status
from phasegate.states import ChangeRequestState, ReportKind

TOUCHED = "phasegate_status_touched"  # session.info key: engagement ids whose projection is out of date
WATCHED = (PhaseRunRow, TimeboxRow, SpendRow, ChangeRequestRow)  # rows with an engagement_id the view derives from


def track(factory: sessionmaker[Session]) -> None:
    event.listen(factory, "after_flush", _note)
    event.listen(factory, "before_commit", _before_commit)


def _note(session: Session, _context: Any) -> None:
    touched: set[str] = session.info.setdefault(TOUCHED, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, EngagementRow):
            touched.add(obj.id)
        elif isinstance(obj, WATCHED):
            touched.add(obj.engagement_id)
        elif isinstance(obj, WeeklyReportRow) and obj.kind is ReportKind.ENGAGEMENT:
            touched.add(obj.subject)


def _before_commit(session: Session) -> None:
    session.flush()
    touched = session.info.pop(TOUCHED, set())
    if touched:
        refresh(session, sorted(touched))


def gates_of(config: Engagement) -> dict[str, Any]:
    """Per phase: the gate's approvers in order as [slack_user, name], escalation and reminder hour."""
    who = {a.slack_user: a.name for p in config.phases.present() for a in config.phases.of(p).gate.approvers}
    return {p.value: {"approvers": [[a.slack_user, who[a.slack_user]] for a in config.phases.of(p).gate.approvers],
                      "escalate_after": config.phases.of(p).gate.escalate_after_business_days,
                      "reminder_hour": config.phases.of(p).gate.reminder_hour} for p in config.phases.present()}


def refresh(session: Session, engagement_ids: Iterable[str]) -> None:
    """Rewrite the projection rows of these engagements from the ledger (a few queries for all)."""
    ids = list(engagement_ids)
    rows = list(session.scalars(select(EngagementRow).where(EngagementRow.id.in_(ids))))
    if not rows:
        return
    ids = [r.id for r in rows]
    runs = {(r.engagement_id, r.phase): r for r in session.scalars(
        select(PhaseRunRow).where(PhaseRunRow.engagement_id.in_(ids)))}
    boxes: dict[str, list[TimeboxRow]] = defaultdict(list)
    for box in session.scalars(select(TimeboxRow).where(TimeboxRow.engagement_id.in_(ids)).order_by(TimeboxRow.number)):
        boxes[box.engagement_id].append(box)
    spent: dict[str, dict[Phase, float]] = defaultdict(dict)
    for s in session.scalars(select(SpendRow).where(SpendRow.engagement_id.in_(ids))):
        spent[s.engagement_id][s.phase] = spent[s.engagement_id].get(s.phase, 0.0) + s.amount
    approved: dict[str, float] = defaultdict(float)
    for cr in session.scalars(select(ChangeRequestRow).where(ChangeRequestRow.engagement_id.in_(ids),
                                                             ChangeRequestRow.state == ChangeRequestState.APPROVED)):
        approved[cr.engagement_id] += cr.cost
    last: dict[str, WeeklyReportRow] = {}
    for report in session.scalars(select(WeeklyReportRow).where(WeeklyReportRow.kind == ReportKind.ENGAGEMENT,
                                                                WeeklyReportRow.subject.in_(ids))
                                  .order_by(WeeklyReportRow.week)):
        last[report.subject] = report
    values = []
    for row in rows:
        config, phase = config_of(row), row.current_phase
        run = runs.get((row.id, phase)) if phase else None
        current = [b for b in boxes[row.id] if b.phase is phase]
        extensions = [Extension(phase=b.phase, number=b.number, weeks=b.weeks) for b in boxes[row.id] if b.number > 1]
        budget = budget_status(config, spent=spent[row.id], approved_changes=approved[row.id], extensions=extensions)
        started = None
        if phase is not None and run is not None:
            started = config.start_date if phase is Phase.POC else run.started_at.astimezone(config.tz).date()
        latest = last.get(row.id)
        values.append({
            "engagement_id": row.id, "timezone": config.timezone, "phase_started": started,
            "planned_weeks": config.phases.of(phase).planned_weeks if phase else None,
            "booked_weeks": sum(b.weeks for b in current), "timebox_ends_on": current[-1].ends_on if current else None,
            "over_budget": bool(budget.over), "near_cap": bool(budget.near),
            "deletion_deadline": config.data_handling.deletion_deadline if config.data_handling else None,
            "last_report_week": latest.week if latest else None,
            "last_report_rag": latest.rag if latest else None, "gates": gates_of(config), "refreshed_at": utcnow()})
    # UPDATE or INSERT, never DELETE: the PostgreSQL runtime role may not delete (phasegate.ledger.roles)
    table = Base.metadata.tables[EngagementStatusRow.__tablename__]
    there: set[str] = set(session.scalars(select(table.c.engagement_id).where(table.c.engagement_id.in_(ids))))
    changed = [{**v, "key": v["engagement_id"]} for v in values if v["engagement_id"] in there]
    if changed:
        session.execute(update(table).where(table.c.engagement_id == bindparam("key")), changed)
    added = [v for v in values if v["engagement_id"] not in there]
    if added:
        session.execute(insert(table), added)

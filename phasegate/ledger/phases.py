"""Phase runs and their timeboxes in the ledger: starting a phase, finding its run, the weeks it
has booked, and extending it by a timebox within the phase's maximum."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Engagement, Phase
from phasegate.errors import NotFound, PolicyError
from phasegate.ledger import audit
from phasegate.ledger.engagements import get
from phasegate.ledger.models import PhaseRunRow, TimeboxRow
from phasegate.states import AuditKind, EngagementState


def start_phase(session: Session, engagement: Engagement, phase: Phase, *, requested_by: str,
                flow_run_id: str | None, today: dt.date) -> PhaseRunRow:
    """The phase's run record, created once; re-runs of the flow find the same one."""
    run = find_phase_run(session, engagement.id, phase)
    if run is not None:
        if flow_run_id and run.flow_run_id != flow_run_id:
            run.flow_run_id = flow_run_id
        return run
    row = get(session, engagement.id)
    row.state.check_can_become(EngagementState.ACTIVE, f"engagement {engagement.id}")
    run = PhaseRunRow(engagement_id=engagement.id, phase=phase, requested_by=requested_by, flow_run_id=flow_run_id)
    session.add(run)
    row.state, row.current_phase = EngagementState.ACTIVE, phase
    starts = engagement.start_date if phase is Phase.POC else today
    weeks = engagement.phases.of(phase).planned_weeks
    box = TimeboxRow(engagement_id=engagement.id, phase=phase, number=1, weeks=weeks,
                     ends_on=starts + dt.timedelta(weeks=weeks), reason="planned")
    session.add(box)
    audit.record(session, engagement.id, AuditKind.PHASE_STARTED, phase.value, covers=row, requested_by=requested_by,
                 flow_run_id=flow_run_id)
    audit.record(session, engagement.id, AuditKind.TIMEBOX_OPENED, phase.value, covers=box, number=1, weeks=weeks,
                 reason="planned")
    return run


def find_phase_run(session: Session, engagement_id: str, phase: Phase) -> PhaseRunRow | None:
    return session.scalar(select(PhaseRunRow).where(PhaseRunRow.engagement_id == engagement_id,
                                                    PhaseRunRow.phase == phase))


def phase_runs(session: Session, engagement_id: str) -> list[PhaseRunRow]:
    return list(session.scalars(select(PhaseRunRow).where(PhaseRunRow.engagement_id == engagement_id)
                                .order_by(PhaseRunRow.id)))


def phase_run(session: Session, engagement_id: str, phase: Phase) -> PhaseRunRow:
    run = find_phase_run(session, engagement_id, phase)
    if run is None:
        raise NotFound(f"{engagement_id} has not started {phase.value}")
    return run


def current_timebox(session: Session, engagement_id: str, phase: Phase) -> TimeboxRow:
    box = session.scalar(select(TimeboxRow).where(TimeboxRow.engagement_id == engagement_id, TimeboxRow.phase == phase)
                         .order_by(TimeboxRow.number.desc()).limit(1))
    if box is None:
        raise NotFound(f"{engagement_id} has no timebox in {phase.value}")
    return box


DEFAULT_MAX_WEEKS = {Phase.POC: 12}


def max_weeks(engagement: Engagement, phase: Phase) -> int | None:
    """The file's maximum for the phase; the PoC may not pass 12 weeks unless the file says otherwise."""
    return engagement.phases.of(phase).max_weeks or DEFAULT_MAX_WEEKS.get(phase)


def check_extension(session: Session, engagement: Engagement, phase: Phase) -> None:
    limit = max_weeks(engagement, phase)
    weeks = engagement.phases.of(phase).extension_weeks
    used = weeks_used(session, engagement.id, phase)
    if limit is not None and used + weeks > limit:
        raise PolicyError(f"extending {phase.value} by {weeks} weeks would make it {used + weeks} weeks, "
                          f"past its maximum of {limit}")


def weeks_used(session: Session, engagement_id: str, phase: Phase) -> int:
    total = session.scalar(select(func.sum(TimeboxRow.weeks)).where(TimeboxRow.engagement_id == engagement_id,
                                                                     TimeboxRow.phase == phase))
    return int(total or 0)


def extend(session: Session, engagement: Engagement, phase: Phase, *, after: int, reason: str,
           today: dt.date) -> tuple[TimeboxRow, bool]:
    """Open timebox `after + 1` once ((box, True) the first time), refusing to pass the phase's maximum.

    The new timebox gives the weeks it names from whichever is later, the end of timebox `after` or
    `today`: after an early review the weeks left in the current timebox are still the phase's; after
    a review long past the timebox's end (a gate answered weeks late) the extension still gives its
    full weeks from today, not a timebox that has already ended. The booked weeks (what the maximum
    is checked against) are the weeks each answer gave; the calendar gap before a late extension is
    not booked."""
    existing = session.scalar(select(TimeboxRow).where(TimeboxRow.engagement_id == engagement.id,
                                                       TimeboxRow.phase == phase, TimeboxRow.number == after + 1))
    if existing is not None:
        return existing, False
    current = session.scalar(select(TimeboxRow).where(TimeboxRow.engagement_id == engagement.id,
                                                      TimeboxRow.phase == phase, TimeboxRow.number == after))
    if current is None:
        raise NotFound(f"{engagement.id} has no timebox {after} in {phase.value} to extend")
    check_extension(session, engagement, phase)
    weeks = engagement.phases.of(phase).extension_weeks
    box = TimeboxRow(engagement_id=engagement.id, phase=phase, number=after + 1, weeks=weeks,
                     ends_on=max(current.ends_on, today) + dt.timedelta(weeks=weeks), reason=reason)
    session.add(box)
    audit.record(session, engagement.id, AuditKind.TIMEBOX_OPENED, phase.value, covers=box, number=after + 1, weeks=weeks,
                 reason=reason)
    return box, True

"""What the ledger knows about engagements, read for all of them at once.

Why bulk: `phasegate status` must stay fast with many engagements, so every table is read with
one query (filtered to the engagements asked for) and grouped here, instead of a few queries per
engagement. The weekly report reads the same view for one engagement.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.configs.schema import Engagement, Phase
from phasegate.ledger import handoff
from phasegate.ledger.engagements import config_of
from phasegate.ledger.models import (
    AttestationRow,
    BaselineRow,
    ChangeRequestRow,
    DecisionRow,
    EngagementRow,
    GateRow,
    MetricSubmissionRow,
    MilestoneLinkRow,
    PhaseRunRow,
    SpendRow,
    TimeboxRow,
    WeeklyReportRow,
)
from phasegate.ledger.scope import Known, known_from
from phasegate.rules.budget import Extension
from phasegate.rules.change_requests import count_items
from phasegate.rules.handoff import Attested, Change
from phasegate.states import AuditKind, GateState, Outcome, Rag, ReportKind


@dataclass
class LastReport:
    week: str
    rag: Rag
    body: dict[str, object] | None  # loaded only when asked for (trends)
    done: bool = True  # posted in Slack, with its chart in the thread if it has one

    @staticmethod
    def finished(message_ts: str | None, chart_path: str | None, chart_file_id: str | None) -> bool:
        """A week is reported once its post is in Slack and its chart (if one was drawn) in the thread;
        a row saved without that (a refused post, a killed run, `--no-post`) is still owed."""
        return bool(message_ts) and (not chart_path or bool(chart_file_id))


@dataclass
class LedgerView:
    row: EngagementRow
    config: Engagement
    phase_started: dt.date | None = None
    timebox: TimeboxRow | None = None
    booked_weeks: int = 0
    open_gates: list[GateRow] = field(default_factory=list)
    decisions: dict[int, list[DecisionRow]] = field(default_factory=dict)  # open gate id -> answers, in order
    first_go_at: dt.datetime | None = None
    links: dict[str, str] = field(default_factory=dict)  # current phase: milestone -> issue key
    attestations: dict[tuple[Phase, str], tuple[str, dt.datetime]] = field(default_factory=dict)
    submitted: dict[str, float] = field(default_factory=dict)
    baselines: list[tuple[int, dt.datetime]] = field(default_factory=list)
    reports: list[LastReport] = field(default_factory=list)  # oldest first
    spent: dict[Phase, float] = field(default_factory=dict)  # recorded spend per phase
    extensions: list[Extension] = field(default_factory=list)  # timeboxes after a phase's first
    change_requests: list[ChangeRequestRow] = field(default_factory=list)  # by number
    scope_items: tuple[int, int] | None = None  # (first baseline, current baseline) item counts
    baseline_scope: dict[str, Any] = field(default_factory=dict)  # the current baseline's scope
    team_changes: list[Change] = field(default_factory=list)  # the vendor's team, oldest first
    checks: list[Attested] = field(default_factory=list)  # the client's running checks, oldest first

    @property
    def scope(self) -> Known:
        """What drift is checked against: the current phase's baseline issues, links, covered keys."""
        phase = self.row.current_phase or Phase.POC
        return known_from(self.baseline_scope, phase, self.links, self.change_requests)


def views(session: Session, engagement_ids: Sequence[str] | None = None, *, full: bool = True,
          report_bodies: bool = False) -> list[LedgerView]:
    """One LedgerView per engagement (all when `engagement_ids` is None), in id order.

    `full=False` skips links, attestations, metric submissions and baselines (what `status` does
    not show). Each table is one query whatever the number of engagements.
    """
    query = select(EngagementRow).order_by(EngagementRow.id)
    if engagement_ids is not None:
        query = query.where(EngagementRow.id.in_(list(engagement_ids)))
    rows = list(session.scalars(query))
    ids = [r.id for r in rows]
    by_id = {r.id: LedgerView(row=r, config=config_of(r)) for r in rows}
    if not ids:
        return []

    runs = {(r.engagement_id, r.phase): r for r in session.scalars(
        select(PhaseRunRow).where(PhaseRunRow.engagement_id.in_(ids)))}
    boxes: dict[tuple[str, Phase], list[TimeboxRow]] = defaultdict(list)
    for box in session.scalars(select(TimeboxRow).where(TimeboxRow.engagement_id.in_(ids)).order_by(TimeboxRow.number)):
        boxes[(box.engagement_id, box.phase)].append(box)
        if box.number > 1 and box.engagement_id in by_id:
            by_id[box.engagement_id].extensions.append(Extension(phase=box.phase, number=box.number, weeks=box.weeks))
    for spend in session.scalars(select(SpendRow).where(SpendRow.engagement_id.in_(ids))):
        spent = by_id[spend.engagement_id].spent
        spent[spend.phase] = spent.get(spend.phase, 0.0) + spend.amount
    for cr in session.scalars(select(ChangeRequestRow).where(ChangeRequestRow.engagement_id.in_(ids))
                              .order_by(ChangeRequestRow.number)):
        by_id[cr.engagement_id].change_requests.append(cr)
    for view in by_id.values():
        phase = view.row.current_phase
        if phase is None:
            continue
        run = runs.get((view.row.id, phase))
        if run is not None:
            view.phase_started = (view.config.start_date if phase is Phase.POC
                                  else run.started_at.astimezone(view.config.tz).date())
        current = boxes.get((view.row.id, phase), [])
        view.timebox = current[-1] if current else None
        view.booked_weeks = sum(b.weeks for b in current)

    gate_rows = session.scalars(select(GateRow).where(GateRow.engagement_id.in_(ids), (GateRow.state == GateState.OPEN)
                                                      | (GateRow.outcome == Outcome.GO)).order_by(GateRow.id))
    for gate in gate_rows:
        view = by_id[gate.engagement_id]
        if gate.state is GateState.OPEN:
            view.open_gates.append(gate)
        elif gate.phase is Phase.SELECTION:
            continue  # G0's GO is the decision to sign, not value delivered
        elif gate.decided_at is not None and (view.first_go_at is None or gate.decided_at < view.first_go_at):
            view.first_go_at = gate.decided_at
    open_ids = {g.id: g.engagement_id for v in by_id.values() for g in v.open_gates}
    if open_ids:
        for d in session.scalars(select(DecisionRow).where(DecisionRow.gate_id.in_(list(open_ids)))
                                 .order_by(DecisionRow.id)):
            by_id[open_ids[d.gate_id]].decisions.setdefault(d.gate_id, []).append(d)

    columns: list[Any] = [WeeklyReportRow.subject, WeeklyReportRow.week, WeeklyReportRow.rag,
                          WeeklyReportRow.message_ts, WeeklyReportRow.chart_path, WeeklyReportRow.chart_file_id]
    if report_bodies:
        columns.append(WeeklyReportRow.body)
    for found in session.execute(select(*columns).where(WeeklyReportRow.kind == ReportKind.ENGAGEMENT,
                                                        WeeklyReportRow.subject.in_(ids))
                                 .order_by(WeeklyReportRow.week)):
        by_id[found[0]].reports.append(LastReport(found[1], Rag(found[2]), found[6] if report_bodies else None,
                                                  LastReport.finished(found[3], found[4], found[5])))

    # Always (one query): the data-deletion attestation decides a colour `status` shows too.
    for event in handoff.events_of(session, ids):
        view = by_id[event.engagement_id]
        if event.kind is AuditKind.ROSTER_CHANGED:
            view.team_changes.append(handoff.change_of(event))
        else:
            view.checks.append(handoff.attested_of(event))
    if full:
        _full(session, ids, by_id)
    return [by_id[i] for i in ids]


def _full(session: Session, ids: list[str], by_id: dict[str, LedgerView]) -> None:
    for link in session.scalars(select(MilestoneLinkRow).where(MilestoneLinkRow.engagement_id.in_(ids))):
        view = by_id[link.engagement_id]
        if link.phase is view.row.current_phase:
            view.links[link.milestone] = link.issue_key
    for a in session.scalars(select(AttestationRow).where(AttestationRow.engagement_id.in_(ids))
                             .order_by(AttestationRow.id)):
        by_id[a.engagement_id].attestations[(a.phase, a.milestone)] = (a.attested_by, a.created_at)
    for m in session.scalars(select(MetricSubmissionRow).where(MetricSubmissionRow.engagement_id.in_(ids))
                             .order_by(MetricSubmissionRow.id)):
        by_id[m.engagement_id].submitted[m.metric] = m.value
    for b in session.scalars(select(BaselineRow).where(BaselineRow.engagement_id.in_(ids))
                             .order_by(BaselineRow.version)):
        view = by_id[b.engagement_id]
        view.baselines.append((b.version, b.created_at))
        first = view.scope_items[0] if view.scope_items else count_items(b.scope)
        view.scope_items, view.baseline_scope = (first, count_items(b.scope)), b.scope


@functools.lru_cache(maxsize=4096)  # the hourly run asks for every week since registration, every hour
def iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"

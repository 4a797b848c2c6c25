"""`phasegate status` from the status columns: one row per engagement, nothing decoded.

The engagement's projection row (phasegate.ledger.models.status, written with every change) holds
what the engagement file and the slow-moving ledger rows say; open gates and their answers are read
as they are. With `now`, that gives the same rows as phasegate.reports.portfolio.status_rows, which
decodes every engagement file (tests/test_status_columns.py compares the two), in six queries and
without SQLAlchemy, pydantic or the engagement schema (phasegate.ledger.read).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from phasegate.errors import NotFound
from phasegate.ledger import tables
from phasegate.ledger.read import Reader, listed
from phasegate.reports.rules import fired
from phasegate.rules.calendar import business_days_elapsed
from phasegate.states import AuditKind, EngagementState, GateState, Rag

if TYPE_CHECKING:
    from phasegate.reports.model import WeeklyReport

ACTIVE = (EngagementState.ACTIVE, EngagementState.REGISTERED)


@dataclass(frozen=True)
class Page:
    ids: list[str]  # the engagements shown, by id
    matching: int  # how many the filter matched in all
    finished: int  # completed or closed engagements left out (0 with `finished=True`)


def page(conn: Reader, *, limit: int | None, finished: bool) -> Page:
    """Which engagements a status view shows: those in progress (with `finished`, every one), by id,
    the first `limit` (None: all). Two queries, whatever the size of the ledger."""
    active, params = listed("state", [state.value for state in ACTIVE])
    counts = {r.state: r.n for r in conn.rows("SELECT state, count(*) AS n FROM engagements GROUP BY state",
                                              decoded=[tables.engagements])}
    matching = sum(n for state, n in counts.items() if finished or state in ACTIVE)
    ids: list[str] = [r.id for r in conn.rows(
        "SELECT id FROM engagements" + ("" if finished else f" WHERE state IN {active}") + " ORDER BY id"
        + ("" if limit is None else " LIMIT :limit"), params | {"limit": limit})]
    return Page(ids, matching, 0 if finished else sum(counts.values()) - matching)


DATA_DELETED = "data-deleted"  # phasegate.rules.handoff's (not imported here: it loads the file's schema)


@dataclass
class _Gate:
    name: str
    overdue: bool


@dataclass
class _Totals:
    done: int = 0
    total: int = 0


@dataclass
class _Budget:
    over: list[str]
    near: list[str] = field(default_factory=list)  # not kept in the columns: the weekly report says it


@dataclass
class _Sponsor:  # the data-deletion deadline and the running checks: the weekly report's, not kept here
    deletion: str | None = None
    checks: list[Any] | None = None


@dataclass
class _Changes:
    drift_count: int = 0


@dataclass
class _LedgerOnly:
    """What the RAG rules read of a report built from the ledger alone (phasegate.reports.build.from_ledger):
    no milestones, metrics, drift or missing evidence, which need Jira and the metric sources."""

    today: dt.date
    timebox_ends_on: dt.date | None
    booked_weeks: int | None
    gates: list[_Gate]
    budget: _Budget
    totals: _Totals = field(default_factory=_Totals)
    metrics: list[Any] = field(default_factory=list)
    missing: list[Any] = field(default_factory=list)
    change_requests: _Changes = field(default_factory=_Changes)
    sponsor: _Sponsor = field(default_factory=_Sponsor)


def rows(conn: Reader, now: dt.datetime, engagement_ids: list[str]) -> list[dict[str, Any]]:
    """One dict per engagement of `engagement_ids` (in id order), as portfolio.status_rows gives."""
    e, s, g = tables.engagements, tables.engagement_status, tables.gates
    ids, params = listed("id", engagement_ids)
    found = conn.rows(f"SELECT {e.names('e')}, {s.names('s', leave_out=('gates',))} FROM engagements e "
                      f"LEFT OUTER JOIN engagement_status s ON s.engagement_id = e.id WHERE e.id IN {ids} "
                      "ORDER BY e.id", params, [e, s])
    open_gates: dict[str, list[Any]] = defaultdict(list)
    for gate in conn.rows(f"SELECT {g.names()} FROM gates WHERE engagement_id IN {ids} AND state = :open "
                          "ORDER BY id", params | {"open": GateState.OPEN.value}, [g]):
        open_gates[gate.engagement_id].append(gate)
    policies: dict[str, dict[str, Any]] = defaultdict(dict)  # decoded only for engagements with an open gate
    if open_gates:
        having, params = listed("id", list(open_gates))
        for r in conn.rows(f"SELECT engagement_id, gates FROM engagement_status WHERE engagement_id IN {having}",
                           params, [s]):
            policies[r.engagement_id] = r.gates
    answered: dict[int, set[str]] = defaultdict(set)
    gate_ids = [gate.id for found_gates in open_gates.values() for gate in found_gates]
    if gate_ids:
        asked, params = listed("gate", gate_ids)
        for answer in conn.rows(f"SELECT gate_id, approver FROM decisions WHERE gate_id IN {asked}", params):
            answered[answer.gate_id].add(answer.approver)
    days: dict[str, tuple[ZoneInfo, dt.date]] = {}  # by timezone: the zone and its date now
    for r in found:
        if r.timezone is None:
            raise NotFound(f"{r.id} has no status columns: run `phasegate db upgrade`")
        if r.timezone not in days:
            days[r.timezone] = (ZoneInfo(r.timezone), now.astimezone(ZoneInfo(r.timezone)).date())
    deleted = _deleted(conn, [r.id for r in found if r.deletion_deadline is not None
                              and r.deletion_deadline < days[r.timezone][1]])
    return [_row(r, open_gates[r.id], policies[r.id], answered, now, *days[r.timezone], deleted) for r in found]


def _deleted(conn: Reader, engagement_ids: list[str]) -> set[str]:
    """Of the engagements past their data-deletion deadline, those whose client attested the deletion
    (the latest `data-deleted` attestation holds): one query, only when there are any."""
    if not engagement_ids:
        return set()
    ids, params = listed("id", engagement_ids)
    latest: dict[str, bool] = {}
    for r in conn.rows(f"SELECT engagement_id, payload FROM audit_events WHERE engagement_id IN {ids} "
                       "AND kind = :kind AND subject = :subject ORDER BY seq",
                       params | {"kind": AuditKind.CHECK_ATTESTED.value, "subject": DATA_DELETED},
                       [tables.audit_events]):
        latest[r.engagement_id] = bool((r.payload or {}).get("holds"))
    return {engagement_id for engagement_id, holds in latest.items() if holds}


def _row(r: Any, gates: list[Any], policies: dict[str, Any], answered: dict[int, set[str]], now: dt.datetime,
         tz: ZoneInfo, today: dt.date, deleted: set[str]) -> dict[str, Any]:
    shown, blocking = [], set()
    for gate in gates:
        policy = policies[gate.phase.value]
        pending = [name for user, name in policy["approvers"]
                   if user not in answered[gate.id] and user != gate.requested_by]
        blocking.update(pending)
        overdue = gate.overdue_at is not None or business_days_elapsed(
            gate.opened_at, now, tz, policy["reminder_hour"]) >= policy["escalate_after"]
        shown.append(_Gate(f"{r.id}/{gate.phase.gate}", overdue))
    facts = _LedgerOnly(today=today, timebox_ends_on=r.timebox_ends_on, booked_weeks=r.booked_weeks or None,
                        gates=shown, budget=_Budget(["over"] if r.over_budget else [], ["near"] if r.near_cap else []),
                        sponsor=_Sponsor(deletion="overdue" if r.deletion_deadline is not None
                                         and today > r.deletion_deadline and r.id not in deleted else None))
    findings = fired(cast("WeeklyReport", facts))  # the same rules, on the fields they read
    rag = max((f.rag for f in findings), key=lambda c: c.rank, default=Rag.GREEN)
    last: Rag | None = r.last_report_rag
    if last is not None:
        rag = max((rag, last), key=lambda c: c.rank)
    return {
        "id": r.id, "name": r.name, "state": r.state.value,
        "phase": r.current_phase.value if r.current_phase else None,
        "week": (today - r.phase_started).days // 7 + 1 if r.phase_started else None,
        "planned_weeks": r.planned_weeks, "rag": rag.value,
        "rag_reasons": [f.reason for f in findings] + (
            [f"last weekly report ({r.last_report_week}) was {last.value}"] if last and last is not Rag.GREEN else []),
        "open_gates": [x.name for x in shown], "overdue_gates": [x.name for x in shown if x.overdue],
        "blocking": sorted(blocking),
        "timebox_ends_on": r.timebox_ends_on.isoformat() if r.timebox_ends_on else None,
        "last_report": r.last_report_week,
    }

"""Collect weekly reports for many engagements at once, and deliver them with the portfolio digest.

Why threads with a bound: each engagement spends its time waiting on Jira and metric servers, so a
few at a time cut the wall time without hammering Jira (whose 429 answers carry Retry-After, which
the tracker's session honours). Jira clients are made up front, one per site, in this thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from phasegate.changes import jira_import as cr_import
from phasegate.errors import EXPECTED, ServiceUnavailable
from phasegate.gates import collection
from phasegate.integrations.issue_tracker import JiraTracker
from phasegate.ledger.db import transaction
from phasegate.orchestration.runtime import Runtime
from phasegate.reports import deliver as delivery
from phasegate.reports import portfolio, rules, schedule
from phasegate.reports.build import build
from phasegate.reports.facts import LedgerView, views
from phasegate.reports.model import Missing, WeeklyReport
from phasegate.reports.schedule import Due
from phasegate.states import Rag, ReportKind


@dataclass
class Collected:
    reports: list[WeeklyReport] = field(default_factory=list)  # by engagement, oldest week first
    failures: dict[str, str] = field(default_factory=dict)  # engagement id -> why no report was built


def due(rt: Runtime, now: dt.datetime, only: Sequence[str] | None = None, *,
        force: bool = False) -> dict[str, list[Due]]:
    """Active engagements -> the weeks they are owed a report for (phasegate.reports.schedule.owed),
    oldest first; with `force`, every active engagement, this local week included whatever the time.
    This local week's report, posted with missing evidence, is collected again by every run of the
    week until it is complete (`deliver.complete` then updates its message and row)."""
    with transaction(rt.sessions) as session:
        found = views(session, only, full=False)
        current = {v.row.id: schedule.current(v.config, now) for v in found if v.row.state in portfolio.ACTIVE}
        unfinished = delivery.incomplete(session, {key: due.week for key, due in current.items()})
        again = {key: Due(row.week, row.due_at or current[key].at, late=bool(row.body.get("late")))
                 for key, row in unfinished.items()}
    owed = {}
    for view in found:
        if view.row.state not in portfolio.ACTIVE:
            continue
        weeks = schedule.owed(view.config, view.row.created_at, now, {r.week for r in view.reports if r.done})
        this = current[view.row.id]
        if force and this.week not in {d.week for d in weeks}:
            weeks.append(this)
        if view.row.id in again and this.week not in {d.week for d in weeks}:  # posted incomplete: read again
            weeks.append(again[view.row.id])
        if weeks:
            owed[view.row.id] = weeks
    return owed


def collect(rt: Runtime, wanted: Mapping[str, Sequence[Due]] | Sequence[str], now: dt.datetime, *,
            workers: int | None = None, done: Callable[[str], None] | None = None) -> Collected:
    """Build each engagement's report, `workers` at a time, once for each week it is `wanted` for (what
    `due` answers; a plain list of ids: this local week); `done(id)` is called as each finishes.

    An engagement owed several weeks (after an outage) is read once; each week's report is that
    reading, with its own week, due time and lateness."""
    weeks: Mapping[str, Sequence[Due]] = wanted if isinstance(wanted, Mapping) else dict.fromkeys(wanted, ())
    engagement_ids = list(weeks)
    with transaction(rt.sessions) as session:
        found = views(session, engagement_ids, full=True, report_bodies=True)
    trackers: dict[str, tuple[JiraTracker | None, str]] = {}
    for view in found:
        try:
            trackers[view.row.id] = (rt.tracker(view.config), "")
        except ServiceUnavailable as exc:
            trackers[view.row.id] = (None, str(exc))
    result = Collected()
    imports = {view.row.id: cr_import.import_requests(rt.sessions, view.config, tracker, rt.chat)
               for view in found if (tracker := trackers[view.row.id][0]) is not None}
    if any(i.filed or i.revised for i in imports.values()):  # the reports show the requests just filed or revised
        with transaction(rt.sessions) as session:
            found = views(session, engagement_ids, full=True, report_bodies=True)

    def one(view: LedgerView) -> list[WeeklyReport]:
        tracker, why = trackers[view.row.id]
        owed = list(weeks[view.row.id]) or [schedule.current(view.config, now)]

        def read(outages: collection.Outages) -> WeeklyReport:
            watched = collection.WatchedTracker(tracker, outages) if tracker is not None else None
            return build(view, tracker=watched, unavailable=why, read_json=collection.watched_reader(rt.read_json, outages),
                         now=now, metrics_base_url=rt.settings.metrics_base_url, week=owed[0].week)

        s = rt.settings  # a passing outage is read again as a gate's evidence is (phasegate.gates.collection);
        # still failing, each source is in `missing` with its reason, and the week is collected again (due)
        report, _ = collection.reread(read, attempts=s.evidence_attempts, wait=s.evidence_retry_seconds,
                                      max_wait=s.evidence_max_wait_seconds, sleep=rt.sleep)
        problems = imports[view.row.id].problems if view.row.id in imports else []
        report.change_requests.jira = imports[view.row.id].reported if view.row.id in imports else []
        if problems:
            report.missing += [Missing(source="change requests from Jira", reason=p) for p in problems]
            report.rag, report.findings = rules.evaluate(report)
        return [report.model_copy(update={"week": d.week, "due_at": d.at, "late": d.late}, deep=True)
                for d in owed]

    with ThreadPoolExecutor(max_workers=workers or rt.settings.weekly_concurrency) as pool:
        futures = {pool.submit(one, view): view.row.id for view in found}
        for future in as_completed(futures):
            engagement_id = futures[future]
            try:
                result.reports += future.result()
            except EXPECTED as exc:
                result.failures[engagement_id] = str(exc)
            if done is not None:
                done(engagement_id)
    result.reports.sort(key=lambda r: (r.engagement_id, r.week))
    return result


def deliver_all(rt: Runtime, reports: Sequence[WeeklyReport], *, post: bool) -> tuple[list[delivery.Delivery],
                                                                                       dict[str, str]]:
    """Deliver each report; a Slack failure for one engagement does not stop the others."""
    done, failures = [], {}
    with transaction(rt.sessions) as session:
        channels = {v.row.id: v.config.slack_channel for v in views(session, [r.engagement_id for r in reports],
                                                                     full=False)}
    for report in reports:
        try:
            done.append(delivery.deliver(rt.sessions, rt.chat, report, channel=channels[report.engagement_id],
                                         home=rt.settings.home, post=post))
        except EXPECTED as exc:
            failures[report.engagement_id] = str(exc)
    return done, failures


def post_digest(rt: Runtime, now: dt.datetime) -> tuple[str, bool] | None:
    """Post the portfolio digest once per ISO week (UTC), once every active engagement has this
    week's report recorded; (its ts, whether this call posted it), or None when there is no
    channel or it is not time yet."""
    channel = rt.settings.portfolio_channel
    if not channel:
        return None
    week = delivery.today_week(now)
    with transaction(rt.sessions) as session:
        rows = portfolio.status_rows(session, now)
        active = [r for r in rows if r["state"] == "active"]
        if any(r["last_report"] is None or r["last_report"] < week for r in active):
            return None
        rag = max((Rag(r["rag"]) for r in rows), key=lambda c: c.rank, default=Rag.GREEN)
        delivery.save(session, ReportKind.PORTFOLIO, "", week, rag, {"engagements": rows})
    ts, posted_now = delivery.post_once(rt.sessions, rt.chat, ReportKind.PORTFOLIO, "", week, channel,
                                        f"Portfolio, week {week}: {len(rows)} engagements",
                                        portfolio.digest_blocks(rows, week))
    return (ts, posted_now) if ts else None

"""One engagement's weekly report, from the ledger's view plus Jira and the metric sources.

`from_ledger` needs no outside service (what `phasegate status` uses); `build` adds milestone
progress, metric trends and the burn-up series. A source that fails shows as missing evidence
with its reason, and the rest of the report is still delivered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from phasegate.configs.schema import Comparator, Engagement, Phase
from phasegate.ledger.change_requests import not_estimated
from phasegate.ledger.gates import latest_answers
from phasegate.ledger.models import ChangeRequestRow
from phasegate.reports import forecast, progress, rules, sponsor
from phasegate.reports.facts import LedgerView, iso_week
from phasegate.reports.model import (
    Budget,
    ChangeRequests,
    DriftIssue,
    HandoverItem,
    MetricTrend,
    Missing,
    OpenGate,
    WeeklyReport,
)
from phasegate.rules import calendar, policy
from phasegate.rules.budget import money, ownership_line
from phasegate.rules.budget import status as budget_status
from phasegate.rules.change_requests import figure
from phasegate.rules.drift import Drift
from phasegate.rules.evidence import LedgerFacts, MetricReader, Tracker, metric_evidence, scope_drift
from phasegate.states import ChangeRequestState, Rag


def names(engagement: Engagement) -> dict[str, str]:
    """Slack user id -> the name the engagement file gives (`Engagement.names`)."""
    return engagement.names()


def change_requests(view: LedgerView) -> ChangeRequests:
    """Every change request with where it stands, and cumulative scope growth against the first
    baseline. Drift needs Jira, so `build` adds it."""
    cur = view.config.budget.currency

    def cost(cr: ChangeRequestRow) -> str:
        return "not estimated" if "cost" in not_estimated(cr) else f"{money(cr.cost)} {cur}"

    items = [f"CR-{cr.number} {cr.title}: {cr.state.value} ({cr.phase.value}, cost {cost(cr)}, "
             f"schedule {figure(cr.schedule_days, 'schedule_days', not_estimated(cr), ' days')})"
             for cr in view.change_requests]
    growth = None
    if view.scope_items is not None and view.scope_items[0]:
        first, current = view.scope_items
        growth = round((current - first) / first * 100, 1)
    return ChangeRequests(items=items, note="none" if not items else "", growth_percent=growth)


def budget(view: LedgerView) -> Budget:
    """Recorded spend against the PoC cap and the team cost, and approved changes plus extensions
    against the change budget (phasegate.rules.budget says how an extension is priced)."""
    b = view.config.budget
    status = budget_status(view.config, spent=view.spent, approved_changes=sum(
        cr.cost for cr in view.change_requests if cr.state is ChangeRequestState.APPROVED), extensions=view.extensions)
    return Budget(currency=b.currency, poc_cap=b.poc_cap, change_budget=b.change_budget,
                  spent=status.total_spent if view.spent else None,
                  note="" if view.spent else "no spend recorded yet", lines=status.lines(),
                  over=[status.line(line) for line in status.over], near=[status.line(line) for line in status.near],
                  tco=ownership_line(view.config))


def open_gates(view: LedgerView, now: dt.datetime) -> list[OpenGate]:
    config, who = view.config, names(view.config)
    found = []
    for gate in view.open_gates:
        gate_policy = config.phases.of(gate.phase).gate
        latest = latest_answers(view.decisions.get(gate.id, []))
        pending = [who.get(a.slack_user, a.slack_user) for a in gate_policy.approvers
                   if a.slack_user not in latest and a.slack_user != gate.requested_by]
        waited = calendar.business_days_elapsed(gate.opened_at, now, config.tz, gate_policy.reminder_hour)
        found.append(OpenGate(
            gate_id=gate.id, name=gate.name, opened_at=gate.opened_at, age_days=(now - gate.opened_at).days,
            quorum=policy.describe(gate_policy), pending=pending,
            answered=[f"{who.get(u, u)} ({d.outcome.label})" for u, d in latest.items()],
            overdue=gate.overdue_at is not None or waited >= gate_policy.escalate_after_business_days))
    return found


def from_ledger(view: LedgerView, now: dt.datetime, week: str | None = None) -> WeeklyReport:
    """Everything the ledger alone says; status set by the rules that need nothing more. The report is
    for `week` (default: the local week of `now`), with what the ledger says at `now`."""
    config, row = view.config, view.row
    today = now.astimezone(config.tz).date()
    phase = row.current_phase
    report = WeeklyReport(
        engagement_id=row.id, name=row.name, week=week or iso_week(today), generated_at=now, today=today,
        timezone=config.timezone,
        state=row.state.value, phase=phase, budget=budget(view), change_requests=change_requests(view),
        week_of_phase=(today - view.phase_started).days // 7 + 1 if view.phase_started else None,
        planned_weeks=config.phases.of(phase).planned_weeks if phase else None,
        booked_weeks=view.booked_weeks or None, timebox_ends_on=view.timebox.ends_on if view.timebox else None,
        gates=open_gates(view, now), sponsor=sponsor.sponsor_of(view, now, names(config)))
    if view.first_go_at is not None:  # a GO before start_date (work began early) is value at once, not negative
        days = (view.first_go_at.astimezone(config.tz).date() - config.start_date).days
        report.time_to_value_weeks = max(0.0, round(days / 7, 1))
    report.rag, report.findings = rules.evaluate(report)
    return report


def _trend(engagement: Engagement, phase: Phase | None, name: str, value: float | None, error: str | None,
           previous: Mapping[str, Any]) -> MetricTrend:
    criterion = next((c for c in engagement.phases.of(phase).exit_criteria if c.metric == name), None) if phase else None
    before = previous.get(name)
    trend = MetricTrend(name=name, value=value, error=error, previous=before if isinstance(before, int | float) else None)
    meaning = next((m.meaning for m in engagement.metrics if m.name == name), None)
    if meaning is not None and value is not None:
        trend.meaning = meaning.figure(value) + (f" ({meaning.means})" if meaning.means else "")
    if criterion is not None and criterion.op is not None and criterion.threshold is not None:
        trend.criterion = criterion.label
        trend.better_when_higher = criterion.op in (Comparator.GE, Comparator.GT)
        trend.passes = None if value is None else criterion.op.holds(value, criterion.threshold)
    return trend


def previous_metrics(view: LedgerView, week: str) -> dict[str, Any]:
    """Metric values in the latest earlier report of this engagement (the trend's other end)."""
    for earlier in reversed(view.reports):
        if earlier.week < week and earlier.body:
            metrics = earlier.body.get("metrics")
            if isinstance(metrics, list):
                return {m["name"]: m.get("value") for m in metrics if isinstance(m, dict) and "name" in m}
    return {}


def build(view: LedgerView, *, tracker: Tracker | None, unavailable: str, read_json: MetricReader,
          now: dt.datetime, metrics_base_url: str | None = None, week: str | None = None) -> WeeklyReport:
    """The full report, for `week` (default: the local week of `now`). `unavailable` says why `tracker`
    is None (shown as missing evidence)."""
    report = from_ledger(view, now, week)
    config, phase = view.config, view.row.current_phase
    facts = LedgerFacts(submitted=view.submitted)
    previous = previous_metrics(view, report.week)
    for metric in config.metrics:
        read = metric_evidence(config, metric.name, tracker, read_json, facts, now, metrics_base_url, unavailable)
        report.metrics.append(_trend(config, phase, metric.name, read.value, read.error, previous))
        if read.error:
            report.missing.append(Missing(source=f"metric {metric.name}", reason=read.error))
    if phase is not None:
        milestones = config.phases.of(phase).milestones
        attested = {key: who for (p, key), (who, _) in view.attestations.items() if p is phase}
        found = progress.reads(config, phase, view.links, tracker, unavailable)
        drifted = scope_drift(config, phase, found, LedgerFacts(baseline=view.scope.baseline),
                              None if tracker is not None else unavailable)
        left = drifted.left if drifted is not None else []
        report.milestones, missing, issues = progress.progress(config, milestones, found, attested, left)
        report.missing += missing
        if view.phase_started is not None and issues:
            report.burnup = progress.burnup(issues, start=view.phase_started, today=report.today,
                                            tz=config.tz, baselines=view.baselines, timebox_end=report.timebox_ends_on)
            report.burnup.changes = approved_changes(view.change_requests, config.tz)
            report.forecast = forecast.forecast(report.burnup, today=report.today, seed=f"{config.id}/{report.week}")
            report.burnup.forecast_on = report.forecast.done_by
        if phase is Phase.HANDOVER:
            report.handover = handover(view, report)
        if drifted is not None:
            drift_section(report, drifted, config.jira.url.rstrip("/") + "/browse/")
    report.rag, report.findings = rules.evaluate(report)
    return report


def approved_changes(change_requests: list[ChangeRequestRow], tz: dt.tzinfo) -> list[tuple[dt.date, str]]:
    """The approved change requests, for the chart: (decided on, "CR-n")."""
    return [(cr.decided_at.astimezone(tz).date(), f"CR-{cr.number}") for cr in change_requests
            if cr.state is ChangeRequestState.APPROVED and cr.decided_at is not None]
def drift_section(report: WeeklyReport, found: Drift, browse_url: str) -> None:
    """The drift found, or why it was not checked: a drift check Jira could not answer is missing
    evidence, so it can never leave the report green."""
    if found.error is not None:
        report.missing.append(Missing(source="scope drift", reason=found.error))
    report.change_requests.drift = found.lines(browse_url) if found.count or found.error else []
    report.change_requests.drift_count = found.count
    kept = [[DriftIssue(key=i.key, summary=i.summary, milestone=i.milestone) for i in issues[:25]]
            for issues in (found.items, found.left)]
    report.change_requests.drift_issues, report.change_requests.drift_left = kept


def handover(view: LedgerView, report: WeeklyReport) -> list[HandoverItem]:
    """The handover checklist: each item done or not, and who attested it and when."""
    who = names(view.config)
    items = []
    for m in report.milestones:
        attested = view.attestations.get((Phase.HANDOVER, m.key))
        done = True if attested else (None if m.error else m.counts.total > 0 and m.counts.done == m.counts.total)
        items.append(HandoverItem(key=m.key, title=m.title, done=done,
                                  attested_by=who.get(attested[0], attested[0]) if attested else None,
                                  attested_on=attested[1].astimezone(view.config.tz).date() if attested else None))
    return items


def worst(*colours: Rag) -> Rag:
    return max(colours, key=lambda c: c.rank)

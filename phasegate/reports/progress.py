"""Milestone progress and the burn-up series, read from Jira in as few requests as it allows.

Why batched: a weekly run covers every engagement, and Jira rate-limits. Each JQL milestone is one
paged search (100 issues a page), and all milestones linked to a single issue share one
`key in (...)` search, instead of one request per issue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from phasegate.configs.schema import Engagement, Milestone, Phase
from phasegate.errors import IntegrationError
from phasegate.integrations.jql import build_jql, quote
from phasegate.reports.model import BurnUp, Counts, IssueLink, MilestoneProgress, Missing

SHOWN_ISSUES = 5  # links per milestone in the report; the count covers them all


class Searcher(Protocol):
    def search(self, jql: str, fields: Sequence[str] = ...) -> Sequence[Any]: ...


FIELDS = ("status",)  # the tracker always adds the core fields (status, dates, story points)


@dataclass(frozen=True)
class Issue:
    """What the report needs of one Jira issue."""

    key: str
    status: str
    category: str  # Jira's status category: "new", "indeterminate" or "done"
    points: float | None
    created: dt.datetime | None
    resolved: dt.datetime | None


def _issue(record: Any) -> Issue:
    status = (record.fields.get("status") or {}) if hasattr(record, "fields") else {}
    category = str((status.get("statusCategory") or {}).get("key") or ("done" if record.done else "new"))
    return Issue(record.key, record.status, category, record.story_points, record.created_at, record.resolved_at)


def counts(issues: Sequence[Issue]) -> Counts:
    c = Counts()
    for i in issues:
        if i.category == "done":
            c.done += 1
            c.points_done += i.points or 0.0
        elif i.category == "indeterminate":
            c.in_progress += 1
        else:
            c.to_do += 1
        c.points_total += i.points or 0.0
    return c


def milestone_issues(engagement: Engagement, phase: Phase, links: Mapping[str, str], tracker: Searcher | None,
                     unavailable: str) -> tuple[dict[str, list[Issue]], dict[str, str]]:
    """(issues per milestone key, error per milestone key) for the phase's Jira milestones."""
    found: dict[str, list[Issue]] = {}
    errors: dict[str, str] = {}
    milestones = engagement.phases.of(phase).milestones
    linked = {m.key: (m.jira_issue or links.get(m.key)) for m in milestones if m.jql is None}
    for key, issue_key in linked.items():
        if issue_key is None:
            errors[key] = "no Jira issue linked yet"
    if tracker is None:
        for m in milestones:
            errors.setdefault(m.key, unavailable)
        return found, errors
    keys = sorted({k for k in linked.values() if k})
    if keys:
        jql = f"key in ({', '.join(quote(k) for k in keys)}) ORDER BY key ASC"
        try:
            by_key = {i.key: i for i in map(_issue, tracker.search(jql, FIELDS))}
        except IntegrationError as exc:
            by_key, reason = {}, str(exc)
            for key, issue_key in linked.items():
                if issue_key:
                    errors[key] = reason
        for key, issue_key in linked.items():
            if issue_key and key not in errors:
                if issue_key in by_key:
                    found[key] = [by_key[issue_key]]
                else:
                    errors[key] = f"issue {issue_key} not found or not visible"
    for m in milestones:
        if m.jql is None:
            continue
        try:
            jql = build_jql(engagement.jira.project, m.jql, deployment=engagement.jira.deployment)
            found[m.key] = [_issue(r) for r in tracker.search(jql, FIELDS)]
        except IntegrationError as exc:
            errors[m.key] = str(exc)
    return found, errors


def progress(engagement: Engagement, milestones: Sequence[Milestone], issues: Mapping[str, list[Issue]],
             errors: Mapping[str, str], attested: Mapping[str, str]) -> tuple[list[MilestoneProgress], list[Missing]]:
    """Per milestone: counts and links; a milestone attested in the ledger counts as done."""
    browse = engagement.jira.url.rstrip("/") + "/browse/"
    rows: list[MilestoneProgress] = []
    missing: list[Missing] = []
    for m in milestones:
        base = MilestoneProgress(key=m.key, title=m.title, required=m.required,
                                 owner=m.owner.value if m.owner is not None else None)
        if m.attestation and m.key in attested:
            rows.append(base.model_copy(update={"counts": Counts(done=1)}))
            continue
        if m.key in errors:
            rows.append(base.model_copy(update={"error": errors[m.key]}))
            missing.append(Missing(source=f"milestone {m.key}", reason=errors[m.key]))
            continue
        found = issues.get(m.key, [])
        links = [IssueLink(key=i.key, status=i.status, url=browse + i.key) for i in found[:SHOWN_ISSUES]]
        rows.append(base.model_copy(update={"counts": counts(found), "issues": links}))
    return rows, missing


def burnup(issues: Sequence[Issue], *, start: dt.date, today: dt.date, tz: dt.tzinfo,
           baselines: Sequence[tuple[int, dt.datetime]], timebox_end: dt.date | None) -> BurnUp:
    """Scope (issues known by each date) and done (resolved by each date), weekly from the start.

    Story points are the unit when every issue has an estimate; otherwise issues are counted, so a
    few unestimated issues cannot make the scope line lie.
    """
    use_points = bool(issues) and all(i.points is not None for i in issues)

    def weight(i: Issue) -> float:
        return float(i.points or 0.0) if use_points else 1.0

    dates = [start + dt.timedelta(weeks=n) for n in range(max(0, (today - start).days) // 7 + 1)]
    if dates[-1] != today and today > start:
        dates.append(today)
    scope, done = [], []
    for day in dates:
        scope.append(sum(weight(i) for i in issues if i.created is None or i.created.astimezone(tz).date() <= day))
        done.append(sum(weight(i) for i in issues if i.category == "done" and i.resolved is not None
                        and i.resolved.astimezone(tz).date() <= day))
    marks = [(when.astimezone(tz).date(), version) for version, when in baselines]
    return BurnUp(unit="story points" if use_points else "issues", dates=dates, scope=scope, done=done,
                  baselines=marks, timebox_end=timebox_end)

"""Milestone progress and the burn-up series, read from Jira by the gate's own milestone rules.

Why the gate's rules: a sponsor reads the weekly status as the truth, so a milestone is done in the
report exactly when it would be done at its gate (`phasegate.rules.jira_scope`): its filter's matches
or its own issue with its children, only resolutions the file accepts, never an issue moved to
another project, and an issue of the baseline that left the scope counts as not done. The same
reads give the scope drift (`phasegate.rules.evidence.scope_drift`), so a JQL milestone is searched
once (100 issues a page) for both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phasegate.configs.schema import Engagement, Milestone, Phase
from phasegate.reports.model import BurnUp, Counts, IssueLink, MilestoneProgress, Missing
from phasegate.rules import drift, jira_scope

SHOWN_ISSUES = 5  # links per milestone in the report; the count covers them all


@dataclass(frozen=True)
class Issue:
    """What the report needs of one Jira issue."""

    key: str
    status: str
    category: str  # "done" only when it counts as done (jira_scope); else Jira's "new" or "indeterminate"
    points: float | None
    created: dt.datetime | None
    resolved: dt.datetime | None


def _issue(record: Any, accepted: Sequence[str]) -> Issue:
    status = (record.fields.get("status") or {}) if hasattr(record, "fields") else {}
    category = str((status.get("statusCategory") or {}).get("key") or ("done" if record.done else "new"))
    if jira_scope.counts_as_done(record, accepted):
        category = "done"
    elif category == "done":  # closed as Won't Do, Duplicate, or unresolved: not delivered
        category = "new"
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


def reads(engagement: Engagement, phase: Phase, links: Mapping[str, str], tracker: jira_scope.Reader | None,
          unavailable: str) -> dict[str, jira_scope.MilestoneRead]:
    """Each milestone of the phase read as its gate reads it; `unavailable` says why `tracker` is None."""
    return {m.key: jira_scope.read(engagement, m, m.jira_issue or links.get(m.key), tracker, unavailable)
            for m in engagement.phases.of(phase).milestones}


def records(engagement: Engagement, read: jira_scope.MilestoneRead) -> tuple[list[Any], str | None]:
    """(the issues read for a milestone, why they are no evidence): the gate's refusals."""
    if read.error is not None:
        return [], read.error
    if read.issue is not None and (refused := jira_scope.foreign(engagement, read.asked or "", read.issue)):
        return [], refused
    found = ([read.issue] if read.issue is not None else []) + read.scope
    return found, None if found else "no matching issues"


def progress(engagement: Engagement, milestones: Sequence[Milestone], found: Mapping[str, jira_scope.MilestoneRead],
             attested: Mapping[str, str], left: Sequence[drift.DriftItem] = ()
             ) -> tuple[list[MilestoneProgress], list[Missing], list[Issue]]:
    """Per milestone: counts, links and why it is not done; a milestone attested in the ledger counts
    as done. Also every issue read (for the burn-up)."""
    browse = engagement.jira.url.rstrip("/") + "/browse/"
    accepted = engagement.jira.done_resolutions
    rows: list[MilestoneProgress] = []
    missing: list[Missing] = []
    every: dict[str, Issue] = {}
    for m in milestones:
        base = MilestoneProgress(key=m.key, title=m.title, required=m.required,
                                 owner=m.owner.value if m.owner is not None else None)
        if m.attestation and m.key in attested:
            rows.append(base.model_copy(update={"counts": Counts(done=1)}))
            continue
        issues, error = records(engagement, found[m.key]) if m.key in found else ([], "not read")
        if error is not None:
            rows.append(base.model_copy(update={"error": error}))
            missing.append(Missing(source=f"milestone {m.key}", reason=error))
            continue
        mine = [_issue(r, accepted) for r in issues]
        every.update((i.key, i) for i in mine)
        gone = [i.key for i in left if i.milestone == m.key]
        not_done = [why for r in issues if (why := jira_scope.open_reason(r, accepted)) is not None]
        not_done += [f"{key} left the scope" for key in gone]
        tally = counts(mine)
        tally.to_do += len(gone)
        links = [IssueLink(key=i.key, status=i.status, url=browse + i.key) for i in mine[:SHOWN_ISSUES]]
        rows.append(base.model_copy(update={"counts": tally, "issues": links, "not_done": not_done}))
    return rows, missing, list(every.values())


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

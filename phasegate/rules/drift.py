"""Scope drift (R-CR-4): Jira issues that entered a phase's scope after its baseline and are
covered by no approved change request.

A phase's scope in Jira is what its milestones point at: the issues a milestone's JQL filter
matches (epic, labels, fix version, component), and the children of a milestone's own issue (the
stories filed under it). When a phase's baseline is recorded, these keys are stored with it
(`issues` in the baseline's scope, per phase). Later, anything in scope that the baseline did not
hold is drift unless an approved change request of that phase names its key, in a scope item
("ACME-42 SHAP report") or as its Jira issue. Drift is how "just one more model" shows up
before it has quietly eaten the timebox.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from phasegate.configs.schema import Engagement, Phase
from phasegate.integrations.jql import IssueFilter, build_jql
from phasegate.rules.change_requests import Draft
from phasegate.text import literal

ISSUE_KEY = re.compile(r"\b[A-Z][A-Z0-9_]{0,9}-[0-9]+\b")
SHOWN = 10  # drift lines in a prompt or report; the count covers them all


class Searcher(Protocol):
    def search(self, jql: str, fields: Sequence[str] = ...) -> Sequence[Any]: ...


@dataclass(frozen=True)
class DriftItem:
    key: str
    summary: str
    milestone: str


@dataclass(frozen=True)
class Drift:
    """A phase's drift, or why it could not be checked (`error`)."""

    engagement_id: str
    phase: Phase
    items: list[DriftItem] = field(default_factory=list)
    error: str | None = None

    def lines(self, browse_url: str = "") -> list[str]:
        """One warning line per drifted issue (the first SHOWN), or the reason it was not checked.

        Plain text; with `browse_url` each key is a link to it and the lines are Slack mrkdwn, the
        Jira summaries and the reason rendered by `phasegate.text.literal`."""
        def shown_as(text: str) -> str:
            return literal(text) if browse_url else text

        if self.error:
            return [f"scope drift not checked: {shown_as(self.error)}"]
        shown = [f"{_link(i.key, browse_url)}{' ' + shown_as(i.summary) if i.summary else ''} (under {i.milestone}) "
                 f"entered the {self.phase.value} scope after the baseline, with no approved change request"
                 for i in self.items[:SHOWN]]
        if len(self.items) > SHOWN:
            shown.append(f"… and {len(self.items) - SHOWN} more (`phasegate cr drift {self.engagement_id}`)")
        return shown


def _link(key: str, browse_url: str) -> str:
    return f"<{literal(browse_url + key)}|{literal(key)}>" if browse_url else key


def scope_issues(engagement: Engagement, phase: Phase, links: Mapping[str, str], tracker: Searcher,
                 already: Mapping[str, Sequence[Any]] | None = None) -> dict[str, list[Any]]:
    """milestone key -> the Jira issues in its scope now (IntegrationError when Jira cannot say).
    `already`: JQL milestones' issues searched moments ago (the weekly report's progress), not
    searched twice."""
    found: dict[str, list[Any]] = {}
    project, deployment = engagement.jira.project, engagement.jira.deployment
    for m in engagement.phases.of(phase).milestones:
        if m.jql is not None and already is not None and m.key in already:
            found[m.key] = list(already[m.key])
        elif m.jql is not None:
            found[m.key] = list(tracker.search(build_jql(project, m.jql, deployment=deployment)))
        elif (issue := m.jira_issue or links.get(m.key)) is not None:
            found[m.key] = list(tracker.search(build_jql(project, IssueFilter(epic=issue), deployment=deployment)))
    return found


def keys_of(found: Mapping[str, Sequence[Any]]) -> list[str]:
    return sorted({i.key for issues in found.values() for i in issues})


def baseline_keys(scope: Mapping[str, Any], phase: Phase) -> set[str] | None:
    """The keys a baseline recorded for the phase; None when it recorded none (Jira was down, or
    the baseline predates drift tracking)."""
    issues = scope.get("issues", {}).get(phase.value)
    return set(issues) if isinstance(issues, list) else None


def keys_named(texts: Iterable[str]) -> set[str]:
    return {k for t in texts for k in ISSUE_KEY.findall(t)}


def find(engagement_id: str, phase: Phase, found: Mapping[str, Sequence[Any]], baseline: set[str],
         covered: set[str]) -> Drift:
    items: dict[str, DriftItem] = {}
    for milestone, issues in found.items():
        for issue in issues:
            if issue.key not in baseline and issue.key not in covered and issue.key not in items:
                items[issue.key] = DriftItem(issue.key, str(getattr(issue, "summary", "")), milestone)
    return Drift(engagement_id, phase, sorted(items.values(), key=lambda i: (len(i.key), i.key)))


def draft(drift: Drift) -> Draft:
    """A change request pre-filled to cover the drift: one scope item per issue, naming its key.
    Effort, schedule and cost are left at 0 for the requester to fill in."""
    keys = ", ".join(i.key for i in drift.items[:5]) + (f" and {len(drift.items) - 5} more" if len(drift.items) > 5
                                                          else "")
    return Draft(title=f"Scope drift in {drift.phase.value}: {keys}"[:150],
                 rationale="Issues entered the phase's scope in Jira after its baseline: "
                           + "; ".join(f"{i.key} {i.summary} (under {i.milestone})" for i in drift.items[:25]),
                 phase=drift.phase, scope_added=tuple(f"{i.key} {i.summary}"[:150] for i in drift.items[:25]))

"""A milestone's issues in Jira: which are read for it, whether they may count, and which are done.

Why one place: a gate's evidence, the scope drift and the baseline all need "the issues a milestone
stands for" and must mean the same set: the issues its JQL filter matches, or its own issue with
that issue's children (the issues in its epic and its sub-tasks), always within the engagement's
Jira project. A milestone issue is not delivered while the work filed under it is open, and an
issue closed as "Won't Do" or "Duplicate" is not delivered either: only a "done" status resolved
as one of the file's `jira.done_resolutions` (default Done, Fixed) counts.

    read(engagement, milestone, "ACME-2", tracker)  # MilestoneRead(issue=ACME-2, scope=[its children])
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from phasegate.configs.schema import Engagement, Milestone
from phasegate.errors import IntegrationError
from phasegate.integrations.jql import IssueFilter, build_jql


class Searcher(Protocol):
    def search(self, jql: str) -> Sequence[Any]: ...


class Reader(Searcher, Protocol):
    def get(self, key: str) -> Any: ...


@dataclass(frozen=True)
class MilestoneRead:
    """What Jira showed for one milestone: its own issue (`issue`, read for key `asked`, when it is
    linked to one), the issues in its scope now (its filter's matches, or its issue's children), or
    why it could not be read. No `query`: there was nothing to read (no issue linked yet)."""

    query: str
    asked: str | None = None
    issue: Any | None = None
    scope: list[Any] = field(default_factory=list)
    error: str | None = None


def scope(engagement: Engagement, milestone: Milestone, issue: str | None, tracker: Searcher) -> list[Any]:
    """The issues in one milestone's scope now: those its filter matches, or the children of its own
    issue `issue`. Cloud's `parent` holds both an epic's issues and an issue's sub-tasks; Data
    Center keeps the epic's issues under "Epic Link" and the sub-tasks under `parent`, so it is
    asked both. IntegrationError when Jira cannot say."""
    project, deployment = engagement.jira.project, engagement.jira.deployment
    if milestone.jql is not None:
        return list(tracker.search(build_jql(project, milestone.jql, deployment=deployment)))
    if issue is None:
        return []
    found = {i.key: i for i in tracker.search(build_jql(project, IssueFilter(epic=issue), deployment=deployment))}
    if deployment == "datacenter":
        sub_tasks = build_jql(project, IssueFilter(), deployment=deployment, extra={"parent": issue})
        found.update((i.key, i) for i in tracker.search(sub_tasks) if i.key not in found)
    return list(found.values())


def read(engagement: Engagement, milestone: Milestone, issue: str | None, tracker: Reader | None,
         unavailable: str = "Jira is not configured") -> MilestoneRead:
    """Read a milestone linked to `issue` (its issue, then its children) or tracked by a filter;
    `unavailable` says why `tracker` is None."""
    if milestone.jql is not None:
        query, issue = build_jql(engagement.jira.project, milestone.jql, deployment=engagement.jira.deployment), None
    elif issue is not None:
        query = f"issue {issue}"
    else:
        return MilestoneRead(query="", error="no Jira issue linked")
    if tracker is None:
        return MilestoneRead(query=query, asked=issue, error=unavailable)
    try:
        own = tracker.get(issue) if issue is not None else None
        return MilestoneRead(query=query, asked=issue, issue=own, scope=scope(engagement, milestone, issue, tracker))
    except IntegrationError as exc:
        return MilestoneRead(query=query, asked=issue, error=str(exc))


def foreign(engagement: Engagement, asked: str, record: Any) -> str | None:
    """Why the issue read for key `asked` is not evidence for this engagement, or None. Jira answers
    an issue moved to another project under its old key, from that project: another client's
    work, or work taken out of the engagement, either way not this engagement's evidence."""
    project = engagement.jira.project
    if record.project == project:
        return None
    now = f" (now {record.key})" if record.key != asked else ""
    return (f"{asked} was moved to project {record.project or '?'}{now}, not the engagement's project {project}; "
            "not used as evidence")


def _accepted(resolution: str | None, accepted: Collection[str]) -> bool:
    return resolution is not None and resolution.casefold() in {name.casefold() for name in accepted}


def counts_as_done(record: Any, accepted: Collection[str]) -> bool:
    """In a "done" status and resolved as one of `accepted` (the file's `jira.done_resolutions`)."""
    return bool(record.done) and _accepted(record.resolution, accepted)


def open_reason(record: Any, accepted: Collection[str]) -> str | None:
    """Why the issue does not count as done, in a few words; None when it does."""
    if not record.done:
        return f"{record.key} {record.status or 'open'}"
    if not _accepted(record.resolution, accepted):
        return f"{record.key} {record.status} as {record.resolution}" if record.resolution else \
            f"{record.key} {record.status} but unresolved"
    return None

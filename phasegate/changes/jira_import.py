"""Jira issues filed as change requests: the third way to file one, next to the CLI and Slack.

An engagement file may name a label and/or an issue type (`jira.change_requests`). When evidence
is collected for a gate or the weekly status is collected, the matching issues of the project are
imported: each becomes a change request with the issue's summary as title and its description as
rationale, assessed, and put to the approvers by its own flow. The reporter is the requester: the
person of the engagement file with that Jira account or email, else an outside requester. Once:
the request is keyed by the issue key (a UNIQUE column), so an edit in Jira, or the next collection, files nothing twice.
The effort is the issue's original estimate; without one, and for schedule and cost (which a Jira
issue does not carry), the request says "not estimated" rather than 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from phasegate.configs.schema import Engagement
from phasegate.errors import EXPECTED
from phasegate.integrations.jql import IssueFilter, build_jql
from phasegate.ledger.db import transaction
from phasegate.ledger.engagements import get
from phasegate.ledger.models import ChangeRequestRow
from phasegate.rules import jira_requests as jira_rules
from phasegate.states import ChangeSource, EngagementState

FIELDS = ("summary", "description", "reporter", "timeoriginalestimate")


class Searcher(Protocol):
    def search(self, jql: str, fields: Sequence[str] = ...) -> Sequence[Any]: ...


@dataclass
class Imported:
    filed: list[tuple[str, int]] = field(default_factory=list)  # (issue key, CR number), new ones only
    problems: list[str] = field(default_factory=list)  # issues that could not be filed, and why


def queries(engagement: Engagement) -> list[str]:
    """One JQL search per configured marker (label, issue type): issues with either are imported."""
    config, site = engagement.jira.change_requests, engagement.jira
    if config is None:
        return []
    found = []
    if config.label is not None:
        found.append(build_jql(site.project, IssueFilter(labels=(config.label,)), deployment=site.deployment))
    if config.issue_type is not None:
        found.append(build_jql(site.project, IssueFilter(), deployment=site.deployment,
                               extra={"issuetype": config.issue_type}))
    return found


def content_of(issue: Any, engagement: Engagement) -> jira_rules.Content:
    """What the issue asks for: summary, description and original estimate (in the site's days)."""
    fields = getattr(issue, "fields", {}) or {}
    config = engagement.jira.change_requests
    return jira_rules.content_of(issue.summary, fields.get("description"), fields.get("timeoriginalestimate"),
                                 key=issue.key, hours_per_day=config.day_hours if config else 8.0)


def reporter_of(issue: Any, engagement: Engagement) -> str:
    """The person of the engagement who filed the issue, or `jira:<name>` (phasegate.rules.jira_requests)."""
    reporter = (getattr(issue, "fields", {}) or {}).get("reporter")
    return jira_rules.requester(engagement, reporter if isinstance(reporter, Mapping) else None)


def _ready(session: Session, engagement_id: str) -> set[str] | None:
    """Issue keys already imported, or None when the engagement takes no change requests now."""
    row = get(session, engagement_id)
    if row.state is not EngagementState.ACTIVE or row.current_phase is None:
        return None
    return set(session.scalars(select(ChangeRequestRow.jira_issue).where(
        ChangeRequestRow.engagement_id == engagement_id, ChangeRequestRow.jira_issue.is_not(None))))


def import_requests(sessions: sessionmaker[Session], engagement: Engagement, tracker: Searcher) -> Imported:
    """File the configured Jira issues not filed yet; a Jira outage or a refused issue is reported
    in `problems`, never raised (the collection that called this goes on)."""
    from phasegate.changes import operations as cr_operations  # Prefect's client: only when something is filed

    result = Imported()
    wanted = queries(engagement)
    if not wanted:
        return result
    with transaction(sessions) as session:
        seen = _ready(session, engagement.id)
    if seen is None:
        return result
    issues: dict[str, Any] = {}
    for jql in wanted:
        try:
            issues.update({i.key: i for i in tracker.search(jql, FIELDS)})
        except EXPECTED as exc:
            result.problems.append(f"change requests from Jira not imported: {exc}")
            return result
    for key in sorted(set(issues) - seen, key=lambda k: (len(k), k)):
        try:
            filed = cr_operations.file(sessions, engagement.id, content_of(issues[key], engagement).draft(key),
                                       requested_by=reporter_of(issues[key], engagement), source=ChangeSource.JIRA)
        except EXPECTED as exc:
            result.problems.append(f"{key} not filed as a change request: {exc}")
            continue
        if filed.created:
            result.filed.append((key, filed.number))
            try:
                cr_operations.start_flow(engagement.id, filed.number)
            except EXPECTED as exc:
                result.problems.append(f"{filed.name} (from {key}) is filed, but its approval flow did not start "
                                       f"({exc}); run `phasegate cr prompt {engagement.id} {filed.number}`")
    return result

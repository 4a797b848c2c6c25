"""Milestone evidence from Jira through the `jira` client, Cloud and Data Center alike.

Why this wrapper: the client's defaults do not suit a workflow that must finish or fail
clearly. Cloud removed /search, so Cloud pages /search/jql by token while Data Center keeps
startAt paging; the library's own retry loop can sleep 20-40 s on a refused connection and,
for long Retry-After values, waits less than asked; and its errors are multi-line dumps.
Here every failure becomes one `EvidenceUnavailable` / `ServiceUnavailable` line naming the
site and the step (module is not called jira.py, which would shadow the library).

    client = make_jira_client(site.url, site.deployment, email=..., api_token=..., pat=None)
    tracker = JiraTracker(client, site.deployment)
    tracker.search(build_jql(site.project, milestone.jql, deployment=site.deployment))
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import MappingProxyType
from typing import Any

from jira import JIRA, JIRAError

from phasegate.integrations.errors import EvidenceUnavailable
from phasegate.integrations.jira_client import jira_errors
from phasegate.integrations.jql import IssueFilter, after_key, build_jql

STORY_POINTS = "customfield_10016"
# What an IssueRecord is built from; always requested, whatever else the caller asks for.
CORE_FIELDS: tuple[str, ...] = ("summary", "status", "resolution", "project", "labels", "resolutiondate", "created",
                                STORY_POINTS)
DEFAULT_FIELDS: tuple[str, ...] = (*CORE_FIELDS, "updated", "issuetype", "parent", "fixVersions", "components")


@dataclasses.dataclass(frozen=True)
class IssueRecord:
    key: str
    summary: str
    status: str
    done: bool  # the status is in Jira's "done" category, whatever the workflow calls it
    resolution: str | None  # how it was resolved ("Done", "Won't Do", "Duplicate"); None while unresolved
    project: str  # the project it is in now: a moved issue answers to its old key from its new project
    resolved_at: datetime | None
    story_points: float | None
    labels: tuple[str, ...]
    created_at: datetime | None
    fields: Mapping[str, object] = dataclasses.field(hash=False, repr=False)  # the fields Jira returned
    issue_id: str = ""  # Jira's own id: unlike the key, it stays when the issue moves to another project


class JiraTracker:
    """Reads evidence from one Jira site. A search that cannot be read as one consistent set
    (pages shifted, a paging token repeated, more than `max_pages` pages, or still paging after
    `deadline` seconds on `clock`) is EvidenceUnavailable naming why, never a partial list."""

    def __init__(self, client: JIRA, deployment: str, *, story_points_field: str = STORY_POINTS,
                 page_size: int = 100, max_pages: int = 50, deadline: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.deployment, self.points_field = client, deployment, story_points_field
        self.site = client.server_url
        self.timeout = getattr(client._session, "timeout", None)
        self.page_size, self.max_pages, self.deadline, self.clock = page_size, max_pages, deadline, clock

    def search(self, jql: str, fields: Sequence[str] = DEFAULT_FIELDS) -> list[IssueRecord]:
        """Every matching issue, each once, one request per page (the server may page smaller).

        Data Center pages by key, not by position: the first page is the query itself, each
        later one the query narrowed to keys after the last one read (`after_key`), so an issue
        deleted or added between pages cannot shift an unread issue out of sight or a read one
        into a second page. Cloud pages /search/jql by nextPageToken. POST keeps long JQL out
        of the URL.
        """
        wanted = list(dict.fromkeys([*CORE_FIELDS, self.points_field, *fields]))
        with self._errors("searching issues"):
            pages = self._cloud_pages(jql, wanted) if self.deployment == "cloud" else self._keyset_pages(jql, wanted)
            records: dict[str, IssueRecord] = {}
            started = self.clock()
            for number, page in enumerate(pages, start=1):
                if number > self.max_pages:
                    raise self._incomplete(f"more than {self.max_pages} pages")
                if number > 1 and self.clock() - started > self.deadline:
                    raise self._incomplete(f"still paging after {self.deadline:g} s")
                for raw in page:
                    record = self._record(raw)
                    if record.key in records:
                        raise self._incomplete(f"issue {record.key} came twice, so the pages shifted under the read")
                    records[record.key] = record
            return list(records.values())

    def _keyset_pages(self, jql: str, wanted: list[str]) -> Iterator[list[dict[str, Any]]]:
        query = jql
        while True:
            answer = self.client.search_issues(query, startAt=0, maxResults=self.page_size, fields=wanted,
                                               json_result=True, use_post=True)
            issues: list[dict[str, Any]] = answer["issues"]
            remaining = int(answer["total"])
            if len(issues) >= remaining:
                yield issues
                return
            if not issues:
                raise self._incomplete(f"Jira reported {remaining} more issues but sent none")
            try:
                query = after_key(jql, str(issues[-1]["key"]))
            except ValueError as err:
                raise self._incomplete(f"cannot page by key ({err})") from err
            yield issues

    def _cloud_pages(self, jql: str, wanted: list[str]) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        seen: set[str] = set()
        while True:
            answer = self.client.enhanced_search_issues(jql, nextPageToken=token, maxResults=self.page_size,
                                                        fields=wanted, json_result=True, use_post=True)
            if answer is None:  # the client's cloud-only guard: the site is not what we were told
                raise EvidenceUnavailable(f"Jira at {self.site}: search/jql is Cloud-only but this site is not Cloud")
            yield answer["issues"]
            token = answer.get("nextPageToken")
            if not token or answer.get("isLast"):
                return
            if token in seen:
                raise self._incomplete("Jira sent the same nextPageToken twice")
            seen.add(token)

    def _incomplete(self, why: str) -> EvidenceUnavailable:
        return EvidenceUnavailable(f"Jira at {self.site}: searching issues incomplete: {why}; not used as evidence")

    def get(self, key: str, fields: Sequence[str] = DEFAULT_FIELDS) -> IssueRecord:
        """One issue by key; a missing or invisible issue is EvidenceUnavailable."""
        wanted = list(dict.fromkeys([*CORE_FIELDS, self.points_field, *fields]))
        with self._errors(f"reading issue {key}"):
            return self._record(self.client.issue(key, fields=",".join(wanted)).raw)

    def lookup(self, key_or_id: str, fields: Sequence[str] = DEFAULT_FIELDS) -> IssueRecord | None:
        """One issue by key or id as it is now (a moved issue under its new key), or None when Jira
        answers 404: deleted, or no longer visible to this account."""
        wanted = list(dict.fromkeys([*CORE_FIELDS, self.points_field, "project", *fields]))
        with self._errors(f"reading issue {key_or_id}"):
            try:
                return self._record(self.client.issue(key_or_id, fields=",".join(wanted)).raw)
            except JIRAError as err:
                if err.status_code == 404:
                    return None
                raise

    def ensure_issue(self, project: str, summary: str, marker_label: str, issuetype: str = "Task",
                     description: str = "") -> IssueRecord:
        """The issue in `project` carrying `marker_label`, created (with that label) only if none exists.

        The label is the idempotency key, so a retried flow run finds its earlier issue. Two
        calls racing within Jira's indexing delay could still both create one, so callers
        should not run ensure_issue for the same marker concurrently.
        """
        jql = build_jql(project, IssueFilter(labels=(marker_label,)), deployment=self.deployment)
        existing = self.search(jql)
        if existing:
            return existing[0]
        fields: dict[str, Any] = {"project": {"key": project}, "summary": summary, "issuetype": {"name": issuetype},
                                  "labels": [marker_label]}
        if description:
            fields["description"] = description
        with self._errors(f"creating the {marker_label!r} issue in {project}"):
            created = self.client.create_issue(fields=fields, prefetch=False)
        return self.get(created.key)

    def label_and_link(self, key: str, label: str, related: Sequence[str], link_type: str = "Relates") -> None:
        """Add `label` to an issue (a no-op when it is there) and link it to each related issue.

        A retry adds the label once; links are created on each call, so callers call it once."""
        with self._errors(f"labelling {key}"):
            issue = self.client.issue(key, fields="labels")
            if label not in (issue.raw.get("fields") or {}).get("labels", []):
                issue.update(update={"labels": [{"add": label}]})
        for other in related:
            with self._errors(f"linking {key} to {other}"):
                self.client.create_issue_link(link_type, key, other)

    def field_value(self, key: str, field: str) -> object:
        """One field's raw value; a field the issue does not have is an error, not None."""
        with self._errors(f"reading {field} of {key}"):
            fields = self.client.issue(key, fields=field).raw.get("fields") or {}
        if field not in fields:
            raise EvidenceUnavailable(f"Jira at {self.site}: issue {key} has no field {field!r}")
        return fields[field]

    def _errors(self, what: str) -> AbstractContextManager[None]:
        return jira_errors(self.site, what, self.timeout)

    def _record(self, raw: Mapping[str, Any]) -> IssueRecord:
        fields: Mapping[str, Any] = raw.get("fields") or {}
        status = fields.get("status") or {}
        points = fields.get(self.points_field)
        return IssueRecord(
            key=str(raw["key"]), summary=str(fields.get("summary") or ""), status=str(status.get("name") or ""),
            done=(status.get("statusCategory") or {}).get("key") == "done",
            resolution=str((fields.get("resolution") or {}).get("name") or "") or None,
            project=str((fields.get("project") or {}).get("key") or str(raw["key"]).rsplit("-", 1)[0]),
            resolved_at=_when(fields.get("resolutiondate")),
            story_points=float(points) if isinstance(points, int | float) and not isinstance(points, bool) else None,
            labels=tuple(str(label) for label in fields.get("labels") or ()), created_at=_when(fields.get("created")),
            fields=MappingProxyType(dict(fields)), issue_id=str(raw.get("id") or ""),
        )


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None  # Jira: 2024-05-01T09:30:00.000+0000

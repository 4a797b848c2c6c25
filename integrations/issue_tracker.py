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
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from types import MappingProxyType
from typing import Any

import requests
from jira import JIRA, JIRAError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from phasegate.integrations.errors import EvidenceUnavailable, IntegrationError, ServiceUnavailable, retry_after_seconds
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


class _RetryAfter(Retry):
    """Retry 429/503 answers that carry Retry-After after exactly that wait, nothing else.

    A wait longer than `retry_after_max` is refused rather than shortened: retrying early
    would only be rate-limited again, so the caller gets a clear error instead.
    """

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> _RetryAfter:
        header = response.headers.get("Retry-After") if response is not None else None
        if header is not None and retry_after_seconds(header) > self.retry_after_max:
            raise MaxRetryError(_pool, url or "", ResponseError(f"Retry-After {header} is too long"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


def make_jira_client(url: str, deployment: str, *, email: str | None, api_token: str | None, pat: str | None,
                     timeout: float = 10.0, max_retries: int = 2, max_wait: int = 60) -> JIRA:
    """A connected client: basic auth (email, API token) on Cloud, bearer PAT on Data Center.

    Retries: the library's ResilientSession is set to max_retries=0. Its loop waits
    min(max_retry_delay, 2 * Retry-After) * random(0.5, 1.0), i.e. less than Retry-After once
    the cap bites, cannot read an HTTP-date Retry-After, and sleeps 20 s, 40 s, ... on a
    refused connection. Instead an urllib3 Retry mounted on the session retries only 429/503
    answers carrying Retry-After, at most `max_retries` times, sleeping exactly the asked
    time (seconds or HTTP-date) and refusing waits above `max_wait` seconds. Connection
    errors, timeouts and 503s without Retry-After fail at once as ServiceUnavailable.
    """
    site = url.rstrip("/")
    if deployment not in ("cloud", "datacenter"):
        raise ServiceUnavailable(f"Jira at {site}: unknown deployment {deployment!r} (expected cloud or datacenter)")
    cloud = deployment == "cloud"
    if cloud and not (email and api_token):
        raise ServiceUnavailable(f"Jira at {site}: Jira Cloud needs an account email and an API token")
    if not cloud and not pat:
        raise ServiceUnavailable(f"Jira at {site}: Jira Data Center needs a personal access token")
    client = JIRA(server=site, basic_auth=(str(email), str(api_token)) if cloud else None,
                  token_auth=None if cloud else pat, timeout=timeout, max_retries=0, get_server_info=False)
    retry = _RetryAfter(total=max_retries, connect=0, read=False, other=0, status=max_retries, backoff_factor=0,
                        allowed_methods=None, raise_on_status=False, respect_retry_after_header=True,
                        retry_after_max=max_wait)
    adapter = HTTPAdapter(max_retries=retry)
    client._session.mount("http://", adapter)  # the library offers no public hook for its session
    client._session.mount("https://", adapter)
    hint = "the account email and API token" if cloud else "the personal access token"
    try:
        with _jira_errors(site, "connecting", timeout, hint):
            info = client.server_info()  # what JIRA(get_server_info=True) does, now with our retries
            client.deploymentType = info.get("deploymentType")
            client._version = tuple(info["versionNumbers"])
            client.myself()  # serverInfo answers anonymously; this proves the credentials
        if (info.get("deploymentType") == "Cloud") != cloud:
            raise ServiceUnavailable(f"Jira at {site}: the site reports deploymentType {client.deploymentType!r}, "
                                     f"but the engagement says {deployment!r}")
    except IntegrationError:
        client.close()  # type: ignore[no-untyped-call]  # jira's close() has no annotations
        raise
    return client


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
        return _jira_errors(self.site, what, self.timeout)

    def _record(self, raw: Mapping[str, Any]) -> IssueRecord:
        fields: Mapping[str, Any] = raw.get("fields") or {}
        status = fields.get("status") or {}
        points = fields.get(self.points_field)
        return IssueRecord(
            key=str(raw["key"]), summary=str(fields.get("summary") or ""), status=str(status.get("name") or ""),
            done=(status.get("statusCategory") or {}).get("key") == "done",
            resolution=str((fields.get("resolution") or {}).get("name") or "") or None,
            project=str((fields.get("project") or {}).get("key") or ""),
            resolved_at=_when(fields.get("resolutiondate")),
            story_points=float(points) if isinstance(points, int | float) and not isinstance(points, bool) else None,
            labels=tuple(str(label) for label in fields.get("labels") or ()), created_at=_when(fields.get("created")),
            fields=MappingProxyType(dict(fields)),
        )


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None  # Jira: 2024-05-01T09:30:00.000+0000


def _one_line(text: object, limit: int = 240) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@contextmanager
def _jira_errors(site: str, what: str, timeout: object = None, auth_hint: str = "the credentials") -> Iterator[None]:
    """Turn whatever the client raises into one line that names the site and the step."""
    prefix = f"Jira at {site}: {what} failed"
    try:
        yield
    except IntegrationError:
        raise
    except JIRAError as err:
        status, detail = err.status_code, _one_line(err.text)
        if status in (401, 403):
            raise ServiceUnavailable(f"{prefix}: credentials refused (HTTP {status}); check {auth_hint}") from err
        if status == 429 or (status is not None and status >= 500):
            reason = "rate limited" if status == 429 else "server error"
            wait = err.response.headers.get("Retry-After") if err.response is not None else None
            said = (f": {detail}" if detail else "") + (f"; asked to wait {wait} s" if wait else "")
            raise ServiceUnavailable(f"{prefix}: {reason} (HTTP {status}{said})",
                                     retry_after=retry_after_seconds(wait) if wait else None) from err
        if status == 404:
            raise EvidenceUnavailable(f"{prefix}: not found (HTTP 404{': ' + detail if detail else ''})") from err
        raise EvidenceUnavailable(f"{prefix}: HTTP {status}: {detail or 'no details'}") from err
    except requests.Timeout as err:
        raise ServiceUnavailable(f"{prefix}: no answer within {timeout} s") from err
    except requests.ConnectionError as err:
        cause = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(err))  # e.g. "Connection refused"
        reason = cause.group(1) if cause else type(err).__name__
        raise ServiceUnavailable(f"{prefix}: cannot connect ({reason})") from err
    except requests.RequestException as err:
        raise ServiceUnavailable(f"{prefix}: {_one_line(err)}") from err
    except (KeyError, ValueError, TypeError) as err:
        raise EvidenceUnavailable(f"{prefix}: the answer is not what Jira sends ({_one_line(err)})") from err

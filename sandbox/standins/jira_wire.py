"""The Jira stand-in's wire format: the field catalogue, workflow and link types, how an issue is
rendered and edited as Jira's REST API does, durations, and the paging tokens of the enhanced search."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import re
from typing import Any

from phasegate.sandbox.standins.jql_tokens import JqlError

STORY_POINTS = "customfield_10016"
TRANSITIONS = (("11", "To Do", "new"), ("21", "In Progress", "indeterminate"), ("31", "Done", "done"))
CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
ISSUE_TYPES = {"Epic": "10000", "Task": "10001", "Story": "10002", "Bug": "10003", "Sub-task": "10004"}
LINK_TYPES = {"Relates": ("relates to", "relates to"), "Blocks": ("is blocked by", "blocks")}
FIELD_CATALOG = [  # (id, name, clause names, custom)
    ("summary", "Summary", ["summary"], False), ("status", "Status", ["status"], False),
    ("labels", "Labels", ["labels"], False), ("resolutiondate", "Resolved", ["resolutiondate", "resolved"], False),
    ("created", "Created", ["created", "createdDate"], False),
    ("updated", "Updated", ["updated", "updatedDate"], False),
    ("issuetype", "Issue Type", ["issuetype", "type"], False), ("project", "Project", ["project"], False),
    ("fixVersions", "Fix Version/s", ["fixVersion"], False), ("components", "Component/s", ["component"], False),
    ("parent", "Parent", ["parent"], False), ("description", "Description", ["description"], False),
    ("resolution", "Resolution", ["resolution"], False), ("issuelinks", "Linked Issues", ["issueLink"], False),
    (STORY_POINTS, "Story point estimate", ["cf[10016]", "Story point estimate", "Story Points"], True),
    ("reporter", "Reporter", ["reporter"], False),
    ("timeoriginalestimate", "Original Estimate", ["originalEstimate", "timeoriginalestimate"], False),
    ("timetracking", "Time tracking", [], False),
]
# Jira's default time-tracking settings: what "1d" and "1w" mean in an estimate.
HOURS_PER_DAY, DAYS_PER_WEEK = 8, 5
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhm])")
FIELD_IDS = {field_id for field_id, *_ in FIELD_CATALOG}


def now() -> str:
    """The current time in Jira's timestamp format (millisecond precision, +0000)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def field_list() -> list[dict[str, Any]]:
    """GET /field: the catalog with Jira's schema shapes (system fields, one float custom field)."""
    return [{
        "id": field_id, "key": field_id, "name": name, "custom": custom, "orderable": True, "navigable": True,
        "searchable": True, "clauseNames": clauses,
        "schema": {"type": "number", "customId": int(field_id.rsplit("_", 1)[1]),
                   "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"}
                  if custom else {"system": field_id},
    } for field_id, name, clauses, custom in FIELD_CATALOG]


def transition_list() -> list[dict[str, Any]]:
    """The transitions every issue offers (the workflow is the same from any status)."""
    return [{"id": tid, "name": name, "to": {"name": name, "statusCategory": {"key": cat}}}
            for tid, name, cat in TRANSITIONS]


def link_type_list() -> list[dict[str, str]]:
    return [{"id": str(10000 + n), "name": name, "inward": inward, "outward": outward}
            for n, (name, (inward, outward)) in enumerate(LINK_TYPES.items())]


def edit(issue: dict[str, Any], body: dict[str, Any]) -> None:
    """Apply an edit body's `fields` (replace) and `update` (set/add/remove verbs) to a stored issue."""
    fields = issue["fields"]
    fields.update(body.get("fields") or {})
    for name, operations in (body.get("update") or {}).items():
        for operation in operations:
            for verb, value in operation.items():
                current = list(fields.get(name) or [])
                fields[name] = (value if verb == "set" else current + [value] if verb == "add"
                                else [v for v in current if v != value])
    track(fields)
    fields["updated"] = now()


def seconds(duration: str) -> int | None:
    """Jira's duration text ("3d", "1w 2d 4h", "30m") in seconds at Jira's default 8 h day and 5 d
    week; None for an empty or unreadable one."""
    parts = DURATION_PART.findall(duration.lower())
    if not parts or DURATION_PART.sub("", duration.lower()).strip():
        return None
    unit = {"m": 60, "h": 3600, "d": HOURS_PER_DAY * 3600, "w": DAYS_PER_WEEK * HOURS_PER_DAY * 3600}
    return round(sum(float(number) * unit[u] for number, u in parts))


def track(fields: dict[str, Any]) -> None:
    """Keep an estimate set through `timetracking` (as the edit screen and the API set it) and the
    `timeoriginalestimate` seconds Jira derives from it in step."""
    tracking = fields.get("timetracking") or {}
    if "originalEstimate" in tracking:
        total = seconds(str(tracking.get("originalEstimate") or ""))
        fields["timeoriginalestimate"] = total
        fields["timetracking"] = ({} if total is None else
                                  {"originalEstimate": tracking["originalEstimate"], "originalEstimateSeconds": total})


def self_url(base_url: str, issue_id: str) -> str:
    return f"{base_url.rstrip('/')}/rest/api/2/issue/{issue_id}"


def render(issue: dict[str, Any], spec: list[str] | None, base_url: str) -> dict[str, Any]:
    """The issue as Jira returns it for a `fields` selection; no selection on Cloud search = ids only."""
    if not spec or not any(name.strip() for name in spec):
        return {"id": issue["id"]}
    names = [name.strip() for name in spec if name.strip()]
    excluded = {name[1:] for name in names if name.startswith("-")}
    stored = issue["fields"]
    if any(name in ("*all", "*navigable") for name in names):
        chosen = [name for name in stored if name not in excluded]
    else:
        chosen = [n for n in names if not n.startswith("-") and n not in excluded
                  and (n in stored or n in FIELD_IDS)]
    return {"expand": "renderedFields,names,schema,operations,editmeta,changelog", "id": issue["id"],
            "self": self_url(base_url, issue["id"]), "key": issue["key"],
            "fields": copy.deepcopy({name: stored.get(name) for name in chosen})}


def spec(args: dict[str, Any], default: str | None) -> list[str] | None:
    """The requested `fields` selection, else `default` (None: Cloud search's ids-only answer)."""
    fields: list[str] | None = args.get("fields")
    return fields if fields is not None else [default] if default else None


def page_number(args: dict[str, Any], name: str, default: int) -> int:
    """A non-negative paging argument (startAt, maxResults); a bad one is a JqlError, as Jira answers 400."""
    raw = args.get(name)
    try:
        value = default if raw is None else int(raw)
    except (TypeError, ValueError):
        raise JqlError([f"The value of '{name}' must be a number."]) from None
    if value < 0:
        raise JqlError([f"The value of '{name}' must not be negative."])
    return value


def encode_token(offset: int, jql: str) -> str:
    """An opaque nextPageToken bound to `jql`, so it cannot be replayed against another query."""
    digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
    return base64.urlsafe_b64encode(json.dumps([offset, digest]).encode()).decode()


def decode_token(token: object, jql: str) -> int:
    """The offset in a token from encode_token for the same `jql`; no token is 0, a bad one JqlError."""
    if not token:
        return 0
    try:
        offset, digest = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        if digest == hashlib.sha256(jql.encode()).hexdigest()[:16] and isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, TypeError):
        pass
    raise JqlError(["The provided next page token is invalid or expired."])

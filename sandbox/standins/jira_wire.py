"""The Jira stand-in's catalogue and edits: fields, workflow and link types, how an edit changes an
issue as Jira's REST API does, and time tracking (an estimate in Jira's duration text and in seconds)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

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
    ("subtasks", "Sub-tasks", ["subtasks"], False),
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
    return stamp(dt.datetime.now(dt.UTC))


def stamp(when: dt.datetime) -> str:
    """`when` in Jira's timestamp format."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


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

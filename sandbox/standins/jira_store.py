"""Issue storage for the Jira stand-in: projects, issues and field rendering.

Why apart from the HTTP layer: what Jira *holds* (issue JSON, statuses, links, field
selection) is independent of how requests reach it (routing, auth, injected failures,
paging). Keeping it here lets `jira_api` stay a thin Starlette app while
the data rules read in one place. One re-entrant lock guards the store; `JiraStandin`
shares it so a handler can hold it across several store calls.

    store = IssueStore(); store.add_project("ACME")
    key = store.add_issue("ACME", "Collect data", labels=["phase-1"])
    store.find(key)["fields"]["summary"]  # jira_http.render gives it as Jira answers a fields selection
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Sequence
from typing import Any

from phasegate.sandbox.standins.jira_wire import (
    CATEGORY_NAMES,
    ISSUE_TYPES,
    LINK_TYPES,
    STORY_POINTS,
    TRANSITIONS,
    now,
    stamp,
    track,
)
from phasegate.sandbox.standins.jql_eval import matches, order, validate
from phasegate.sandbox.standins.jql_parser import Query, parse


class IssueStore:
    """Projects and issues in Jira's JSON shape. Public methods lock; helpers expect `lock` held."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.projects: dict[str, str] = {}  # key -> id
        self.issues: dict[str, dict[str, Any]] = {}
        self.moved: dict[str, str] = {}  # old key -> key after a move
        self._numbers: dict[str, itertools.count[int]] = {}
        self._ids = itertools.count(10001)

    def clear(self) -> None:
        with self.lock:
            for store in (self.projects, self.issues, self._numbers, self.moved):
                store.clear()
            self._ids = itertools.count(10001)

    def add_project(self, key: str) -> None:
        with self.lock:
            self.projects.setdefault(key.upper(), str(10000 + len(self.projects)))
            self._numbers.setdefault(key.upper(), itertools.count(1))

    def add_issue(self, project: str, summary: str, *, status: str = "To Do", done: bool = False,
                  labels: Sequence[str] = (), epic: str | None = None, fix_versions: Sequence[str] = (),
                  components: Sequence[str] = (), story_points: float | None = None, issuetype: str = "Task",
                  fields: dict[str, object] | None = None, key: str | None = None,
                  resolution: str | None = None) -> str:
        """`epic`: the parent, as Cloud's `parent` field holds it: the epic an issue is in, or the
        issue a sub-task (issuetype "Sub-task") belongs to."""
        with self.lock:
            if project.upper() not in self.projects:
                raise KeyError(f"unknown project {project!r}; call add_project first")
            if key is None:
                key = f"{project.upper()}-{next(self._numbers[project.upper()])}"
                while key in self.issues:  # numbers taken by issues stored under a chosen key
                    key = f"{project.upper()}-{next(self._numbers[project.upper()])}"
            elif not key.upper().startswith(f"{project.upper()}-") or key.upper() in self.issues:
                raise KeyError(f"issue key {key!r}: not in project {project!r}, or already stored")
            key = key.upper()
            created = now()
            self.issues[key] = {"id": str(next(self._ids)), "key": key, "fields": {
                "summary": summary, "labels": list(labels), "description": None, "issuelinks": [],
                "issuetype": {"id": ISSUE_TYPES.get(issuetype, "10001"), "name": issuetype,
                              "subtask": issuetype == "Sub-task"},
                "subtasks": [],  # filled in as it is read (`current`)
                "project": {"id": self.projects[project.upper()], "key": project.upper(), "name": project.upper()},
                "fixVersions": [{"name": name} for name in fix_versions],
                "components": [{"name": name} for name in components],
                STORY_POINTS: story_points, "created": created, "updated": created,
                **({"parent": {"key": epic, "id": self.issues[epic]["id"] if epic in self.issues else None}}
                   if epic else {}),
                **(fields or {}),
            }}
            track(self.issues[key]["fields"])
            self.set_status(key, "Done" if done and status == "To Do" else status, done, resolution)
            return key

    def set_status(self, key: str, status: str, done: bool, resolution: str | None = None) -> None:
        """Move an issue. `done` alone decides the "done" category, the resolution (`resolution`,
        by default "Done"; none while not done) and resolutiondate; a status named "Done" with
        done=False counts as in progress, "To Do" as new."""
        with self.lock:
            fields = self.issues[self.resolve(key)]["fields"]
            category = "done" if done else "new" if status.lower() == "to do" else "indeterminate"
            fields["status"] = {"name": status, "statusCategory": {"key": category, "name": CATEGORY_NAMES[category]}}
            fields["resolution"] = {"name": resolution or "Done"} if done else None
            fields["resolutiondate"] = now() if done else None
            fields["updated"] = now()

    def backdate(self, key: str, created: dt.datetime | None = None, resolved: dt.datetime | None = None) -> None:
        """Give an issue a history: when it was created and (if done) resolved."""
        with self.lock:
            fields = self.issues[self.resolve(key)]["fields"]
            if created is not None:
                fields["created"] = stamp(created)
            if resolved is not None and fields.get("resolutiondate"):
                fields["resolutiondate"] = stamp(resolved)

    def delete_issue(self, key: str) -> None:
        with self.lock:
            del self.issues[self.resolve(key)]

    def move(self, key: str, project: str) -> str:
        """Move an issue (and its sub-tasks, as Jira does) to another project: it gets the next key
        there, and its old key still finds it (`resolve`), in GET /issue and in JQL. Its children
        keep it as their parent."""
        with self.lock:
            old, target = self.resolve(key), project.upper()
            if target not in self.projects:
                raise KeyError(f"unknown project {project!r}; call add_project first")
            issue = self.issues.pop(old)
            new = f"{target}-{next(self._numbers[target])}"
            while new in self.issues:
                new = f"{target}-{next(self._numbers[target])}"
            issue["key"], self.moved[old] = new, new
            issue["fields"]["project"] = {"id": self.projects[target], "key": target, "name": target}
            issue["fields"]["updated"] = now()
            self.issues[new] = issue
            children = [i for i in self.issues.values() if (i["fields"].get("parent") or {}).get("key") == old]
            for child in children:
                child["fields"]["parent"]["key"] = new
            for child in children:
                if child["fields"]["issuetype"].get("subtask"):
                    self.move(child["key"], target)
            return new

    def resolve(self, key: str) -> str:
        """The issue's key now: an old key of a moved issue leads to its new one."""
        key = key.upper()
        while key in self.moved:
            key = self.moved[key]
        return key

    def current(self, issue: dict[str, Any], subtasks: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
        """The stored issue as Jira reads it out, its `subtasks` listed (caller holds `lock`). For a page
        of issues, pass `subtasks_by_parent()` once rather than scanning every issue for each."""
        listed = (subtasks if subtasks is not None else self.subtasks_by_parent()).get(issue["key"], [])
        return {**issue, "fields": {**issue["fields"], "subtasks": listed}}

    def subtasks_by_parent(self) -> dict[str, list[dict[str, Any]]]:
        """Each parent's key -> its sub-tasks as Jira lists them on the parent, in one pass (caller holds `lock`)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for i in self.issues.values():
            parent = (i["fields"].get("parent") or {}).get("key")
            if parent and i["fields"]["issuetype"].get("subtask"):
                found.setdefault(parent, []).append(
                    {"id": i["id"], "key": i["key"],
                     "fields": {name: i["fields"][name] for name in ("summary", "status", "issuetype")}})
        return found

    def create(self, fields: dict[str, Any]) -> tuple[dict[str, str], str]:
        """Create from a POST /issue `fields` body: (errors, "") when Jira would refuse it, else ({}, key)."""
        with self.lock:
            errors, project, type_name = self.check_create(fields)
            if errors:
                return errors, ""
            extra = {k: v for k, v in fields.items() if k not in ("project", "summary", "issuetype", "labels",
                                                                  "parent")}
            return {}, self.add_issue(project, fields["summary"], labels=fields.get("labels") or [],
                                      issuetype=type_name, epic=(fields.get("parent") or {}).get("key"), fields=extra)

    def transition(self, key: str, transition_id: str) -> bool:
        """Apply the TRANSITIONS entry `transition_id` to issue `key`; False when there is none."""
        match = next((t for t in TRANSITIONS if t[0] == transition_id), None)
        if match is not None:
            self.set_status(key, match[1], match[2] == "done")
        return match is not None

    def link(self, inward_key: str, outward_key: str, name: object) -> str | None:
        """Link two issues with the LINK_TYPES entry `name`; Jira's 404 message when it cannot."""
        with self.lock:
            if name not in LINK_TYPES:
                return f"No issue link type with name '{name}' found."
            inward, outward = self.find(inward_key), self.find(outward_key)
            if inward is None or outward is None:
                return "Issue Does Not Exist"
            link_type = {"name": name, "inward": LINK_TYPES[str(name)][0], "outward": LINK_TYPES[str(name)][1]}
            inward["fields"]["issuelinks"].append({"type": link_type, "outwardIssue": {"key": outward["key"]}})
            outward["fields"]["issuelinks"].append({"type": link_type, "inwardIssue": {"key": inward["key"]}})
            return None

    def query(self, jql: object) -> Query:
        """Parse `jql` and check its values against the stored projects and keys (JqlError if not)."""
        query = parse(str(jql or ""))
        with self.lock:
            validate(query, set(self.projects), set(self.issues) | set(self.moved))
        return query

    # -- helpers: the caller holds `lock` ----------------------------------------------------
    def matching(self, query: Query) -> list[dict[str, Any]]:
        return order([i for i in self.issues.values() if matches(query.where, i, self.resolve)], query.order_by)

    def find(self, key_or_id: str) -> dict[str, Any] | None:
        issue = self.issues.get(self.resolve(key_or_id))
        return issue or next((i for i in self.issues.values() if i["id"] == key_or_id), None)

    def project_key(self, key_or_id: str) -> str | None:
        """The stored project key for a key (any case) or numeric id; None when unknown."""
        key = key_or_id.upper()
        key = next((k for k, i in self.projects.items() if i == key), key)
        return key if key in self.projects else None

    def project_json(self, key: str) -> dict[str, Any]:
        return {"id": self.projects[key], "key": key, "name": key,
                "issueTypes": [{"id": i, "name": n, "subtask": n == "Sub-task"} for n, i in ISSUE_TYPES.items()]}

    def check_create(self, fields: dict[str, Any]) -> tuple[dict[str, str], str, str]:
        """Jira's answers to a create without a valid project, summary or issue type."""
        errors: dict[str, str] = {}
        project, kind = fields.get("project") or {}, fields.get("issuetype") or {}
        key = str(project.get("key") or next((k for k, i in self.projects.items() if i == str(project.get("id"))), ""))
        if key.upper() not in self.projects:
            errors["project"] = "valid project is required"
        if not str(fields.get("summary") or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        type_name = str(kind.get("name") or next((n for n, i in ISSUE_TYPES.items() if i == str(kind.get("id"))), ""))
        if type_name not in ISSUE_TYPES:
            errors["issuetype"] = "valid issue type is required"
        errors.update(self.check_fields(fields))
        return errors, key, type_name

    def check_edit(self, fields: dict[str, Any]) -> dict[str, str]:
        """Jira's answers to an edit: bad labels or parent, and status (which only transitions change)."""
        errors = self.check_fields(fields)
        if "status" in fields:
            errors["status"] = "Field 'status' cannot be set. It is not on the appropriate screen, or unknown."
        return errors

    def check_fields(self, fields: dict[str, Any]) -> dict[str, str]:
        errors = {}
        spaced = [label for label in fields.get("labels") or [] if not label or any(c.isspace() for c in label)]
        if spaced:
            errors["labels"] = f"The label '{spaced[0]}' contains spaces which is invalid."
        parent = (fields.get("parent") or {}).get("key")
        if parent and self.find(str(parent)) is None:
            errors["parent"] = "Could not find issue by id or key."
        return errors

"""Evaluation of parsed JQL against the Jira stand-in's stored issues.

Why apart from the parser: the parser decides what a query *says* (and refuses what Jira
refuses to read); this decides what it *selects* from data — value checks against known
projects and keys, matching, ordering and the Cloud "bounded query" rule. Each side can be
read and tested without the other, and the parser keeps no knowledge of the issue shape.

    query = parse('project = ACME ORDER BY key DESC')
    validate(query, {"ACME"}, set(issues_by_key))
    order([i for i in issues if matches(query.where, i)], query.order_by)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from phasegate.sandbox.standins.jql_parser import RELATIONAL, BoolOp, Clause, Node, Not, Query
from phasegate.sandbox.standins.jql_tokens import JqlError

CATEGORIES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}


def clauses(node: Node | None) -> Iterable[Clause]:
    if isinstance(node, Clause):
        yield node
    elif isinstance(node, BoolOp):
        for child in node.children:
            yield from clauses(child)
    elif isinstance(node, Not):
        yield from clauses(node.child)


def validate(query: Query, projects: set[str], keys: set[str]) -> None:
    """Refuse values Jira checks against its data: projects, issue keys, status categories."""
    problems: list[str] = []
    for clause in clauses(query.where):
        for value in clause.values:
            if clause.field == "project" and value.upper() not in projects:
                problems.append(f"The value '{value}' does not exist for the field '{clause.name}'.")
            elif clause.op in RELATIONAL:  # a range needs a well-formed key in a known project, not the issue
                parts = _key_parts(value)
                if parts is None or parts[0] not in projects:
                    problems.append(f"An issue with key '{value}' does not exist for field '{clause.name}'.")
            elif clause.field in ("key", "parent") and value.upper() not in keys:
                problems.append(f"An issue with key '{value}' does not exist for field '{clause.name}'.")
            elif clause.field == "statusCategory" and value.lower() not in {
                *CATEGORIES, *(name.lower() for name in CATEGORIES.values())
            }:
                problems.append(f"The value '{value}' does not exist for the field '{clause.name}'.")
    if problems:
        raise JqlError(problems)


def restricts_project(node: Node | None) -> bool:
    """True when every issue the query can match is confined to named projects or keys."""
    if isinstance(node, Clause):
        return node.field in ("project", "key") and node.op in ("=", "in")
    if isinstance(node, BoolOp):
        results = [restricts_project(child) for child in node.children]
        return any(results) if node.op == "and" else all(results)
    return False


def _values(field: str, issue: Mapping[str, Any]) -> list[str]:
    fields: Mapping[str, Any] = issue["fields"]
    getters: dict[str, Callable[[], list[Any]]] = {
        "project": lambda: [fields["project"]["key"]],
        "key": lambda: [issue["key"]],
        "labels": lambda: list(fields.get("labels") or []),
        "parent": lambda: [fields["parent"]["key"]] if fields.get("parent") else [],
        "fixVersion": lambda: [v["name"] for v in fields.get("fixVersions") or []],
        "component": lambda: [c["name"] for c in fields.get("components") or []],
        "status": lambda: [fields["status"]["name"]],
        "statusCategory": lambda: [
            fields["status"]["statusCategory"]["key"], fields["status"]["statusCategory"]["name"]
        ],
        "issuetype": lambda: [fields["issuetype"]["name"]],
        "summary": lambda: [fields.get("summary") or ""],
    }
    return [str(value).casefold() for value in getters[field]()]


def matches(node: Node | None, issue: Mapping[str, Any], resolve: Callable[[str], str] = str.upper) -> bool:
    """Whether the stored issue (Jira JSON shape) satisfies `node`; no node matches everything.
    `resolve` gives an issue key as it is now (a moved issue's old key finds it, as in Jira)."""
    if node is None:
        return True
    if isinstance(node, BoolOp):
        results = (matches(child, issue, resolve) for child in node.children)
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Not):
        return not matches(node.child, issue, resolve)
    if node.op in RELATIONAL:
        return _key_in_range(str(issue["key"]), node.op, node.values[0])
    have = _values(node.field, issue)
    named = [resolve(value) for value in node.values] if node.field in ("key", "parent") else node.values
    wanted = {value.casefold() for value in named}
    if node.op in ("=", "in"):
        return any(value in wanted for value in have)
    if node.op in ("!=", "not in"):
        return bool(have) and not any(value in wanted for value in have)
    if node.op in ("is", "is not"):
        return (not any(have)) == (node.op == "is")
    terms = [term for value in wanted for term in value.split()]
    found = any(have) and all(term in have[0] for term in terms)
    return found if node.op == "~" else bool(any(have)) and not found


def _key_parts(key: str) -> tuple[str, int] | None:
    project, _, number = key.upper().rpartition("-")
    return (project, int(number)) if project and number.isascii() and number.isdigit() else None


def _key_in_range(key: str, op: str, bound: str) -> bool:
    """`key > "ACME-9"` as Jira reads it: issues of ACME numbered above 9 (ACME-10 included)."""
    have, limit = _key_parts(key), _key_parts(bound)
    if have is None or limit is None or have[0] != limit[0]:
        return False
    return {">": have[1] > limit[1], ">=": have[1] >= limit[1],
            "<": have[1] < limit[1], "<=": have[1] <= limit[1]}[op]


def _sort_value(issue: Mapping[str, Any], field: str) -> tuple[Any, ...]:
    if field == "key":
        project, _, number = str(issue["key"]).partition("-")
        return (project, int(number))
    value = issue["fields"].get(field)
    if isinstance(value, Mapping):
        value = value.get("key") or value.get("name")
    return (value is None, str(value or "").casefold())


def order(issues: list[dict[str, Any]], order_by: tuple[tuple[str, bool], ...]) -> list[dict[str, Any]]:
    """Sort like ORDER BY; without one, by key as Jira's search does for a stable page order."""
    result = sorted(issues, key=lambda issue: _sort_value(issue, "key"))
    for field, descending in reversed(order_by):
        result.sort(key=lambda issue: _sort_value(issue, field), reverse=descending)
    return result

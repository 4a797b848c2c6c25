"""Build JQL from an engagement's safe parts; never paste a string into a query.

Why: milestone filters come from engagement files and labels that people type. A value such
as `X" OR project = "SECRET` pasted into JQL would widen a milestone's evidence to another
client's project. Every value therefore goes through `quote`, which makes it one JQL string
literal whatever it contains, and field names come only from a fixed list.

    build_jql("ACME", IssueFilter(epic="ACME-1", labels=("poc",)), deployment="cloud")
    # 'project = "ACME" AND parent = "ACME-1" AND labels = "poc" ORDER BY key ASC'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

ORDER_BY_KEY = " ORDER BY key ASC"
ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]*-[1-9][0-9]*")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Field names `extra` may use, as they are written in JQL (Jira field names are case-insensitive).
EXTRA_FIELDS = {
    name.lower(): name
    for name in ("status", "statusCategory", "issuetype", "labels", "key", "component", "fixVersion", "resolution",
                 "parent")
}


class Filter(Protocol):
    """The safe parts a milestone's query is built from (`phasegate.configs.schema.JiraQuery` is one)."""

    @property
    def epic(self) -> str | None: ...
    @property
    def labels(self) -> Sequence[str]: ...
    @property
    def fix_version(self) -> str | None: ...
    @property
    def component(self) -> str | None: ...


@dataclass(frozen=True)
class IssueFilter:
    """A `Filter` made in code rather than read from an engagement file."""

    epic: str | None = None
    labels: Sequence[str] = ()
    fix_version: str | None = None
    component: str | None = None


def quote(value: str) -> str:
    """`value` as one double-quoted JQL string literal.

    Backslash and double quote are escaped so nothing can end the literal early; the single
    quote is escaped too, so the literal stays sound if it is ever re-wrapped in single
    quotes. \\n, \\r and \\t use their short escapes and every other control or line-separator
    character becomes \\uXXXX, so the query stays one line whatever the value holds.
    """
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def build_jql(project: str, query: Filter, *, deployment: str,
              extra: Mapping[str, str | Sequence[str]] | None = None) -> str:
    """AND-joined clauses for `project` and `query`, ordered by key for stable paging.

    The epic clause is `parent = "X"` on Cloud and `"Epic Link" = "X"` on Data Center, where
    epics are not parents. Each label is its own clause, so an issue must carry all of them.
    In `extra` a string means `field = value` and a sequence means `field IN (...)`; a field
    outside EXTRA_FIELDS or an empty sequence is a ValueError, not a silently wider query.
    """
    if deployment not in ("cloud", "datacenter"):
        raise ValueError(f"unknown Jira deployment {deployment!r}; expected 'cloud' or 'datacenter'")
    clauses = [f"project = {quote(project)}"]
    if query.epic is not None:
        epic_field = "parent" if deployment == "cloud" else '"Epic Link"'
        clauses.append(f"{epic_field} = {quote(query.epic)}")
    clauses.extend(f"labels = {quote(label)}" for label in query.labels)
    if query.fix_version is not None:
        clauses.append(f"fixVersion = {quote(query.fix_version)}")
    if query.component is not None:
        clauses.append(f"component = {quote(query.component)}")
    for name, value in (extra or {}).items():
        field = EXTRA_FIELDS.get(name.lower())
        if field is None:
            raise ValueError(f"JQL field {name!r} is not one phasegate builds queries on")
        if isinstance(value, str):
            clauses.append(f"{field} = {quote(value)}")
        elif not value:
            raise ValueError(f"JQL field {name!r} was given an empty list of values")
        else:
            clauses.append(f"{field} IN ({', '.join(quote(str(item)) for item in value)})")
    return " AND ".join(clauses) + ORDER_BY_KEY


def after_key(jql: str, key: str) -> str:
    """`jql` narrowed to the issues after `key`: the next page of a keyset read.

    Why: paging by position (startAt) over a set that changes between pages skips or repeats
    issues. Jira compares keys numerically within a project (`key > "ACME-9"` holds for
    ACME-10), so on a query ordered by key the clause resumes exactly after the last issue read,
    whatever was added or removed meanwhile. Only queries ending in ORDER BY key ASC (as
    build_jql makes them) and well-formed keys are accepted; anything else is a ValueError.
    """
    if not jql.endswith(ORDER_BY_KEY):
        raise ValueError("keyset paging needs a query ordered by key ascending")
    if not ISSUE_KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not an issue key")
    where = jql[: -len(ORDER_BY_KEY)].strip()
    return (f"({where}) AND " if where else "") + f"key > {quote(key)}{ORDER_BY_KEY}"

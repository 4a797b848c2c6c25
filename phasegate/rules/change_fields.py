"""A change request's fields as people give them, read into a `Draft`: the Slack form's inputs (text,
None when empty), the CLI's options and a YAML file (text, numbers, lists).

One reading for every surface, so that what one accepts the others accept, and nothing is coerced
into something else on the way: an object is not stored as its repr, a number sent where text was
expected is not read as 0, 1.5 days is not cut to 1. `phasegate.rules.change_requests.validate`
then checks the values themselves, for these and for Jira's drafts alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from phasegate.configs.schema import Phase
from phasegate.errors import InvalidRequest
from phasegate.rules.change_requests import Draft

FIELDS = ("title", "rationale", "phase", "scope_added", "scope_removed", "effort_days", "schedule_days", "cost",
          "jira_issue")


def draft_from_fields(fields: Mapping[str, object]) -> Draft:
    """The Draft the fields describe (FIELDS; others are ignored); InvalidRequest naming every field
    that is not what it must be.

        draft_from_fields({"title": "More data", "cost": "5000"}).cost  ->  5000.0
    """
    problems: dict[str, str] = {}
    phase = fields.get("phase")
    if phase not in (None, "") and not isinstance(phase, Phase):
        try:
            phase = Phase(phase)
        except ValueError:
            problems["phase"] = "unknown phase"
    jira_issue = fields.get("jira_issue")
    if jira_issue is not None and not isinstance(jira_issue, str):
        problems["jira_issue"] = "must be an issue key"
    draft = Draft(title=_text(fields, "title", problems), rationale=_text(fields, "rationale", problems),
                  phase=phase if isinstance(phase, Phase) else None,
                  scope_added=_lines(fields, "scope_added", problems),
                  scope_removed=_lines(fields, "scope_removed", problems),
                  effort_days=_number(fields, "effort_days", problems),
                  schedule_days=_whole(fields, "schedule_days", problems), cost=_number(fields, "cost", problems),
                  jira_issue=jira_issue or None if isinstance(jira_issue, str) else None)
    if problems:
        raise InvalidRequest(problems)
    return draft


def _text(fields: Mapping[str, object], name: str, problems: dict[str, str]) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems[name] = "must be text"
        return ""
    return value


def _lines(fields: Mapping[str, object], name: str, problems: dict[str, str]) -> tuple[str, ...]:
    """Scope items: text, one a line (the form), or a list of texts (the file, the CLI's options)."""
    value = fields.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.splitlines())
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    problems[name] = "must be text, one item a line, or a list of texts"
    return ()


def _number(fields: Mapping[str, object], name: str, problems: dict[str, str]) -> float:
    """A number, or text that reads as one (a Slack number input sends text); blank is 0."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        problems[name] = "must be a number"
        return 0.0
    try:
        return float(value)
    except ValueError:
        problems[name] = "must be a number"
    except OverflowError:
        problems[name] = "is implausibly large"
    return 0.0


def _whole(fields: Mapping[str, object], name: str, problems: dict[str, str]) -> int:
    number = _number(fields, name, problems)
    if name in problems:
        return 0
    if not math.isfinite(number):
        problems[name] = "must be a number"
        return 0
    if number != int(number):
        problems[name] = "must be whole days"
        return 0
    return int(number)

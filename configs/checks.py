"""Rules that span several fields of an engagement file, as functions over plain data.

The pydantic models call them on themselves; the loader also runs them over the raw YAML when
other fields are invalid, because pydantic skips a model's own checks once any field inside it
has failed, and a user should see every problem in one go.

Each rule returns `(path, reason)` pairs, the path relative to the data it was given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Problem = tuple[str, str]
ISSUE_KEY = re.compile(r"^([A-Z][A-Z0-9_]{1,9})-[1-9][0-9]{0,9}$")
CRITERION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(>=|<=|==|>|<)\s*(\S+)\s*$")
ALL_DONE = "all_required_milestones_done"
# Validation context for a file read back from the ledger: it passed these rules when it was
# registered or amended (no other way in), so decoding it again checks its fields but does not run
# the rules again (they read the whole model back as JSON, most of a decode's cost).
STORED: dict[str, bool] = {"stored": True}


def rechecks(context: Any) -> bool:
    """Whether the cross-field rules run for a model validated with `context` (not for STORED files)."""
    return not (isinstance(context, Mapping) and context.get("stored") is True)


def criterion_mapping(value: Any) -> Any:
    """`f1 >= 0.8` (as docs/engagement-file.md writes a criterion) as the mapping the schema holds; anything
    else unchanged. A string that is not a criterion is left for the schema to refuse."""
    if not isinstance(value, str):
        return value
    if value.strip().replace(" ", "_") == ALL_DONE:
        return {ALL_DONE: True}
    match = CRITERION.match(value)
    if match is None:
        return value
    metric, op, threshold = match.groups()
    try:
        return {"metric": metric, "op": op, "threshold": float(threshold)}
    except ValueError:
        return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def gate_problems(gate: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    approvers = [a for a in _list(gate.get("approvers")) if isinstance(a, Mapping)]
    users = [a.get("slack_user") for a in approvers]
    for index, user in enumerate(users):
        if user in users[:index]:
            problems.append((f"approvers[{index}].slack_user", f"approver {user} is listed twice"))
    raw_quorum = gate.get("quorum")
    bare = isinstance(raw_quorum, int | str)  # the shorthand `quorum: 2` for `quorum: {count: 2}`
    quorum = {"count": raw_quorum} if bare else _map(raw_quorum)
    count = quorum.get("count", "all")
    if isinstance(count, int) and not isinstance(count, bool) and count > len(approvers):
        problems.append(("quorum" if bare else "quorum.count",
                         f"quorum {count} is more than the {len(approvers)} approvers"))
    sides = {a.get("side") for a in approvers}
    if quorum.get("one_from_each_side") is True and not {"client", "vendor"} <= sides:
        problems.append(("quorum.one_from_each_side",
                         "one_from_each_side needs approvers from both the client and the vendor"))
    return problems


def phase_problems(phase: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    keys = [m.get("key") for m in _list(phase.get("milestones")) if isinstance(m, Mapping)]
    for index, key in enumerate(keys):
        if key in keys[:index]:
            problems.append((f"milestones[{index}].key", f"milestone keys must be unique: {key!r} repeats"))
    planned, maximum = phase.get("planned_weeks"), phase.get("max_weeks")
    if isinstance(planned, int) and isinstance(maximum, int) and maximum < planned:
        problems.append(("max_weeks", "max_weeks is less than planned_weeks"))
    return problems


def _declared_range(metric: Mapping[str, Any]) -> tuple[float, float] | None:
    bounds = metric.get("range")
    if (isinstance(bounds, list | tuple) and len(bounds) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds) and bounds[0] <= bounds[1]):
        return float(bounds[0]), float(bounds[1])
    return None


def metric_reference_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Criteria name listed metrics, and a threshold lies in its metric's declared range (a
    criterion `f1 >= 85` on a 0-1 score could never pass, or always would with `<=`)."""
    metrics = {m.get("name"): m for m in _list(data.get("metrics")) if isinstance(m, Mapping)}
    names = set(metrics)
    problems: list[Problem] = []
    phases = _map(data.get("phases"))
    for phase_name, phase in phases.items():
        if not isinstance(phase, Mapping):
            continue
        for index, raw in enumerate(_list(phase.get("exit_criteria"))):
            criterion = criterion_mapping(raw)
            metric = criterion.get("metric") if isinstance(criterion, Mapping) else None
            if isinstance(metric, str) and metric not in names:
                problems.append((f"phases.{phase_name}.exit_criteria[{index}].metric",
                                 f"unknown metric {metric!r} (not listed under metrics)"))
                continue
            if not isinstance(metric, str):
                continue
            bounds, threshold = _declared_range(metrics[metric]), criterion.get("threshold")
            if (bounds and isinstance(threshold, int | float) and not isinstance(threshold, bool)
                    and not bounds[0] <= threshold <= bounds[1]):
                problems.append((f"phases.{phase_name}.exit_criteria[{index}].threshold",
                                 f"threshold {threshold:g} is outside {metric}'s declared range "
                                 f"[{bounds[0]:g}, {bounds[1]:g}]"))
    return problems


def issue_project_problems(data: Mapping[str, Any]) -> list[Problem]:
    """A milestone's linked issue must be in the engagement's own Jira project: evidence from
    another project (another client's, or a board nobody here watches) is not this engagement's."""
    project = _map(data.get("jira")).get("project")
    if not isinstance(project, str):
        return []
    problems: list[Problem] = []
    for phase_name, phase in _map(data.get("phases")).items():
        for index, milestone in enumerate(_list(_map(phase).get("milestones"))):
            issue = _map(milestone).get("jira_issue")
            match = ISSUE_KEY.match(issue) if isinstance(issue, str) else None
            if match and match.group(1) != project:
                problems.append((f"phases.{phase_name}.milestones[{index}].jira_issue",
                                 f"{issue} is not in the engagement's Jira project {project}"))
    return problems


def people(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every approver entry of the file with its path: each phase's gate, then `change_requests`."""
    policies = [(f"phases.{name}.gate", _map(_map(phase).get("gate"))) for name, phase in _map(data.get("phases")).items()]
    policies.append(("change_requests", _map(data.get("change_requests"))))
    return [(f"{path}.approvers[{index}]", _map(entry)) for path, policy in policies
            for index, entry in enumerate(_list(policy.get("approvers")))]


def jira_people_problems(data: Mapping[str, Any]) -> list[Problem]:
    """A Jira account or email names one person: given for two Slack users, a change request filed
    in Jira under it could not be told apart (nor kept from its requester's approval)."""
    owners: dict[tuple[str, str], str] = {}
    problems: list[Problem] = []
    for path, entry in people(data):
        user = entry.get("slack_user")
        for field, label in (("jira_account_id", "Jira account"), ("jira_email", "Jira email")):
            value = entry.get(field)
            if not isinstance(value, str) or not isinstance(user, str):
                continue
            key = (field, value.casefold() if field == "jira_email" else value)
            owner = owners.setdefault(key, user)
            if owner != user:
                problems.append((f"{path}.{field}", f"{label} {value} is given for both {owner} and {user}"))
    return problems


def selection_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Phase 0 asks "with whom?": the vendor's named individuals must be in the file, and G0 is the
    client's decision whether to sign, so no vendor approves it."""
    selection = _map(data.get("phases")).get("selection")
    if not isinstance(selection, Mapping):
        return []
    problems: list[Problem] = []
    if not _list(data.get("vendor_team")):
        problems.append(("vendor_team", "Phase 0 (selection) needs the named individuals the vendor commits: "
                                        "list them under vendor_team"))
    for index, approver in enumerate(_list(_map(selection.get("gate")).get("approvers"))):
        if _map(approver).get("side") == "vendor":
            problems.append((f"phases.selection.gate.approvers[{index}].side",
                             "G0 is the client's decision whether to sign: the vendor does not approve it"))
    return problems


def engagement_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Every cross-field problem in a whole (possibly otherwise invalid) engagement document."""
    problems = (metric_reference_problems(data) + issue_project_problems(data) + jira_people_problems(data)
                + selection_problems(data))
    phases = _map(data.get("phases"))
    for name, phase in phases.items():
        if not isinstance(phase, Mapping):
            continue
        problems += [(f"phases.{name}.{path}", reason) for path, reason in phase_problems(phase)]
        if isinstance(phase.get("gate"), Mapping):
            problems += [(f"phases.{name}.gate.{path}", reason) for path, reason in gate_problems(phase["gate"])]
    return problems


def raise_if(problems: list[Problem]) -> None:
    """For the models: one ValueError naming every problem with its relative path."""
    if problems:
        raise ValueError(CROSS_MARK + "; ".join(f"{path}: {reason}" for path, reason in problems))


CROSS_MARK = "cross-field: "

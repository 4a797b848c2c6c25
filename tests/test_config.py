"""Engagement files: the shipped examples load, and a broken file reports every problem at once,
each as `file: field.path: reason`, so one edit-validate round fixes the whole file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs.loader import ENGAGEMENTS_DIR, load_engagement
from configs.schema import Phase
from phasegate.errors import ConfigError

Data = dict[str, Any]


def acme_data() -> Data:
    data: Data = yaml.safe_load((ENGAGEMENTS_DIR / "acme-churn.yaml").read_text(encoding="utf-8"))
    return data


def write(tmp_path: Path, data: object, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_engagement(path)
    return caught.value.problems


def the_line(problems: list[str], path: Path, field: str, reason: str) -> str:
    """The one problem that starts `file: field` and mentions `reason`."""
    matches = [p for p in problems if p.startswith(f"{path}: {field}") and reason in p]
    assert len(matches) == 1, f"expected one '{path}: {field}...{reason}' in:\n" + "\n".join(problems)
    return matches[0]


# --- the mutations, each one problem in an otherwise valid acme-churn file ----------------------

def unknown_top_level_key(d: Data) -> None:
    d["colour"] = "blue"


def unknown_key_in_an_approver(d: Data) -> None:
    d["phases"]["poc"]["gate"]["approvers"][0]["email"] = "dana@acme.example"


def bad_slack_user_id(d: Data) -> None:
    d["pm_slack_user"] = "dana.whitfield"


def quorum_larger_than_the_approvers(d: Data) -> None:
    d["phases"]["development"]["gate"]["quorum"] = {"count": 5}


def one_from_each_side_with_only_clients(d: Data) -> None:
    gate = d["phases"]["handover"]["gate"]
    gate["approvers"] = [a for a in gate["approvers"] if a["side"] == "client"]
    gate["quorum"] = {"count": "all", "one_from_each_side": True}


def criterion_with_unknown_metric(d: Data) -> None:
    d["phases"]["development"]["exit_criteria"][1]["metric"] = "accuracy"


def metric_criterion_without_threshold(d: Data) -> None:
    del d["phases"]["poc"]["exit_criteria"][0]["threshold"]


def unknown_timezone(d: Data) -> None:
    d["timezone"] = "Mars/Olympus_Mons"


def duplicate_milestone_keys(d: Data) -> None:
    milestones = d["phases"]["development"]["milestones"]
    milestones.append({"key": milestones[0]["key"], "title": "The same key again"})


def max_weeks_below_planned_weeks(d: Data) -> None:
    d["phases"]["poc"]["planned_weeks"], d["phases"]["poc"]["max_weeks"] = 8, 6


def milestone_issue_in_another_project(d: Data) -> None:
    d["phases"]["poc"]["milestones"][1]["jira_issue"] = "GLX-12"  # acme's project is ACME


def milestone_issue_that_is_not_a_key(d: Data) -> None:
    d["phases"]["development"]["milestones"][0]["jira_issue"] = "acme 12"


Mutation = Callable[[Data], None]
# (mutation, field path the problem must start with, part of the reason)
CASES: list[tuple[Mutation, str, str]] = [
    (unknown_top_level_key, "colour: ", "unknown key"),
    (unknown_key_in_an_approver, "phases.poc.gate.approvers[0].email: ", "unknown key"),
    (bad_slack_user_id, "pm_slack_user: ", "must be a Slack user id"),
    (quorum_larger_than_the_approvers, "phases.development.gate", "quorum 5 is more than the 2 approvers"),
    (one_from_each_side_with_only_clients, "phases.handover.gate", "needs approvers from both the client and the vendor"),
    (criterion_with_unknown_metric, "phases.development.exit_criteria[1]", "unknown metric 'accuracy'"),
    (metric_criterion_without_threshold, "phases.poc.exit_criteria[0]", "needs metric, op and threshold"),
    (unknown_timezone, "timezone: ", "unknown timezone 'Mars/Olympus_Mons'"),
    (duplicate_milestone_keys, "phases.development", "milestone keys must be unique"),
    (max_weeks_below_planned_weeks, "phases.poc", "max_weeks is less than planned_weeks"),
    (milestone_issue_in_another_project, "phases.poc.milestones[1].jira_issue: ",
     "GLX-12 is not in the engagement's Jira project ACME"),
    (milestone_issue_that_is_not_a_key, "phases.development.milestones[0].jira_issue: ",
     "must be a Jira issue key such as ACME-12"),
]


@pytest.mark.parametrize("name", ["acme-churn.yaml", "globex-forecast.yaml"])
def test_shipped_example_loads(name: str) -> None:
    engagement = load_engagement(ENGAGEMENTS_DIR / name)
    assert engagement.id == Path(name).stem
    for phase in Phase:
        assert engagement.phases.of(phase).gate.approvers


def test_the_unmodified_copy_is_valid(tmp_path: Path) -> None:
    """The broken variants below differ from a file that loads only by their one mutation."""
    assert load_engagement(write(tmp_path, acme_data())).id == "acme-churn"


@pytest.mark.parametrize(("mutate", "field", "reason"), CASES, ids=[c[0].__name__ for c in CASES])
def test_one_problem_is_reported_at_its_field_path(tmp_path: Path, mutate: Mutation, field: str, reason: str) -> None:
    data = acme_data()
    mutate(data)
    path = write(tmp_path, data)
    problems = problems_of(path)
    assert len(problems) == 1, problems
    the_line(problems, path, field, reason)


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    data = acme_data()
    for mutate, _, _ in CASES:
        mutate(data)
    path = write(tmp_path, data)
    problems = problems_of(path)
    missing = [f"{field}...{reason}" for _, field, reason in CASES
               if not any(p.startswith(f"{path}: {field}") and reason in p for p in problems)]
    assert not missing, "not reported: " + "; ".join(missing) + "\nreported:\n" + "\n".join(problems)
    assert len(problems) == len(CASES), "\n".join(problems)


def test_two_cross_field_problems_in_one_phase_are_both_reported(tmp_path: Path) -> None:
    data = acme_data()
    duplicate_milestone_keys(data)
    data["phases"]["development"]["max_weeks"] = 4  # planned_weeks is 16
    path = write(tmp_path, data)
    problems = problems_of(path)
    the_line(problems, path, "phases.development", "milestone keys must be unique")
    the_line(problems, path, "phases.development", "max_weeks is less than planned_weeks")
    assert len(problems) == 2


def test_unknown_keys_are_reported_as_such_with_their_exact_path(tmp_path: Path) -> None:
    data = acme_data()
    unknown_top_level_key(data)
    unknown_key_in_an_approver(data)
    path = write(tmp_path, data)
    assert sorted(problems_of(path)) == sorted([f"{path}: colour: unknown key",
                                                f"{path}: phases.poc.gate.approvers[0].email: unknown key"])


@pytest.mark.parametrize(("text", "line", "column"), [
    ("id: acme-churn\nname: [unclosed\nvendor: Northwind ML\n", 3, 7),
    ("id: acme-churn\n  name: indented too far\n", 2, 7),
], ids=["unclosed-flow-sequence", "bad-indentation"])
def test_invalid_yaml_reports_line_and_column(tmp_path: Path, text: str, line: int, column: int) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: invalid YAML at line {line}, column {column}: ")


@pytest.mark.parametrize(("content", "reason"), [
    (b"- id: acme-churn\n- name: ACME churn prediction\n", "expected a mapping of engagement fields, got list"),
    (b"", "the file is empty"),
    (b"# nothing but a comment\n", "the file is empty"),
], ids=["list", "empty", "comment-only"])
def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "engagement.yaml"
    path.write_bytes(content)
    assert problems_of(path) == [f"{path}: {reason}"]


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert problems_of(path) == [f"{path}: no such file"]


def test_non_utf8_bytes_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: acme-churn\nname: Caf\xe9 churn\n".encode("latin-1"))
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: cannot read: ")
    assert "utf-8" in problem


def test_config_error_message_joins_every_problem(tmp_path: Path) -> None:
    data = acme_data()
    unknown_timezone(data)
    bad_slack_user_id(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_engagement(path)
    assert str(caught.value) == "; ".join(caught.value.problems)
    assert len(caught.value.problems) == 2


def test_every_error_line_keeps_the_file_name_the_caller_gave(tmp_path: Path) -> None:
    data = acme_data()
    unknown_timezone(data)
    path = write(tmp_path, data, name="acme with spaces.yaml")
    [problem] = problems_of(path)
    assert problem == f"{path}: timezone: unknown timezone 'Mars/Olympus_Mons'"

"""Engagement files: the shipped examples load, and a broken file reports every problem at once,
each as `file: field.path: reason`, so one edit-validate round fixes the whole file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from phasegate.configs import limits
from phasegate.configs.loader import (
    ENGAGEMENTS_DIR,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_VALUES,
    load_engagement,
    parse_engagement,
)
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


def bare_quorum_larger_than_the_approvers(d: Data) -> None:
    d["phases"]["poc"]["gate"]["quorum"] = 5  # the shorthand for {count: 5}; acme's G1 has three approvers


def role_longer_than_its_ledger_column(d: Data) -> None:
    d["phases"]["poc"]["gate"]["approvers"][1]["role"] = "r" * (limits.ROLE + 1)


def name_longer_than_its_ledger_column(d: Data) -> None:
    d["name"] = "n" * (limits.ENGAGEMENT_NAME + 1)


def metric_name_longer_than_its_ledger_column(d: Data) -> None:
    d["metrics"].append({"name": "m" * (limits.METRIC_NAME + 1), "source": {"kind": "manual"}})


def threshold_outside_the_metric_range(d: Data) -> None:
    d["phases"]["poc"]["exit_criteria"][1]["threshold"] = 90  # data_quality_score is declared 0-1


def metric_range_upside_down(d: Data) -> None:
    d["metrics"][0]["range"] = [1, 0]


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
    (bare_quorum_larger_than_the_approvers, "phases.poc.gate.quorum: ", "quorum 5 is more than the 3 approvers"),
    (role_longer_than_its_ledger_column, "phases.poc.gate.approvers[1].role: ", f"at most {limits.ROLE} characters"),
    (name_longer_than_its_ledger_column, "name: ", f"at most {limits.ENGAGEMENT_NAME} characters"),
    (metric_name_longer_than_its_ledger_column, "metrics[2].name: ", f"at most {limits.METRIC_NAME} characters"),
    (threshold_outside_the_metric_range, "phases.poc.exit_criteria[1].threshold: ",
     "threshold 90 is outside data_quality_score's declared range [0, 1]"),
    (metric_range_upside_down, "metrics[0].range: ", "the range's minimum is above its maximum"),
]


@pytest.mark.parametrize("name", ["acme-churn.yaml", "globex-forecast.yaml"])
def test_shipped_example_loads(name: str) -> None:
    engagement = load_engagement(ENGAGEMENTS_DIR / name)
    assert engagement.id == Path(name).stem
    for phase in engagement.phases.present():  # Phase 0 is optional
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
    colour, email = sorted(problems_of(path))
    assert colour.startswith(f"{path}: colour: unknown key (known here: id, name, vendor, ")
    # An approver's Jira email is `jira_email`, which the message now suggests.
    assert email == f"{path}: phases.poc.gate.approvers[0].email: unknown key; did you mean `jira_email`?"


@pytest.mark.parametrize(("text", "line", "column"), [
    ("id: acme-churn\nname: [unclosed\nvendor: Northwind ML\n", 3, 7),
    ("id: acme-churn\n  name: indented too far\n", 2, 7),
], ids=["unclosed-flow-sequence", "bad-indentation"])
def test_invalid_yaml_reports_line_and_column(tmp_path: Path, text: str, line: int, column: int) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: invalid YAML at line {line}, column {column}: ")


@pytest.mark.parametrize(("text", "problem"), [
    ("id: acme-\ud800churn\n", "f.yaml: invalid YAML: unacceptable character #xd800"),
    ("id: acme-\x00churn\n", "f.yaml: invalid YAML: unacceptable character #x0000"),
], ids=["lone-surrogate", "nul"])
def test_characters_no_yaml_may_hold_are_refused_as_invalid_yaml(text: str, problem: str) -> None:
    """Text handed over from a form or the ledger rather than read from a file: a lone surrogate
    (which libyaml's UTF-8 reader cannot even take) and a NUL are one clear problem, not a traceback."""
    with pytest.raises(ConfigError) as refused:
        parse_engagement(text, "f.yaml")
    [said] = refused.value.problems
    assert said.startswith(problem)


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


# --- files that would exhaust the loader: size, nesting, aliases ----------------------------------

@pytest.mark.parametrize("count", [1, "any", "all"])
def test_a_bare_quorum_is_shorthand_for_its_count(tmp_path: Path, count: int | str) -> None:
    data = acme_data()
    data["phases"]["poc"]["gate"]["quorum"] = count
    quorum = load_engagement(write(tmp_path, data)).phases.poc.gate.quorum
    assert (quorum.count, quorum.one_from_each_side) == (count, False)


def test_a_50_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A 50 MB label list once ran out of memory after minutes; the size is checked before parsing."""
    path = tmp_path / "huge.yaml"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("id: acme-churn\nlabels: [")
        chunk = "label-0000000, " * 10_000
        while handle.tell() < 50 * 2**20:
            handle.write(chunk)
        handle.write("last]\n")
    size = path.stat().st_size
    assert problems_of(path) == [f"{path}: the file is {size} bytes; an engagement file may have at most "
                                 f"{MAX_FILE_BYTES} bytes"]


def test_a_file_at_the_size_limit_is_parsed(tmp_path: Path) -> None:
    """The limit refuses only what is over it: padding a valid file with a comment up to the limit loads."""
    text = (ENGAGEMENTS_DIR / "acme-churn.yaml").read_text(encoding="utf-8")
    text += "#" * (MAX_FILE_BYTES - len(text.encode()) - 1) + "\n"
    path = tmp_path / "padded.yaml"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_engagement(path).id == "acme-churn"


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ("{a: ", "}")], ids=["sequences", "mappings"])
def test_yaml_nested_600_deep_is_a_clear_error(tmp_path: Path, opening: str, closing: str) -> None:
    """PyYAML composes nested nodes recursively: 600 levels used to end in a RecursionError traceback."""
    path = tmp_path / "deep.yaml"
    path.write_text("id: acme-churn\nname: " + opening * 600 + "x" + closing * 600 + "\n", encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: nested more than {MAX_DEPTH} levels deep at line 2, column ")


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    """A few hundred bytes of anchors and aliases can stand for a billion values once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: the file expands to more than {MAX_VALUES} values")


def test_anchors_and_aliases_within_reason_still_work(tmp_path: Path) -> None:
    text = (ENGAGEMENTS_DIR / "acme-churn.yaml").read_text(encoding="utf-8")
    text = text.replace("- {slack_user: U0SPONSOR1, name: Dana Whitfield, side: client, role: sponsor}",
                        "- &sponsor {slack_user: U0SPONSOR1, name: Dana Whitfield, side: client, role: sponsor}", 1)
    text = text.replace("- {slack_user: U0SPONSOR1, name: Dana Whitfield, side: client, role: sponsor}",
                        "- *sponsor")
    assert "*sponsor" in text
    path = tmp_path / "anchors.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_engagement(path).phases.handover.gate.approvers[0].role == "sponsor"


@pytest.mark.parametrize("bound", [".nan", ".inf", "-.inf"])
def test_a_declared_range_has_finite_bounds(tmp_path: Path, bound: str) -> None:
    text = (ENGAGEMENTS_DIR / "globex-forecast.yaml").read_text(encoding="utf-8")
    path = tmp_path / "globex.yaml"
    path.write_text(text.replace("range: [0, 1]", f"range: [0, {bound}]", 1), encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: metrics[0].range[1]: ") and "finite" in problem


def test_a_file_read_back_from_the_ledger_is_decoded_without_its_cross_field_rules() -> None:
    """The rules run when a file is registered or amended; the ledger's copy is decoded without them
    (they are most of a decode's cost at every click), but its fields are still checked."""
    from pydantic import ValidationError

    from phasegate.configs import checks
    from phasegate.configs.schema import Engagement

    data = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml").model_dump(mode="json")
    data["phases"]["poc"]["gate"]["approvers"] = data["phases"]["poc"]["gate"]["approvers"][:1]  # quorum 2 of 1
    with pytest.raises(ValidationError, match="quorum"):
        Engagement.model_validate(data)
    assert len(Engagement.model_validate(data, context=checks.STORED).phases.poc.gate.approvers) == 1
    data["phases"]["poc"]["planned_weeks"] = "soon"
    with pytest.raises(ValidationError, match="planned_weeks"):
        Engagement.model_validate(data, context=checks.STORED)

"""What a PM new to phasegate meets first: `engagement init`, the guide's planning rules at
`engagement create`, readable file errors, `--version`, and `up` without credentials."""

from __future__ import annotations

import datetime as dt
import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import Invoke, ok, refused, with_changes
from pydantic import SecretStr

from phasegate.configs.errors import ConfigError
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement, parse_engagement
from phasegate.configs.practices import planning_warnings
from phasegate.configs.template import engagement_template
from phasegate.ops.stack import missing_credentials, signing_secret
from phasegate.settings import Settings

pytestmark = pytest.mark.slow

TEMPLATE = engagement_template("new-thing", today=dt.date(2026, 11, 28))


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_engagement(text, "f.yaml")
    return caught.value.problems


def test_init_writes_a_file_that_validates_and_follows_the_guide(cli: Invoke, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "phasegate sandbox new-thing.yaml" in ok(cli("engagement", "init", "new-thing"))
    engagement = load_engagement(tmp_path / "new-thing.yaml")
    assert engagement.id == "new-thing" and planning_warnings(engagement) == []
    assert engagement.start_date.weekday() == 0
    handover = {m.key for m in engagement.phases.handover.milestones}
    assert {"documentation", "supervised-operation", "knowledge-transfer-drill", "ip-transfer",
            "data-deletion"} <= handover
    assert [c.label for c in engagement.phases.poc.exit_criteria] == ["f1 >= 0.8", "all required milestones done"]
    assert "# EDIT" in (tmp_path / "new-thing.yaml").read_text()
    refused(cli("engagement", "init", "new-thing"), "exists", "not overwritten")
    refused(cli("engagement", "init", "Bad Name"), "lowercase letters")


def test_create_warns_about_the_plan_and_registers_it(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(TEMPLATE.replace("planned_weeks: 8", "planned_weeks: 5")
                    .replace("key: data-readiness, title: Data readiness assessment", "key: scoping, title: Scoping"))
    result = cli("engagement", "create", str(path))
    assert "new-thing: registered" in ok(result)
    warnings = result.stderr
    assert "planned for 5 weeks, outside 6–12" in warnings and "no data-readiness milestone" in warnings
    assert "the guide:" in warnings


def test_strict_turns_the_warnings_into_errors(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "short.yaml"
    path.write_text(TEMPLATE.replace("planned_weeks: 5", "planned_weeks: 2"))
    result = cli("engagement", "create", "--strict", str(path))
    assert result.exit_code == 1 and "planned for 2 weeks, outside 4–8" in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("planning rules are strict")
    assert "no engagement" not in ok(cli("engagement", "list"))
    path.write_text(TEMPLATE.replace("planned_weeks: 5", "planned_weeks: 2")
                    .replace("# planning_rules: strict", "planning_rules: strict"))
    result = cli("engagement", "create", str(path))
    assert result.exit_code == 1 and "8% of the 26 planned weeks, outside 15%–20%" in result.stderr
    assert "new-thing" not in ok(cli("engagement", "list"))


def test_each_planning_rule_names_the_guides_reason() -> None:
    engagement = with_changes(parse_engagement(TEMPLATE, "f.yaml"),
                              phases__development__milestones=[{"key": "go-live", "title": "Go live"}],
                              phases__development__exit_criteria=[{"metric": "f1", "op": ">=", "threshold": 0.9}],
                              phases__handover__milestones=[])
    warnings = planning_warnings(engagement)
    found = {path: " | ".join(str(w) for w in warnings if w.path == path) for path in {w.path for w in warnings}}
    assert "process" in found["phases.development.exit_criteria[0]"]
    assert "production-hardening phase" in found["phases.development.milestones"]
    assert "handover checklist is empty" in found["phases.handover.milestones"]
    examples = {str(w) for path in ENGAGEMENTS_DIR.glob("*.yaml") for w in planning_warnings(load_engagement(path))}
    assert any("f1 >= 0.85" in w for w in examples)  # acme-churn's development exits on accuracy


def test_a_key_close_to_a_known_one_is_suggested_and_its_missing_twin_not_repeated() -> None:
    found = problems_of(TEMPLATE.replace("client_sponsor:", "sponsor:"))
    assert found == ["f.yaml: sponsor: unknown key; did you mean `client_sponsor`?"]
    found = problems_of(TEMPLATE.replace("planned_weeks: 8", "planed_weeks: 8"))
    assert found == ["f.yaml: phases.poc.planed_weeks: unknown key; did you mean `planned_weeks`?"]


def test_dates_slack_ids_and_union_values_read_as_one_problem_each() -> None:
    found = problems_of(TEMPLATE.replace("start_date: 2026-11-30", "start_date: 30/11/2026")
                        .replace("count: 2,", "count: two,").replace("slack_channel: C0", "slack_channel: general-C0")
                        .replace("pm_slack_user: U0PM000001", "pm_slack_user: dana"))
    assert found == [
        "f.yaml: pm_slack_user: must be a Slack user id such as U012ABCDEF (to find a user id in Slack: open the "
        "person's profile, ⋮ (More) → Copy member ID; in the sandbox any id of this form will do)",
        "f.yaml: start_date: must be a date written YYYY-MM-DD, such as 2026-08-03",
        "f.yaml: slack_channel: must be a Slack channel id such as C012ABCDEF (to find a channel id in Slack: "
        "click the channel's name, the id is at the bottom of the About tab)",
        "f.yaml: phases.poc.gate.quorum.count: Input should be 'all' or 'any'",
    ]


def test_criteria_written_as_text_are_read_or_refused_with_the_form_to_use() -> None:
    engagement = parse_engagement(TEMPLATE.replace("f1 >= 0.8 ", "f1>0.75 "), "f.yaml")
    assert engagement.phases.poc.exit_criteria[0].label == "f1 > 0.75"
    assert problems_of(TEMPLATE.replace("f1 >= 0.8 ", "f1 at least 0.8 ")) == [
        "f.yaml: phases.poc.exit_criteria[0]: 'f1 at least 0.8' is not a criterion: write `metric op threshold` "
        "such as `f1 >= 0.8` (op is one of >= > <= < ==), or all_required_milestones_done"]
    assert problems_of(TEMPLATE.replace("f1 >= 0.8 ", "recall >= 0.8 ")) == [
        "f.yaml: phases.poc.exit_criteria[0].metric: unknown metric 'recall' (not listed under metrics)"]


def test_version(cli: Invoke) -> None:
    assert ok(cli("--version")).startswith("phasegate 0.")


def test_up_says_what_is_missing_and_points_to_the_sandbox(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PHASEGATE_SLACK_SIGNING_SECRET.*phasegate sandbox FILE"):
        signing_secret(Settings(home=tmp_path))
    missing = missing_credentials(Settings(home=tmp_path, jira_email=None, jira_api_token=None, jira_pat=None))
    assert [m.split(" ")[0] for m in missing] == ["PHASEGATE_SLACK_BOT_TOKEN", "no"]
    assert missing_credentials(Settings(home=tmp_path, slack_bot_token=SecretStr("xoxb-1"),
                                        jira_pat=SecretStr("pat"))) == []


def test_the_env_file_points_another_shell_at_the_local_world(tmp_path: Path) -> None:
    from phasegate.sandbox.world import env_file

    world = Settings(home=tmp_path / "it's here", database_url="", jira_sites={"https://acme.atlassian.net": "http://x"})
    world.home.mkdir()
    path = env_file(world.home, world, "http://127.0.0.1:4321/api")
    assert path.stat().st_mode & 0o777 == 0o600
    shell = subprocess.run(["bash", "-c", f". {shlex.quote(str(path))} && echo \"$PHASEGATE_HOME|$PREFECT_API_URL|"
                            "$PHASEGATE_JIRA_SITES\""], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert shell.stdout.strip() == f"{world.home}|http://127.0.0.1:4321/api|" + '{"https://acme.atlassian.net": "http://x"}'

"""What the local stack hands its child processes (the Prefect server, the served flows): the
settings this process runs with, through `env=`, without rewriting this process's environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from phasegate.ops.local import Stack, cli_prefect_api
from phasegate.settings import Settings

pytestmark = pytest.mark.slow


def test_a_child_builds_the_same_settings_from_its_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = Settings(home=tmp_path, database_url="postgresql://ledger@db/phasegate", slack_bot_token=SecretStr("xoxb-1"),
                      jira_sites={"https://acme.atlassian.net": "http://127.0.0.1:9"}, jira_pat=SecretStr("pat"),
                      slack_port=0, runner_poll_seconds=0.5)
    for key, value in parent.as_env().items():
        monkeypatch.setenv(key, value)
    assert Settings() == parent


def test_children_get_the_stack_settings_not_the_parents_leftovers(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASEGATE_JIRA_EMAIL", "someone@example.com")  # not part of the stack's settings
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    with Stack(Settings(home=tmp_path, jira_email=None, runner_poll_seconds=0.5)) as stack:
        stack.api_url = "http://127.0.0.1:9/api"
        env = stack.child_env()
    assert "PHASEGATE_JIRA_EMAIL" not in env
    assert env["PHASEGATE_HOME"] == str(tmp_path)
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:9/api" and env["PREFECT_RUNNER_POLL_FREQUENCY"] == "0.5"
    assert env["PREFECT_HOME"] == str(tmp_path / "prefect")


def test_the_cli_points_prefect_at_its_api_without_touching_os_environ(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4321/api")  # set after Prefect read its settings
    before = dict(os.environ)
    with cli_prefect_api(Settings(home=tmp_path)) as url:
        assert url == PREFECT_API_URL.value() == "http://127.0.0.1:4321/api"
        assert PREFECT_SERVER_ALLOW_EPHEMERAL_MODE.value() is False
        assert dict(os.environ) == before
    assert PREFECT_API_URL.value() != url

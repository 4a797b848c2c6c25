"""`phasegate report weekly` through the CLI against the Slack, Jira and metric stand-ins: the
report carries the change requests, the scope drift and the budget; it is posted once a week,
and the portfolio digest once."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import Result
from helpers import closed_port_url, ok, register
from pydantic import SecretStr
from typer.testing import CliRunner

from phasegate.cli.main import app
from phasegate.configs.loader import ENGAGEMENTS_DIR, load_engagement
from phasegate.configs.schema import Phase
from phasegate.ledger import engagements, spend
from phasegate.ledger.db import transaction
from phasegate.orchestration.runtime import Runtime
from phasegate.sandbox.standins.jira_api import JiraStandin
from phasegate.sandbox.standins.metrics_api import MetricsStandin
from phasegate.sandbox.standins.slack_api import SlackStandin
from phasegate.settings import Settings
from phasegate.tasks.kickoff import begin_phase, link_milestones, record_baseline

PORTFOLIO = "C0PORTFOLIO"


def test_report_weekly_posts_once_with_changes_drift_budget_and_the_digest_once(
        home: Path, slack: SlackStandin, jira: JiraStandin, metrics: MetricsStandin) -> None:
    settings = Settings(home=home, database_url="", slack_api_url=slack.base_url,
                        slack_bot_token=SecretStr(slack.bot_token), jira_email=jira.email,
                        jira_api_token=SecretStr(jira.api_token), metrics_base_url=metrics.url,
                        jira_sites={"https://acme.atlassian.net": jira.url}, portfolio_channel=PORTFOLIO)
    acme = load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")
    rt = Runtime(settings)
    try:
        register(rt, acme)
        begin_phase.fn(rt, acme, Phase.POC, acme.pm_slack_user, None)
        link_milestones.fn(rt, acme, Phase.POC)
        record_baseline.fn(rt, acme, Phase.POC)
        with transaction(rt.sessions) as session:
            model = engagements.links(session, acme.id, Phase.POC)["baseline-model"]
            spend.record(session, acme, Phase.POC, "42000", by=acme.pm_slack_user, note="first month")
    finally:
        rt.close()
    drifted = jira.add_issue("ACME", "Second model: gradient boosting", epic=model)

    runner = CliRunner(env={
        "PHASEGATE_HOME": str(home), "PHASEGATE_DATABASE_URL": None, "PREFECT_API_URL": closed_port_url(),
        "COLUMNS": "200", "PHASEGATE_SLACK_API_URL": slack.base_url, "PHASEGATE_SLACK_BOT_TOKEN": slack.bot_token,
        "PHASEGATE_JIRA_SITES": json.dumps({"https://acme.atlassian.net": jira.url}),
        "PHASEGATE_JIRA_EMAIL": jira.email, "PHASEGATE_JIRA_API_TOKEN": jira.api_token,
        "PHASEGATE_METRICS_BASE_URL": metrics.url, "PHASEGATE_PORTFOLIO_CHANNEL": PORTFOLIO})

    def weekly() -> Result:
        return runner.invoke(app, ["report", "weekly", "acme-churn"])

    printed = ok(weekly())
    assert "## Scope drift (1 issues)" in printed and drifted in printed
    assert "## Change requests - none - Cumulative scope growth: +0 % against the first baseline." in printed
    assert "- PoC spend against its time-and-materials cap: 42,000 of 120,000 EUR (78,000 EUR left)" in printed
    assert "acme-churn 20" in printed and ": posted; chart " in printed
    assert f"portfolio digest posted to {PORTFOLIO}" in printed
    again = ok(weekly())
    assert "already posted this week" in again and "portfolio digest posted" not in again
    reports = [m for m in slack.messages(acme.slack_channel) if m.text.startswith("Weekly status")]
    assert len(reports) == 1 and len(slack.messages(PORTFOLIO)) == 1
    assert "Scope drift" in json.dumps(reports[0].blocks) and "42,000 of 120,000 EUR" in json.dumps(reports[0].blocks)

    listed = runner.invoke(app, ["cr", "drift", "acme-churn"])
    assert listed.exit_code == 1 and f"{drifted}  Second model: gradient boosting  (under baseline-model)" in listed.stdout
    result = runner.invoke(app, ["cr", "draft-drift", "acme-churn"])
    assert result.exit_code == 0, result.stderr
    drafted = yaml.safe_load(result.stdout)
    assert drafted["scope_added"] == [f"{drifted} Second model: gradient boosting"] and drafted["phase"] == "poc"

"""Shared fixtures: a ledger on SQLite and on PostgreSQL, the Slack/Jira/metric stand-ins, and a
Runtime wired to them. Nothing here reaches the internet."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from configs.loader import ENGAGEMENTS_DIR, load_engagement
from configs.schema import Engagement
from phasegate.ledger import engagements
from phasegate.ledger.db import make_engine, sessions, transaction, upgrade
from phasegate.ledger.models import Base
from phasegate.runtime import Runtime
from phasegate.settings import Settings
from phasegate.standins.jira_api import JiraStandin
from phasegate.standins.metrics_api import MetricsStandin
from phasegate.standins.slack_api import SlackStandin

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
PG_ADMIN = os.environ.get("PHASEGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty ledger; the tests that use it run once on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"
        upgrade(url)
        yield url
        return
    name = f"phasegate_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the ledger; every table is emptied after the test."""
    engine = make_engine(ledger_url)
    yield sessions(engine)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def slack() -> Iterator[SlackStandin]:
    standin = SlackStandin()
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def jira() -> Iterator[JiraStandin]:
    standin = JiraStandin("cloud")
    standin.start()
    standin.add_project("ACME")
    yield standin
    standin.stop()


@pytest.fixture
def metrics() -> Iterator[MetricsStandin]:
    standin = MetricsStandin()
    standin.start()
    standin.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)
    yield standin
    standin.stop()


def settings_for(ledger_url: str, slack: SlackStandin, jira: JiraStandin, metrics: MetricsStandin,
                 home: Path) -> Settings:
    return Settings(home=home, database_url=ledger_url, slack_api_url=slack.base_url,
                    slack_bot_token=slack.bot_token, slack_signing_secret="test-secret",
                    jira_sites={"https://acme.atlassian.net": jira.url}, jira_email=jira.email,
                    jira_api_token=jira.api_token, jira_pat=jira.pat, metrics_base_url=metrics.url,
                    evidence_retry_seconds=0.0)  # outages are read again at once; tests that count waits set it


@pytest.fixture
def rt(ledger: sessionmaker[Session], ledger_url: str, slack: SlackStandin, jira: JiraStandin,
       metrics: MetricsStandin, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(settings_for(ledger_url, slack, jira, metrics, tmp_path))
    yield runtime
    runtime.close()


@pytest.fixture
def acme() -> Engagement:
    return load_engagement(ENGAGEMENTS_DIR / "acme-churn.yaml")


def register(rt: Runtime, engagement: Engagement) -> None:
    with transaction(rt.sessions) as session:
        engagements.register(session, engagement)


def with_changes(engagement: Engagement, **changes: object) -> Engagement:
    """A copy of the engagement with top-level or dotted-path fields replaced, validated again."""
    data = json.loads(engagement.model_dump_json())
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return Engagement.model_validate(data)


def open_poc_gate(rt: Runtime, engagement: Engagement, requested_by: str = "U0PMACME01",
                  finished: JiraStandin | None = None) -> int:
    """Register the engagement and take its PoC to an open G1 with the real tasks (no Prefect run);
    with `finished`, the milestones' issues are done in that Jira first."""
    from configs.schema import Phase
    from tasks.gates import open_gate
    from tasks.kickoff import begin_phase, link_milestones, post_kickoff

    register(rt, engagement)
    begin_phase.fn(rt, engagement, Phase.POC, requested_by, None)
    post_kickoff.fn(rt, engagement, Phase.POC)
    link_milestones.fn(rt, engagement, Phase.POC)
    if finished is not None:
        finish_milestones(rt, finished, engagement.id, Phase.POC)
    return open_gate.fn(rt, engagement, Phase.POC, 1, requested_by, None)


def finish_milestones(rt: Runtime, jira: JiraStandin, engagement_id: str, phase: object) -> None:
    """Mark every Jira issue linked to the phase's milestones done, as the vendor would."""
    with transaction(rt.sessions) as session:
        links = engagements.links(session, engagement_id, phase)  # type: ignore[arg-type]
    for key in links.values():
        jira.set_status(key, "Done", done=True)


def jira_issues(jira: JiraStandin, project: str) -> list[str]:
    """Keys of every issue in the stand-in's project, by walking KEY-1, KEY-2, ..."""
    keys = []
    while True:
        key = f"{project}-{len(keys) + 1}"
        try:
            jira.issue(key)
        except KeyError:
            return keys
        keys.append(key)

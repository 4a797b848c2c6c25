"""The weekly status flow end to end: a real Prefect server serving the flows as `phasegate up`
does, the flow run against it, artifacts keyed per engagement, and a second run posting nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import posted_gate, sent_to_prefect
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect_seed import seeded

from phasegate.flows.weekly_status import weekly_status
from phasegate.orchestration.names import WEEKLY_CRON, WEEKLY_DEPLOYMENT_NAME, WEEKLY_FLOW
from phasegate.sandbox.world import Demo, demo_engagements, local_world
from phasegate.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with local_world(seeded(Settings(home=tmp_path_factory.mktemp("weekly"), database_url=""))) as demo:
        yield demo
        sent_to_prefect()  # the flows below run in this process; what they sent goes out before the server stops


def test_weekly_flow_posts_once_and_saves_artifacts(world: Demo) -> None:
    acme = demo_engagements()["acme-churn"]
    world.metrics.set("acme-churn-poc", f1=0.88, data_quality_score=0.93)
    posted_gate(world.rt, acme)
    with pytest.MonkeyPatch.context() as env:  # the flow builds its settings from the environment, as a run does
        for name, value in world.rt.settings.as_env().items():
            env.setenv(name, value)
        first = weekly_status(engagement_ids=["acme-churn"], force=True)
        again = weekly_status(engagement_ids=["acme-churn"], force=True)
    assert first["posted"] == ["acme-churn"] and first["failed"] == []
    assert again["reported"] == ["acme-churn"] and again["posted"] == []
    reports = [m for m in world.slack.messages(acme.slack_channel) if m.text.startswith("Weekly status")]
    assert len(reports) == 1 and len(world.slack.files.shared(acme.slack_channel)) == 1
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["weekly-acme-churn", "weekly-acme-churn-table"])))
        deployment = client.read_deployment_by_name(f"{WEEKLY_FLOW}/{WEEKLY_DEPLOYMENT_NAME}")
    kinds = sorted((a.key, a.type) for a in artifacts)
    assert ("weekly-acme-churn", "markdown") in kinds and ("weekly-acme-churn-table", "table") in kinds
    markdown = next(a for a in artifacts if a.type == "markdown")
    assert "# ACME churn prediction" in str(markdown.data) and "-burnup.png" in str(markdown.data)
    assert [s.schedule.cron for s in deployment.schedules] == [WEEKLY_CRON]  # type: ignore[union-attr]

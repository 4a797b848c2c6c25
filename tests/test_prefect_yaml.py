"""prefect.yaml declares the deployments `phasegate up` serves, under the same names and schedules."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.flows import load_flow_from_entrypoint

from phasegate.orchestration import names
from phasegate.settings import Settings

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"


def test_prefect_yaml_matches_the_served_deployments() -> None:
    config = yaml.safe_load(PREFECT_YAML.read_text())
    declared = {f"{load_flow_from_entrypoint(d['entrypoint']).name}/{d['name']}": d for d in config["deployments"]}
    assert set(declared) == {names.PHASE_DEPLOYMENT, f"{names.WATCH_FLOW}/{names.WATCH_DEPLOYMENT_NAME}",
                             names.CR_DEPLOYMENT, f"{names.WEEKLY_FLOW}/{names.WEEKLY_DEPLOYMENT_NAME}"}
    assert {d["work_pool"]["name"] for d in declared.values()} == {names.WORK_POOL}
    watch = declared[f"{names.WATCH_FLOW}/{names.WATCH_DEPLOYMENT_NAME}"]["schedules"]
    assert watch == [{"interval": Settings.model_fields["watch_interval_seconds"].default}]
    assert declared[f"{names.WEEKLY_FLOW}/{names.WEEKLY_DEPLOYMENT_NAME}"]["schedules"] == [{"cron": names.WEEKLY_CRON}]
    assert config["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "."}}]  # no git

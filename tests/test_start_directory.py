"""`phasegate up` started in a directory holding a file named like a library (`jira.py`, say) must
not import it: the served flows and their runs start in phasegate's own home, not where the user
typed the command."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import wait_until
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect_seed import seeded

from phasegate.ledger.db import upgrade
from phasegate.ops.local import Stack
from phasegate.orchestration.names import WATCH_DEPLOYMENT_NAME, WATCH_FLOW
from phasegate.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_jira_py_where_up_starts_does_not_break_the_gate_watch(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    start = tmp_path / "project"
    start.mkdir()
    (start / "jira.py").write_text("raise ImportError('the PM notes file, not the Jira library')\n")
    monkeypatch.chdir(start)
    settings = Settings(home=tmp_path / "home", database_url="", prefect_port=0, slack_port=0)
    upgrade(settings.ledger_url)
    with Stack(seeded(settings)) as stack:
        stack.prefect_server()
        stack.flows()  # fails here when the served process imports ./jira.py
        def served() -> bool:  # the runner registers its deployments one after the other
            with get_client(sync_client=True) as client:
                try:
                    return bool(client.read_deployment_by_name(f"{WATCH_FLOW}/{WATCH_DEPLOYMENT_NAME}"))
                except ObjectNotFound:
                    return False

        wait_until(served, timeout=60, what="the gate watch deployment", interval=0.5)
        run = run_deployment(f"{WATCH_FLOW}/{WATCH_DEPLOYMENT_NAME}", timeout=0)

        def final() -> str | None:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(run.id).state
            return state.type.value if state is not None and state.is_final() else None

        assert wait_until(final, timeout=120, what="the gate watch run to finish", interval=0.5) == "COMPLETED"

"""Task retries are for passing outages only: the real `outside_task` decorator, run by a real
Prefect server, retries ServiceUnavailable and fails a PolicyError at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import sent_to_prefect
from prefect import flow
from prefect_seed import seeded

from phasegate.errors import PolicyError, ServiceUnavailable
from phasegate.ops.local import Stack
from phasegate.settings import Settings
from phasegate.tasks import outside_task

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module", autouse=True)
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A real Prefect server on a migrated database (tests/prefect_seed.py), which this process's flows
    report to: `prefect_test_harness` would migrate a new database first, three times the CPU."""
    settings = seeded(Settings(home=tmp_path_factory.mktemp("retries"), database_url=""))
    with Stack(settings) as stack:
        stack.prefect_server()
        yield
        sent_to_prefect()  # before the server stops


def failing_task(error: Exception, times: int, attempts: list[int]) -> object:
    """An `outside_task` that raises `error` on its first `times` attempts (no delay between them)."""

    @outside_task
    def step() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) <= times:
            raise error
        return "done"

    return step.with_options(retry_delay_seconds=0)


def test_a_policy_error_is_not_retried() -> None:
    attempts: list[int] = []
    step = failing_task(PolicyError("extending would pass the maximum"), 5, attempts)

    @flow
    def run() -> object:
        return step()  # type: ignore[operator]

    with pytest.raises(PolicyError, match="pass the maximum"):
        run()
    assert attempts == [1]


def test_a_passing_outage_is_retried() -> None:
    attempts: list[int] = []
    step = failing_task(ServiceUnavailable("Slack could not be reached"), 2, attempts)

    @flow
    def run() -> object:
        return step()  # type: ignore[operator]

    assert run() == "done"
    assert attempts == [1, 2, 3]

"""Task retries are for passing outages only: the real `outside_task` decorator, run by a real
Prefect API (`prefect_test_harness`), retries ServiceUnavailable and fails a PolicyError at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect import flow

from phasegate.errors import PolicyError, ServiceUnavailable
from phasegate.tasks import outside_task

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module", autouse=True)
def prefect_api() -> Iterator[None]:
    # Imported here: it loads Prefect's whole server (seconds), which every xdist worker would
    # otherwise pay while collecting, whether or not it runs these tests.
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


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

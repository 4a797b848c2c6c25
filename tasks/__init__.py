"""Prefect tasks: one unit of work each, thin wrappers over the ledger and the integrations.

Results are never cached by Prefect: a flow re-run after a suspend finds earlier work in the
ledger instead, which holds across processes and machines.
"""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from phasegate.errors import ServiceUnavailable


def only_outages(_task: Task[..., Any], _task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a passing outage (Slack, Jira or Prefect could not be reached) and nothing else: a
    refusal of the policy, a validation error or a bug fails the same way on every attempt, and
    retrying it would only delay the failure by minutes."""
    return isinstance(state.data, ServiceUnavailable)


ledger_task = task(cache_policy=NO_CACHE)
# Tasks that talk to Slack or Jira retry a passing outage; each is safe to run again.
outside_task = task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 30, 120],
                    retry_condition_fn=only_outages)

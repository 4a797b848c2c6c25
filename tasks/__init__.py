"""Prefect tasks: one unit of work each, thin wrappers over the ledger and the integrations.

Results are never cached by Prefect: a flow re-run after a suspend finds earlier work in the
ledger instead, which holds across processes and machines.
"""

from prefect import task
from prefect.cache_policies import NO_CACHE

ledger_task = task(cache_policy=NO_CACHE)
# Tasks that talk to Slack or Jira retry a passing outage; each is safe to run again.
outside_task = task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 30, 120])

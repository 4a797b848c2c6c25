"""Prefect tasks: one unit of work each, thin wrappers over the ledger and the integrations."""

# Tasks that talk to Slack or Jira retry a passing outage; each is safe to run again.
OUTSIDE_RETRIES = {"retries": 3, "retry_delay_seconds": [5, 30, 120]}

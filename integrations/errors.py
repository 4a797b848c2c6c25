"""Errors of the outside world. Integrations raise only these; the core decides what they mean.

    IntegrationError           an outside service failed or answered something unusable
    ├── EvidenceUnavailable    a metric or Jira source answered, but not with usable evidence
    └── ServiceUnavailable     Slack, Jira, Prefect or the ledger database could not be reached

Why a tree of its own: integrations are leaves and import nothing of phasegate, so they cannot
raise the core's errors. `phasegate.errors` re-exports these names, and the CLI, the endpoint and
the flows treat them like the core's own (see `phasegate.errors.EXPECTED`).
"""

from __future__ import annotations


class IntegrationError(Exception):
    pass


class EvidenceUnavailable(IntegrationError):
    pass


class ServiceUnavailable(IntegrationError):
    """A passing outage: worth retrying later (Prefect task retries look for exactly this)."""

"""Errors of the outside world. Integrations raise only these; the core decides what they mean.

    IntegrationError           an outside service failed or answered something unusable
    ├── EvidenceUnavailable    a metric or Jira source answered, but not with usable evidence
    └── ServiceUnavailable     Slack, Jira, Prefect or the ledger database could not be reached

Why a tree of its own: integrations are leaves and import nothing of phasegate, so they cannot
raise the core's errors. `phasegate.errors` re-exports these names, and the CLI, the endpoint and
the flows treat them like the core's own (see `phasegate.errors.EXPECTED`).
"""

from __future__ import annotations

import math
import re
import time


class IntegrationError(Exception):
    pass


class EvidenceUnavailable(IntegrationError):
    pass


class ServiceUnavailable(IntegrationError):
    """A passing outage: worth retrying later (Prefect task retries look for exactly this).

    `retry_after` is the wait in seconds the service asked for (its Retry-After), if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(header: str) -> float:
    """A Retry-After header (seconds or an HTTP-date) in seconds; unreadable is infinite, never 0."""
    if re.fullmatch(r"\s*\d+\s*", header):
        return int(header)
    from email.utils import mktime_tz, parsedate_tz  # email loads only for an HTTP-date (every command imports this)

    parsed = parsedate_tz(header)
    return math.inf if parsed is None else max(0.0, mktime_tz(parsed) - time.time())

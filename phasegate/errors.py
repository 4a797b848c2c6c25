"""phasegate's exceptions. The CLI turns each into one line; nothing here is shown as a traceback.

    PhasegateError
    ├── ConfigError            an engagement file is missing, unreadable or invalid
    ├── NotFound               an engagement, gate or run that does not exist
    ├── PolicyError            a decision the gate policy refuses (not an approver, no reason, ...)
    │   ├── GateClosed         the gate revision was already decided or superseded
    │   └── InvalidTransition  a gate or engagement asked to move to a state its table does not allow
    ├── InternalError          something phasegate's own code guarantees did not hold: a bug to report
    └── IntegrationError       an outside service failed or answered something unusable
        ├── EvidenceUnavailable    a metric or Jira source could not be read
        └── ServiceUnavailable     Slack, Jira or Prefect could not be reached
"""

from __future__ import annotations


class PhasegateError(Exception):
    """Base of every error phasegate raises on purpose."""


class ConfigError(PhasegateError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class NotFound(PhasegateError):
    pass


class PolicyError(PhasegateError):
    pass


class GateClosed(PolicyError):
    pass


class InvalidTransition(PolicyError):
    """Raised, never asserted: `python -O` would silently drop an assert and let the state change."""


class InternalError(PhasegateError):
    """An invariant of phasegate's own making was broken (validated config, ledger rows that must exist)."""


class IntegrationError(PhasegateError):
    pass


class EvidenceUnavailable(IntegrationError):
    pass


class ServiceUnavailable(IntegrationError):
    pass

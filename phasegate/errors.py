"""phasegate's exceptions. The CLI turns each into one line; nothing here is shown as a traceback.

    PhasegateError
    ├── NotFound               an engagement, gate or run that does not exist
    ├── PolicyError            a decision the gate policy refuses (not an approver, no reason, ...)
    │   ├── GateClosed         the gate revision (or change request) was already decided or superseded
    │   ├── ReasonRequired     an answer allowed only with a written reason (or waiver), given none
    │   └── InvalidTransition  a gate or engagement asked to move to a state its table does not allow
    ├── InvalidRequest         a change request whose fields are wrong; `problems` maps field -> reason
    ├── LedgerUnavailable      the ledger cannot take or answer a call; `fault` says why (a LedgerFault)
    └── InternalError          something phasegate's own code guarantees did not hold: a bug to report

From the leaves, re-exported here so callers need one import:

    phasegate.configs.errors.ConfigError              an engagement file is missing, unreadable or invalid
    phasegate.integrations.errors.IntegrationError    an outside service failed or answered something unusable
    ├── EvidenceUnavailable                 a metric or Jira source could not be read
    └── ServiceUnavailable                  Slack, Jira, Prefect or the ledger could not be reached

`EXPECTED` is every error raised on purpose: catch it where a failure becomes a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from phasegate.configs.errors import ConfigError
from phasegate.integrations.errors import EvidenceUnavailable, IntegrationError, ServiceUnavailable

__all__ = ["EXPECTED", "ConfigError", "EvidenceUnavailable", "GateClosed", "IntegrationError", "InternalError",
           "InvalidRequest", "InvalidTransition", "LedgerFault", "LedgerUnavailable", "NotFound", "PhasegateError", "PolicyError", "ReasonRequired",
           "ServiceUnavailable"]


class PhasegateError(Exception):
    """Base of every error the core raises on purpose."""


class NotFound(PhasegateError):
    pass


class PolicyError(PhasegateError):
    pass


class GateClosed(PolicyError):
    """`mentions`: the Slack users the message names as `<@U…>` (who decided), kept as mentions where
    Slack shows it (phasegate.messages.refusals); the rest of the message may quote outside text."""

    def __init__(self, message: str, *, mentions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.mentions = tuple(mentions)


class ReasonRequired(PolicyError):
    """An answer that needs a written reason; `waives` says what a waiver would move past, in words
    (phasegate.rules.policy.what_stands), empty when the reason is not a waiver's."""

    def __init__(self, message: str, *, waives: str = "") -> None:
        super().__init__(message)
        self.waives = waives


class InvalidTransition(PolicyError):
    """Raised, never asserted: `python -O` would silently drop an assert and let the state change."""


class InternalError(PhasegateError):
    """An invariant of phasegate's own making was broken (validated config, ledger rows that must exist)."""


class InvalidRequest(PhasegateError):
    """Every problem with a change request's fields at once, keyed by field, so a Slack modal can
    show each next to its input and the CLI can print them all."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems.items()))


class LedgerFault(Enum):
    """Why the ledger cannot take a call (phasegate.ledger.faults tells them apart)."""

    DISK_FULL = "disk full"
    READ_ONLY = "read-only"
    UNREACHABLE = "unreachable"  # the database is down, or refuses connections
    NO_ANSWER = "no answer"  # hung, frozen or too busy to answer in time
    SCHEMA_MISSING = "schema missing"  # `phasegate db upgrade` has not been run on it

    @property
    def transient(self) -> bool:
        """A fault that usually passes by itself (a restart, a burst); the others need an operator."""
        return self in (LedgerFault.UNREACHABLE, LedgerFault.NO_ANSWER)


class LedgerUnavailable(PhasegateError):
    """The ledger could not take or answer a call; the message says what it is and what to do."""

    def __init__(self, fault: LedgerFault, message: str) -> None:
        super().__init__(message)
        self.fault = fault


EXPECTED: tuple[type[Exception], ...] = (PhasegateError, IntegrationError, ConfigError)

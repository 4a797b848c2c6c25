"""Beside the build (issue 20): the running knowledge-transfer checks, the vendor's named team and
the data-deletion deadline, as pure rules over what the ledger recorded.

The guide's "handoff trap": a model nobody on the client's team can reproduce. Its fix starts on
day 1, so from the PoC's first week through development the weekly report asks the client side each
week whether these hold (`KT_PHASES`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from phasegate.configs.schema import Phase
from phasegate.configs.sponsor_schema import DataHandling, TeamMember

# key -> what the client side vouches for (the guide, section 3, "Beware the Handoff Trap").
KT_CHECKS: dict[str, str] = {
    "repository": "The vendor works in our repositories",
    "decisions": "Decisions are written down as they are made",
    "pairing": "Our engineers pair with the vendor's",
}
KT_PHASES = (Phase.POC, Phase.DEVELOPMENT)  # the vendor's build phases: knowledge transfer starts on day 1
DATA_DELETED = "data-deleted"  # the vendor's copies of the client's data deleted, after the deadline
CHECKS: dict[str, str] = {**KT_CHECKS, DATA_DELETED: "The vendor's copies of our data are deleted"}
FRESH = dt.timedelta(days=7)  # a running check attested longer ago than this is asked for again


@dataclass(frozen=True)
class Attested:
    check: str
    holds: bool
    by: str
    at: dt.datetime
    note: str = ""


@dataclass(frozen=True)
class Change:
    """One recorded change of the vendor's team."""

    kind: str  # "joined" or "left"
    name: str
    role: str
    by: str
    at: dt.datetime
    reason: str = ""


def roster(team: list[TeamMember], changes: list[Change]) -> list[tuple[str, str]]:
    """(name, role) of the vendor's team today: the file's, with each recorded change applied."""
    current = [(m.name, m.role) for m in team]
    for change in changes:
        current = [(n, r) for n, r in current if n.casefold() != change.name.casefold()]
        if change.kind == "joined":
            current.append((change.name, change.role))
    return current


def latest(attested: list[Attested]) -> dict[str, Attested]:
    """Each check's latest attestation (the list is oldest first)."""
    return {a.check: a for a in attested}


def deletion_state(handling: DataHandling, today: dt.date, deleted: Attested | None) -> str:
    """`done`, `overdue` (past the deadline, not attested), `due` (within the reminder window) or `later`."""
    if deleted is not None and deleted.holds:
        return "done"
    if today > handling.deletion_deadline:
        return "overdue"
    if (handling.deletion_deadline - today).days <= handling.remind_days_before:
        return "due"
    return "later"

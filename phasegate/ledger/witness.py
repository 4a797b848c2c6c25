"""The audit chain's head as witnessed outside the database, compared with the chain.

Why: someone who can write the database (the owner, anyone with the SQLite file) can rewrite an
event and recompute every later hash and the head, or delete the newest events with the rows they
sealed and move the head back; the chain is then consistent with itself. phasegate already writes
to a place that person cannot rewrite: Slack. Each decision and weekly report posted there carries
the chain head of the moment (sequence and hash, phasegate.messages.witness), and `audit verify`
reads them back and compares each with the chain here:

- a witnessed sequence beyond the chain's end: the chain was truncated;
- a different hash at that sequence (or none): the chain was rewritten.

This module only compares; reading Slack is the caller's (phasegate.messages.witness.read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.ledger import chain
from phasegate.ledger.models import Base


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True)
class Witnessed:
    """A chain head as one message outside the database holds it; `where` names the message."""

    seq: int
    hash: str
    where: str


@dataclass
class WitnessCheck:
    """What the witnesses of one engagement's chain say; `not_checked` is why they could not be read."""

    engagement_id: str
    witnesses: list[Witnessed] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    not_checked: str | None = None


def head(session: Session, engagement_id: str) -> Head:
    """The engagement's chain head as the ledger records it now (seq 0 at GENESIS: no events yet)."""
    heads = Base.metadata.tables["audit_heads"]
    row = session.execute(select(heads.c.seq, heads.c.hash).where(heads.c.engagement_id == engagement_id)).first()
    return Head(int(row.seq), str(row.hash)) if row is not None else Head(0, chain.GENESIS)


def compare(session: Session, engagement_id: str, witnessed: Sequence[Witnessed]) -> WitnessCheck:
    """Each witnessed head against the stored chain, one problem line per disagreeing message."""
    events = Base.metadata.tables["audit_events"]
    rows = session.execute(select(events.c.seq, events.c.hash).where(events.c.engagement_id == engagement_id))
    stored: dict[int, str] = {int(row.seq): str(row.hash) for row in rows}
    end = max(stored, default=0)
    check = WitnessCheck(engagement_id, witnesses=sorted(witnessed, key=lambda w: w.seq))
    say = check.problems.append
    for w in check.witnesses:
        held = chain.GENESIS if w.seq == 0 else stored.get(w.seq)
        if w.seq > end:
            say(f"{engagement_id}: truncated: {w.where} witnessed event #{w.seq} ({w.hash[:16]}), but the chain "
                f"ends at #{end}")
        elif held is None:
            say(f"{engagement_id}: event #{w.seq}, witnessed by {w.where}, is missing (deleted)")
        elif held != w.hash:
            say(f"{engagement_id}: rewritten: {w.where} witnessed event #{w.seq} as {w.hash[:16]}, the chain "
                f"now holds {held[:16]} there")
    return check

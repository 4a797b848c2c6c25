"""Audit events: inserted in the same transaction as the change they describe, never updated, and
chained per engagement (see phasegate/ledger/chain.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from phasegate.ledger import chain
from phasegate.ledger.models import Base
from phasegate.states import AuditKind


def record(session: Session, engagement_id: str, kind: AuditKind, subject: str = "", *, covers: Base | None = None,
           **payload: Any) -> None:
    """Append an event to the engagement's chain; `covers` is the decision or snapshot it seals."""
    chain.append(session, engagement_id, kind, subject, payload, covers)

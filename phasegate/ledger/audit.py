"""Audit events: inserted in the same transaction as the change they describe, never updated."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from phasegate.ledger.models import AuditEventRow
from phasegate.states import AuditKind


def record(session: Session, engagement_id: str, kind: AuditKind, subject: str = "", **payload: Any) -> None:
    session.add(AuditEventRow(engagement_id=engagement_id, kind=kind, subject=subject, payload=payload))

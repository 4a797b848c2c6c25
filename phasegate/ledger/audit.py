"""Audit events: inserted in the same transaction as the change they describe, never updated, and
chained per engagement (see phasegate/ledger/chain.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from phasegate.ledger import chain, seals
from phasegate.ledger.models import AuditEventRow, Base
from phasegate.states import AuditKind


def record(session: Session, engagement_id: str, kind: AuditKind, subject: str = "", *, covers: Base | None = None,
           **payload: Any) -> None:
    """Append an event to the engagement's chain; `covers` is the row it seals (a decision, snapshot or
    spend entry by `chain.ROW_COLUMNS`, any other deciding row by `seals.SEALED`)."""
    table = getattr(covers, "__tablename__", None)
    if covers is not None and table in seals.SEALED:
        session.flush()
        key = chain.db_columns(covers)[1]["id"]
        chain.extend(session, engagement_id, [seals.link(session, kind, subject, payload, str(table), key)])
        return
    chain.append(session, engagement_id, kind, subject, payload, covers)


def exists(session: Session, engagement_id: str, kind: AuditKind, subject: str, **payload: Any) -> bool:
    """Whether an event of this kind was recorded with (at least) this payload: a re-run step's check."""
    rows = session.scalars(select(AuditEventRow).where(AuditEventRow.engagement_id == engagement_id,
                                                       AuditEventRow.kind == kind, AuditEventRow.subject == subject))
    return any(all(row.payload.get(k) == v for k, v in payload.items()) for row in rows)


def events(session: Session, engagement_id: str, kind: AuditKind, subject: str | None = None) -> list[AuditEventRow]:
    """The engagement's events of one kind (and subject), oldest first."""
    query = select(AuditEventRow).where(AuditEventRow.engagement_id == engagement_id, AuditEventRow.kind == kind)
    if subject is not None:
        query = query.where(AuditEventRow.subject == subject)
    return list(session.scalars(query.order_by(AuditEventRow.seq)))

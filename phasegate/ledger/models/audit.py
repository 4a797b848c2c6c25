"""The audit trail: one hash chain of events per engagement, and where each chain ends."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.configs import limits
from phasegate.ledger.models.base import Base, enum_column, utcnow
from phasegate.states import AuditKind


class AuditEventRow(Base):
    """One link of an engagement's audit chain. A decision or snapshot is named by row_table/row_id,
    with the SHA-256 of its content in row_hash, by the event written in the same transaction."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("engagement_id", "seq", name="uq_audit_events_seq"),
                      UniqueConstraint("engagement_id", "prev_hash", name="uq_audit_events_prev_hash"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(String(limits.ENGAGEMENT_ID), index=True)
    kind: Mapped[AuditKind] = mapped_column(enum_column(AuditKind))
    subject: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    seq: Mapped[int]  # 1, 2, ... within the engagement's chain
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    row_table: Mapped[str | None] = mapped_column(String(32), default=None)
    row_id: Mapped[int | None] = mapped_column(default=None)
    row_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # How `hash` was made (phasegate.ledger.chain.Seal): "sha256", or "hmac-sha256" under the audit key.
    seal: Mapped[str] = mapped_column(String(16), server_default="sha256")  # no Python default: old migrations insert without it


class AuditHeadRow(Base):
    """Where an engagement's audit chain ends. Appends lock this row, one writer per chain at a time,
    and `audit verify` compares it with the last event, so deleting the newest events shows."""

    __tablename__ = "audit_heads"

    engagement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))

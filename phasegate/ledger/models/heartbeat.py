"""One row that `/readyz` and `/healthz` update and commit, to prove the ledger takes a write: a
read answers while a full disk, a read-only file or mount, or a read-only server refuses every write."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from phasegate.ledger.models.base import Base, utcnow


class HeartbeatRow(Base):
    __tablename__ = "ledger_heartbeat"

    probe: Mapped[str] = mapped_column(String(32), primary_key=True)
    written_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

"""The ledger's column types, without the ORM: aware UTC datetimes on every backend and enums stored as
their values. The ORM models (phasegate.ledger.models) use them; the read commands, which load no
SQLAlchemy, decode the same stored values with phasegate.ledger.tables' decoders (tested against these)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Enum, TypeDecorator
from sqlalchemy.engine import Dialect

from phasegate.ledger.tables import utc_datetime


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return utc_datetime(value)  # the read commands' decoder: one rule for both


def enum_column(cls: type[Any], name: str | None = None) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])

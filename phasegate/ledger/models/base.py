"""The ledger's declarative base and its column types: aware UTC datetimes on every backend, JSON
mappings, and enums stored as their values."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.orm import DeclarativeBase

from phasegate.ledger.types import UTCDateTime, enum_column

__all__ = ["Base", "UTCDateTime", "enum_column", "utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}

"""The tables the read commands (`gate list`, `status`) read, and how their stored values decode, without
SQLAlchemy.

Each table is its columns, each column the Python type it decodes to: `int`, `str`, `bool`, `dict` (a
JSON column), `dt.date`, `dt.datetime` (phasegate.ledger.types.UTCDateTime) or an enum class
(phasegate.ledger.types.enum_column, stored as the member's value). The decoders below turn what
sqlite3 and psycopg hand back into what the ORM's types give: SQLite keeps dates and datetimes as ISO
strings, JSON as text (psycopg is told to hand JSON back as text too, phasegate.ledger.read) and
booleans as 0/1. tests/test_read_commands.py checks every column here is the model's, of the same type,
and that the decoders give what the ORM reads, on both backends.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phasegate.configs.enums import Phase
from phasegate.states import AuditKind, EngagementState, GateState, Outcome, Rag

Decode = Callable[[Any], Any]


def utc_datetime(value: str | dt.datetime | None) -> dt.datetime | None:
    """UTCDateTime's: an aware UTC datetime (SQLite stores the naive UTC time as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def date_value(value: str | dt.date | None) -> dt.date | None:
    """Date's: SQLite stores "YYYY-MM-DD"."""
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def json_value(value: str | None) -> Any:
    """JSON's: the document's text, parsed (a stored JSON null and SQL NULL are both None)."""
    return None if value is None else json.loads(value)


def boolean(value: int | bool | None) -> bool | None:
    """Boolean's: SQLite stores 0 or 1."""
    return None if value is None else bool(value)


def enum_member(cls: type[enum.Enum]) -> Decode:
    """enum_column's: the member whose value is stored."""
    return lambda value: None if value is None else cls(value)


def decoder(kind: type[Any]) -> Decode | None:
    """How a column of `kind` decodes; None when the driver's value is already it (int, str)."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return enum_member(kind)
    return DECODERS.get(kind)


DECODERS: dict[type[Any], Decode] = {dt.datetime: utc_datetime, dt.date: date_value, dict: json_value, bool: boolean}


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, type[Any]]

    def names(self, alias: str | None = None, *, leave_out: tuple[str, ...] = ()) -> str:
        """The select list of its columns ("g.id, g.phase, ...")."""
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + name for name in self.columns if name not in leave_out)


engagements = Table("engagements", {"id": str, "name": str, "state": EngagementState, "current_phase": Phase})

gates = Table("gates", {
    "id": int, "engagement_id": str, "phase": Phase, "timebox": int, "revision": int, "state": GateState,
    "digest": str, "requested_by": str, "outcome": Outcome, "opened_at": dt.datetime, "overdue_at": dt.datetime,
})

audit_events = Table("audit_events", {"id": int, "engagement_id": str, "kind": AuditKind, "subject": str,
                                      "payload": dict, "seq": int})

decisions = Table("decisions", {"id": int, "gate_id": int, "approver": str, "outcome": Outcome})

engagement_status = Table("engagement_status", {
    "engagement_id": str, "timezone": str, "phase_started": dt.date, "planned_weeks": int, "booked_weeks": int,
    "timebox_ends_on": dt.date, "over_budget": bool, "near_cap": bool, "deletion_deadline": dt.date,
    "last_report_week": str, "last_report_rag": Rag, "gates": dict,
})

ALL = (engagements, gates, audit_events, decisions, engagement_status)

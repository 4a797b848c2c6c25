"""Every row that decides an engagement's course, sealed by the chain event that wrote it.

Decisions, evidence snapshots and spend entries are sealed by `chain.ROW_COLUMNS`. The other rows
that decide anything are sealed here: engagements (the file that says who approves), gates (state
and outcome), change requests and the answers to them, attestations, hand-typed metric values,
scope baselines and timeboxes. The event written with each change names the row (`row_table`, `row_id`; an
engagement's own row is row 0 of its chain) and holds the SHA-256 of the row's sealed columns as
they now stand in the database (`row_hash`). The payload also carries those columns in short form
(`sealed`: small values as they are, larger ones as `sha256:` and 12 hex digits), so `audit verify`
names the column that differs, not only the row.

Rows written once (answers, attestations, metric values, baselines) are append-only in the database
as well (migration 0011); rows that move on (an engagement, a gate, a change request, a
timebox) are checked
against the newest event that sealed them. `check` is what `audit verify` runs: every sealed row
hashes as its newest event recorded, every row of these tables has an event, every sealed row still
exists, and no column holds a value the code does not know (a gate state `DECIDED`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Enum, Float, RowMapping, String, Table, select, type_coerce
from sqlalchemy.orm import Session

from phasegate.ledger import chain
from phasegate.ledger.models import Base

SEALED: dict[str, tuple[str, ...]] = {
    "engagements": ("id", "name", "config", "config_digest", "state", "current_phase", "closed_reason"),
    "gates": ("id", "engagement_id", "phase", "timebox", "revision", "state", "snapshot_id", "digest",
              "requested_by", "outcome", "decided_at"),
    "change_requests": ("id", "engagement_id", "number", "title", "rationale", "phase", "requested_by", "source",
                        "operator", "scope_added", "scope_removed", "effort_days", "schedule_days", "cost",
                        "not_estimated", "revision", "amendment", "base_digest", "assessment", "state",
                        "baseline_version", "closed_reason", "decided_at", "created_at"),
    "change_decisions": ("id", "change_request_id", "outcome", "approver", "side", "role", "reason", "revision",
                         "channel", "delivery_id", "operator", "created_at"),
    "attestations": ("id", "engagement_id", "phase", "milestone", "attested_by", "channel", "note", "operator",
                     "created_at"),
    "metric_submissions": ("id", "engagement_id", "metric", "value", "raw_value", "submitted_by", "operator",
                           "created_at"),
    "baselines": ("id", "engagement_id", "version", "scope", "created_at"),
    "timeboxes": ("id", "engagement_id", "phase", "number", "weeks", "ends_on", "reason", "review_requested"),
}
NOUNS = {"engagements": "engagement", "gates": "gate", "change_requests": "change request",
         "change_decisions": "change-request answer", "attestations": "attestation",
         "metric_submissions": "metric submission", "baselines": "baseline", "timeboxes": "timebox"}
ENGAGEMENT_ROW = 0  # row_id of an engagement's own row in its chain (row_id is an integer column)
SHORT = 64  # longer values are carried in the payload as a digest


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _columns(table: Table) -> list[Any]:
    """The sealed columns, enums read as the stored text so a value the code does not know never raises."""
    return [type_coerce(table.c[name], String()).label(name) if isinstance(table.c[name].type, Enum)
            else table.c[name] for name in SEALED[table.name]]


def _normal(table: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
    content = {name: row[name] for name in SEALED[table.name]}
    for name in _floats(table.name):
        value = content[name]
        if isinstance(value, int) and not isinstance(value, bool):
            content[name] = float(value)
    return content


@functools.cache
def _floats(table_name: str) -> tuple[str, ...]:
    """The sealed columns of a table that hold floats (an int written to one reads back as a float)."""
    table = _table(table_name)
    return tuple(name for name in SEALED[table_name] if isinstance(table.c[name].type, Float))


def short(value: Any) -> Any:
    """A column's value as the payload carries it: small scalars as they are, anything else as a digest."""
    value = chain.plain(value)
    if value is None or isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= SHORT):
        return value
    return "sha256:" + chain.sha256({"v": value})[:12]


def seal(session: Session, table_name: str, key: int | str) -> tuple[tuple[str, int, str], dict[str, Any]]:
    """((table, row id, content hash), short columns) of the row as it now stands in the database
    (flushed first, so what is hashed is what verify will read)."""
    session.flush()
    table = _table(table_name)
    return sealed(table_name, session.execute(select(*_columns(table)).where(table.c.id == key)).mappings().one())


def sealed(table_name: str, row: Mapping[Any, Any]) -> tuple[tuple[str, int, str], dict[str, Any]]:
    """((table, row id, content hash), short columns) of a row from its sealed columns' values, as
    the database holds them (a writer that knows what it wrote need not read the row back)."""
    table = _table(table_name)
    content = _normal(table, row)
    row_id = ENGAGEMENT_ROW if table_name == "engagements" else int(row["id"])
    return (table_name, row_id, chain.sha256(content)), {name: short(v) for name, v in content.items()}


def link(session: Session, kind: Any, subject: str, payload: Mapping[str, Any], table_name: str,
         key: int | str) -> chain.Link:
    """The chain event that records a change and seals the changed row, read back from the database."""
    seal_, columns = seal(session, table_name, key)
    return chain.Link(kind, subject, {**payload, "sealed": columns}, seal_)


def link_of(kind: Any, subject: str, payload: Mapping[str, Any], table_name: str,
            row: Mapping[Any, Any]) -> chain.Link:
    """The same event from the row's sealed columns as just written (`sealed`)."""
    seal_, columns = sealed(table_name, row)
    return chain.Link(kind, subject, {**payload, "sealed": columns}, seal_)


def _rows(session: Session, table_name: str, engagement_id: str) -> list[RowMapping]:
    table = _table(table_name)
    query = select(*_columns(table))
    if table_name == "engagements":
        query = query.where(table.c.id == engagement_id)
    elif table_name == "change_decisions":
        requests = _table("change_requests")
        query = query.join(requests, table.c.change_request_id == requests.c.id).where(
            requests.c.engagement_id == engagement_id)
    else:
        query = query.where(table.c.engagement_id == engagement_id)
    return list(session.execute(query.order_by(table.c.id)).mappings())


def unknown_values(table: Table, row: Mapping[Any, Any]) -> list[str]:
    """Columns holding a value the column accepts but the code does not (an enum outside its members)."""
    found = []
    for name in SEALED[table.name]:
        kind, value = table.c[name].type, row[name]
        if isinstance(kind, Enum) and value is not None and value not in kind.enums:
            found.append(f"{name} {value!r} is not one phasegate knows ({', '.join(kind.enums)})")
    return found


def _differences(table: Table, row: Mapping[Any, Any], recorded: Any) -> str:
    if not isinstance(recorded, Mapping):
        return ""
    now = {name: short(value) for name, value in _normal(table, row).items()}
    diffs = [f"{name} now {now[name]!r}, sealed {recorded.get(name)!r}" for name in SEALED[table.name]
             if name in recorded and now[name] != recorded[name]]
    return f": {'; '.join(diffs)}" if diffs else ""


def check(session: Session, engagement_id: str, events: Sequence[RowMapping], say: Callable[[str], None]) -> None:
    """Name every sealed row that no longer matches the newest event sealing it, every row of these
    tables outside the chain, every sealed row that is gone, and every value the code does not know."""
    newest: dict[tuple[str, int], RowMapping] = {}
    for event in events:
        if event["row_table"] in SEALED:
            newest[(event["row_table"], event["row_id"])] = event
    for table_name in SEALED:
        table, noun = _table(table_name), NOUNS[table_name]
        seen = set()
        for row in _rows(session, table_name, engagement_id):
            row_id = ENGAGEMENT_ROW if table_name == "engagements" else row["id"]
            seen.add(row_id)
            where = f"{engagement_id}: {noun} {row['id']} ({table_name} row {row['id']})"
            for problem in unknown_values(table, row):
                say(f"{where}: {problem}")
            sealing = newest.get((table_name, row_id))
            if sealing is None:
                say(f"{where} is not in the audit chain (inserted outside phasegate)")
            elif chain.sha256(_normal(table, row)) != sealing["row_hash"]:
                payload = sealing["payload"]
                recorded = payload.get("sealed") if isinstance(payload, Mapping) else None
                say(f"{where} was changed after event #{sealing['seq']} sealed it" + _differences(table, row, recorded))
        for (name, row_id), event in newest.items():
            if name == table_name and row_id not in seen:
                shown = engagement_id if table_name == "engagements" else row_id
                say(f"{engagement_id}: {noun} {shown} ({table_name} row {shown}), sealed by event #{event['seq']}, "
                    "is missing (deleted)")

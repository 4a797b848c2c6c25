"""The audit trail as one hash chain per engagement.

Every audit event holds its place in its engagement's chain (`seq` 1, 2, ...), the hash of the
event before it (`prev_hash`, GENESIS for the first) and its own `hash`: the SHA-256 of the
canonical JSON of its content together with `prev_hash`. Editing, deleting or reordering events
therefore breaks a link that `audit verify` recomputes.

Decisions and evidence snapshots join the chain through the event written in the same
transaction (`decision_recorded`, `evidence_frozen`): that event names the row (`row_table`,
`row_id`) and holds the SHA-256 of the row's canonical content (`row_hash`), so editing a
decision's approver or a snapshot's evidence, or deleting either, no longer matches the chain.
The hashed columns are listed here by their database names, so a column added later is covered
only by a deliberate change to this list (and its old rows keep verifying).

Why one chain per engagement and not one for the whole ledger: appends for different
engagements never wait for each other, and an engagement's trail can be verified and exported
on its own. Appends to one chain are serialised by locking the engagement's row in
`audit_heads` (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite transactions begin with
`BEGIN IMMEDIATE`, so there is one writer at a time anyway), and UNIQUE (engagement_id, seq) and
(engagement_id, prev_hash) make a fork impossible even for a writer that skipped the lock. The
head row also records the newest seq and hash, so deleting the last events shows.

What a chain cannot show on its own: someone able to disable the triggers who rewrites an event,
every event after it and the head produces a consistent chain. Two anchors against that: the
chain head is witnessed in Slack on every decision and weekly report (phasegate/ledger/witness.py),
and with a secret key set (PHASEGATE_AUDIT_KEY) each link is an HMAC-SHA-256 that database access
alone cannot recompute. Each event records which scheme sealed it (`seal`), so chains sealed before
the key was set keep verifying.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, inspect, select, update
from sqlalchemy.orm import Session

from phasegate.ledger import groups
from phasegate.ledger.db import AUDIT_KEY
from phasegate.ledger.models import Base, utcnow
from phasegate.states import AuditKind

GENESIS = "0" * 64


class Seal(enum.StrEnum):
    """How an event's hash was made: plain SHA-256, or HMAC-SHA-256 under the audit key."""

    SHA256 = "sha256"
    HMAC_SHA256 = "hmac-sha256"

EVENT_COLUMNS = ("engagement_id", "seq", "kind", "subject", "payload", "created_at", "row_table", "row_id",
                 "row_hash", "prev_hash")
ROW_COLUMNS: dict[str, tuple[str, ...]] = {
    "decisions": ("id", "gate_id", "outcome", "approver", "side", "role", "reason", "digest", "channel",
                  "operator", "delivery_id", "created_at"),
    "evidence_snapshots": ("id", "engagement_id", "phase", "digest", "body", "created_at"),
    "spend_entries": ("id", "engagement_id", "phase", "amount", "raw_amount", "note", "recorded_by", "operator",
                      "created_at"),
}
ROW_NAMES = {"decisions": "decision", "evidence_snapshots": "evidence snapshot", "spend_entries": "spend entry"}


_AS_IS = frozenset({str, int, float, bool, type(None)})  # exactly these types (an enum member is not one)


def plain(value: Any) -> Any:
    """The JSON form of a column value, the same whether it was just written or read back."""
    kind = type(value)
    if kind in _AS_IS:  # most values: answered before the checks below (this runs tens of times a click)
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): v if type(v) in _AS_IS else plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in hashed content")
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)  # made once, not per call


def canonical(content: Mapping[str, Any]) -> bytes:
    return _CANONICAL.encode(plain(content)).encode()


def sha256(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def event_hash(columns: Mapping[Any, Any], key: bytes | None = None) -> str:
    """The hash an event must hold, from its columns by database name (prev_hash included): keyed
    (HMAC-SHA-256) when `key` is given, plain SHA-256 otherwise."""
    content = {name: columns[name] for name in EVENT_COLUMNS}
    if key is None:
        return sha256(content)
    return hmac.new(key, canonical(content), hashlib.sha256).hexdigest()


def key_of(session: Session) -> bytes | None:
    """The audit key the session's factory was given, if any."""
    key = session.info.get(AUDIT_KEY)
    return key if isinstance(key, bytes) and key else None


def row_hash(table: str, columns: Mapping[Any, Any]) -> str:
    """The content hash of a decision or snapshot row, from its columns by database name."""
    return sha256({name: columns[name] for name in ROW_COLUMNS[table]})


def db_columns(row: Base) -> tuple[str, dict[str, Any]]:
    """(table name, {column name: value}) of a flushed ORM row, whatever its Python attributes are called."""
    mapper = inspect(type(row))
    table = mapper.local_table
    if not isinstance(table, Table):
        raise TypeError(f"{type(row).__name__} is not mapped to a table")
    values = {column.name: getattr(row, mapper.get_property_by_column(column).key) for column in table.columns}
    return table.name, values


@dataclass(frozen=True)
class Link:
    """One event to add to a chain; `seal` is (table, row id, row hash) of the row it seals."""

    kind: AuditKind
    subject: str
    payload: Mapping[str, Any]
    seal: tuple[str, int, str] | None = None


def seal_of(row: Base) -> tuple[str, int, str]:
    """(table, id, content hash) of a flushed decision, snapshot or spend row."""
    table, columns = db_columns(row)
    if table not in ROW_COLUMNS:
        raise ValueError(f"rows of {table} are not sealed by the audit chain")
    return table, columns["id"], row_hash(table, columns)


HEADS, EVENTS = Base.metadata.tables["audit_heads"], Base.metadata.tables["audit_events"]
LOCK_HEAD = select(HEADS.c.seq, HEADS.c.hash).where(HEADS.c.engagement_id == bindparam("engagement_id")).with_for_update()
ADD_EVENTS = EVENTS.insert().inline()  # no id read back: nobody needs it
MOVE_HEAD = update(HEADS).where(HEADS.c.engagement_id == bindparam("head"))  # not a column's name: SET takes those


def lock_head(session: Session, engagement_id: str) -> tuple[int, str]:
    """(seq, hash) of the engagement's chain head, created at GENESIS if new, locked until the
    transaction ends. Read and written through Core: the head is nobody's ORM object."""
    conn, key = session.connection(), {"engagement_id": engagement_id}
    head = conn.execute(LOCK_HEAD, key).first()
    if head is None:  # a new chain; a concurrent first writer makes this insert wait, then do nothing
        if conn.dialect.name == "postgresql":  # each dialect's module loads only where it is used, as in followups
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        conn.execute(insert(HEADS).values(engagement_id=engagement_id, seq=0, hash=GENESIS).on_conflict_do_nothing())
        head = conn.execute(LOCK_HEAD, key).first()
    if head is None:
        raise RuntimeError(f"the audit chain head of {engagement_id} vanished inside its transaction")
    return int(head.seq), str(head.hash)


def extend(session: Session, engagement_id: str, links: Sequence[Link], *,
           head: tuple[int, str] | None = None) -> tuple[int, str]:
    """Add the events to the engagement's chain, in order, under one lock of its head: one read of
    the head, one insert, one update, however many events. Appends to one chain wait for each other
    from the head's lock to the commit, so everything that does not need the head (each event's
    content in its stored form) is made before it is taken; under it only the links are hashed.
    `head`: (seq, hash) of the head as this transaction has already read and locked it. Returns the
    head as the events leave it."""
    key = key_of(session)
    seal = (Seal.HMAC_SHA256 if key is not None else Seal.SHA256).value
    now = utcnow()
    rows = []
    for link in links:
        table, row_id, sealed = link.seal if link.seal is not None else (None, None, None)
        rows.append({"engagement_id": engagement_id, "kind": link.kind, "subject": link.subject,
                     "payload": plain(link.payload), "created_at": now,
                     "row_table": table, "row_id": row_id, "row_hash": sealed, "seal": seal})
    seq, prev_hash = head if head is not None else lock_head(session, engagement_id)
    for row in rows:
        seq += 1
        row["seq"], row["prev_hash"] = seq, prev_hash
        row["hash"] = prev_hash = event_hash(row, key)
    if not rows:
        return seq, prev_hash
    conn = session.connection()  # inside a group, both are sent with the group's others (phasegate.ledger.groups)
    groups.defer(conn, ADD_EVENTS, rows[0] if len(rows) == 1 else rows)  # one row: no executemany
    groups.defer(conn, MOVE_HEAD, {"head": engagement_id, "seq": seq, "hash": prev_hash}, key=engagement_id)
    return seq, prev_hash


def append(session: Session, engagement_id: str, kind: AuditKind, subject: str, payload: Mapping[str, Any],
           covers: Base | None = None) -> None:
    """Add the next event of the engagement's chain; `covers` is a decision or snapshot row it seals."""
    seal = None
    if covers is not None:
        session.flush()  # the row's id and defaults are part of its hash
        seal = seal_of(covers)
    extend(session, engagement_id, [Link(kind, subject, payload, seal)])

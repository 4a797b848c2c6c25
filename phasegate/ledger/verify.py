"""Walk each engagement's audit chain and name what no longer matches it.

Everything is read by database column name through Core, as an auditor's script would, so what
is checked is what is stored, not what the ORM makes of it. The walk does not stop at the first
break: after a broken link it carries on from the stored hash, so one edit is reported once and
later problems are still found. Problems are one line each and name the row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import RowMapping, String, Table, select, type_coerce
from sqlalchemy.orm import Session

from phasegate.configs.schema import Phase
from phasegate.ledger import chain, schemes, seals
from phasegate.ledger.models import Base, GateRow, SnapshotRow
from phasegate.rules.evidence import Snapshot


@dataclass
class ChainReport:
    engagement_id: str
    events: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def engagement_ids(session: Session) -> list[str]:
    """Every engagement the ledger knows of: registered, with a chain head, or with events."""
    ids: set[str] = set(session.scalars(select(_table("engagements").c.id)))
    ids |= set(session.scalars(select(_table("audit_heads").c.engagement_id)))
    ids |= set(session.scalars(select(_table("audit_events").c.engagement_id).distinct()))
    return sorted(ids)


def verify(session: Session, engagement_id: str | None = None) -> list[ChainReport]:
    """One report per engagement (every engagement when none is named)."""
    ids = [engagement_id] if engagement_id is not None else engagement_ids(session)
    return [verify_one(session, eid) for eid in ids]


def _label(event: Mapping[Any, Any]) -> str:
    subject = f" {event['subject']}" if event["subject"] else ""
    return f"event #{event['seq']} (id {event['id']}, {chain.plain(event['kind'])}{subject})"


def verify_one(session: Session, engagement_id: str) -> ChainReport:
    report = ChainReport(engagement_id)
    say = report.problems.append
    events_table = _table("audit_events")
    events = session.execute(select(events_table).where(events_table.c.engagement_id == engagement_id)
                             .order_by(events_table.c.seq, events_table.c.id)).mappings().all()
    report.events = len(events)
    position = {e["hash"]: e["seq"] for e in events}
    key = chain.key_of(session)
    expected_seq, expected_prev = 1, chain.GENESIS
    for event in events:
        seq, label = event["seq"], _label(event)
        if seq > expected_seq:
            missing = f"#{expected_seq}" if seq == expected_seq + 1 else f"#{expected_seq}..#{seq - 1}"
            say(f"{engagement_id}: event {missing} missing before {label} (deleted)")
        reordered = False
        if event["prev_hash"] != expected_prev and not (seq > expected_seq):
            if event["prev_hash"] in position:
                reordered = True
                say(f"{engagement_id}: {label} is out of order: it was chained after "
                    f"event #{position[event['prev_hash']]} (rows reordered)")
            else:
                say(f"{engagement_id}: {label} does not link to event #{seq - 1} "
                    f"(event #{seq - 1} was replaced or rewritten)")
        if not reordered and not schemes.link_matches(event, key):
            say(f"{engagement_id}: {label} was edited: its content no longer matches its hash")
        expected_seq, expected_prev = seq + 1, event["hash"]
    report.problems += schemes.problems(engagement_id, events, key)
    _check_head(session, report, events[-1] if events else None)
    _check_rows(session, report, events)
    seals.check(session, engagement_id, events, say)
    _check_gate_digests(session, report)
    return report


def _check_head(session: Session, report: ChainReport, last: RowMapping | None) -> None:
    heads = _table("audit_heads")
    head = session.execute(select(heads).where(heads.c.engagement_id == report.engagement_id)).mappings().first()
    eid, say = report.engagement_id, report.problems.append
    if head is None:
        if last is not None:
            say(f"{eid}: the chain has no recorded head (its audit_heads row was deleted)")
        elif session.scalar(select(_table("engagements").c.id).where(_table("engagements").c.id == eid)) is None:
            say(f"{eid}: no such engagement and no audit events")
        else:
            say(f"{eid}: registered, but its audit chain is gone (every event was deleted)")
        return
    report.head_seq, report.head_hash = head["seq"], head["hash"]
    last_seq = last["seq"] if last is not None else 0
    if head["seq"] > last_seq:
        gone = head["seq"] - last_seq
        say(f"{eid}: truncated: the head records event #{head['seq']} but the chain ends at #{last_seq} "
            f"({gone} newest event{'s' if gone > 1 else ''} deleted)")
    elif head["seq"] < last_seq:
        say(f"{eid}: events after the recorded head #{head['seq']} up to #{last_seq} (appended outside phasegate)")
    elif last is not None and head["hash"] != last["hash"]:
        say(f"{eid}: {_label(last)} is not the event the head records (replaced)")


def _check_rows(session: Session, report: ChainReport, events: Sequence[RowMapping]) -> None:
    """Each sealed decision and snapshot still hashes as its event recorded; none is outside the chain."""
    eid, say = report.engagement_id, report.problems.append
    sealed: dict[tuple[str, int], RowMapping] = {}
    for event in events:
        if event["row_table"] is not None:
            sealed[(event["row_table"], event["row_id"])] = event
    for table_name in chain.ROW_COLUMNS:
        table, noun = _table(table_name), chain.ROW_NAMES[table_name]
        ids = [row_id for (name, row_id) in sealed if name == table_name]
        rows = {r["id"]: r for r in session.execute(select(table).where(table.c.id.in_(ids))).mappings()}
        for row_id in ids:
            event = sealed[(table_name, row_id)]
            row = rows.get(row_id)
            if row is None:
                say(f"{eid}: {noun} {row_id}, sealed by event #{event['seq']}, is missing (deleted)")
            elif chain.row_hash(table_name, row) != event["row_hash"]:
                say(f"{eid}: {noun} {row_id} was edited after event #{event['seq']} sealed it"
                    + _changed(row, event["payload"]))
        for row_id in _rows_of(session, table_name, eid):
            if (table_name, row_id) not in sealed:
                say(f"{eid}: {noun} {row_id} is not in the audit chain (inserted outside phasegate)")


def _changed(row: Mapping[Any, Any], recorded: Mapping[str, Any]) -> str:
    """The fields the sealing event also spelled out, where they now differ (e.g. a decision's approver)."""
    diffs = [f"{name} now {chain.plain(row[name])!r}, recorded {value!r}" for name, value in recorded.items()
             if name in row and name != "id" and chain.plain(row[name]) != value]
    return f": {'; '.join(diffs)}" if diffs else ""


def _rows_of(session: Session, table_name: str, engagement_id: str) -> list[int]:
    table = _table(table_name)
    if table_name == "decisions":
        gates = _table("gates")
        query = select(table.c.id).join(gates, table.c.gate_id == gates.c.id).where(gates.c.engagement_id == engagement_id)
    else:
        query = select(table.c.id).where(table.c.engagement_id == engagement_id)
    return list(session.scalars(query.order_by(table.c.id)))


def _check_gate_digests(session: Session, report: ChainReport) -> None:
    """Read through Core with the phase as stored text: a value the code does not know is named by
    `seals.check`, not raised here."""
    gates = _table("gates")
    phase = type_coerce(gates.c.phase, String()).label("phase")
    for gate in session.execute(select(gates.c.id, gates.c.snapshot_id, gates.c.digest, phase)
                                .where(gates.c.engagement_id == report.engagement_id).order_by(gates.c.id)):
        problem = evidence_mismatch(session, gate)
        if problem is not None:
            name = Phase(gate.phase).gate if gate.phase in {p.value for p in Phase} else gate.phase
            report.problems.append(f"{report.engagement_id}: gate {gate.id} ({report.engagement_id}/{name}): {problem}")


class _Gated(Protocol):
    snapshot_id: int
    digest: str


def evidence_mismatch(session: Session, gate: _Gated) -> str | None:
    """Why the gate's digest no longer matches its frozen evidence, recomputed as evidence.py does; None if it does."""
    frozen = session.get(SnapshotRow, gate.snapshot_id)
    if frozen is None:
        return f"its evidence snapshot {gate.snapshot_id} is missing"
    try:
        recomputed = Snapshot.model_validate(frozen.body).digest()
    except ValidationError:
        return f"its evidence snapshot {frozen.id} no longer reads as evidence (edited)"
    if recomputed != gate.digest:
        return (f"digest {gate.digest[:12]} does not match its evidence snapshot {frozen.id}, which now hashes to "
                f"{recomputed[:12]} (evidence or digest edited)")
    if frozen.digest != gate.digest:
        return f"digest {gate.digest[:12]} differs from the digest stored with snapshot {frozen.id} (edited)"
    return None


def gate_warnings(session: Session, gate: GateRow) -> list[str]:
    """What `gate show` must say before anyone trusts what it displays."""
    warnings = []
    mismatch = evidence_mismatch(session, gate)
    if mismatch is not None:
        warnings.append(f"evidence does not match this gate: {mismatch}")
    report = verify_one(session, gate.engagement_id)
    if not report.intact:
        warnings.append(f"the audit chain of {gate.engagement_id} is broken ({len(report.problems)} problems, "
                        f"first: {report.problems[0]}); run `phasegate audit verify {gate.engagement_id}`")
    return warnings

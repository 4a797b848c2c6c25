"""audit chain: hash-chained audit events, chain heads, append-only triggers

Existing ledgers are chained as they stand: every decision and evidence snapshot already in the
ledger is sealed by a new `row_sealed` event at the end of its engagement's chain, then each
engagement's events are chained in id order and its head recorded. Only then are the columns made
NOT NULL and the triggers created, so an old ledger verifies after `phasegate db upgrade`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

from phasegate.ledger import append_only, chain
from phasegate.ledger.models import Base, utcnow
from phasegate.states import AuditKind

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OLD_EVENT_COLUMNS = ("id", "engagement_id", "kind", "subject", "payload", "created_at")


def _seal_existing_rows(conn: sa.Connection) -> None:
    """One `row_sealed` event per decision and snapshot written before the chain existed."""
    tables = Base.metadata.tables
    events, gates, snapshots, decisions = (tables["audit_events"], tables["gates"], tables["evidence_snapshots"],
                                           tables["decisions"])
    decision_rows = conn.execute(
        sa.select(*(decisions.c[name] for name in chain.ROW_COLUMNS["decisions"]), gates.c.engagement_id.label("eng"))
        .join(gates, decisions.c.gate_id == gates.c.id).order_by(decisions.c.id)).mappings().all()
    snapshot_rows = conn.execute(sa.select(*(snapshots.c[name] for name in chain.ROW_COLUMNS["evidence_snapshots"]))
                                 .order_by(snapshots.c.id)).mappings().all()
    sealed: list[tuple[str, str, Any]] = [("evidence_snapshots", row["engagement_id"], row) for row in snapshot_rows]
    sealed += [("decisions", row["eng"], row) for row in decision_rows]
    for table, engagement_id, row in sealed:
        conn.execute(events.insert().values(
            engagement_id=engagement_id, kind=AuditKind.ROW_SEALED, subject=f"{chain.ROW_NAMES[table]} {row['id']}",
            payload={"why": "written before the audit chain existed; sealed by migration 0002"},
            created_at=utcnow(), row_table=table, row_id=row["id"], row_hash=chain.row_hash(table, row)))


def _chain_existing_events(conn: sa.Connection) -> None:
    tables = Base.metadata.tables
    events, heads = tables["audit_events"], tables["audit_heads"]
    rows = conn.execute(sa.select(*(events.c[name] for name in (*OLD_EVENT_COLUMNS, "row_table", "row_id",
                                                                "row_hash")))
                        .order_by(events.c.id)).mappings().all()
    by_engagement: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_engagement[row["engagement_id"]].append(row)
    for engagement_id, chained in by_engagement.items():
        prev = chain.GENESIS
        for seq, row in enumerate(chained, start=1):
            columns = dict(row) | {"seq": seq, "prev_hash": prev}
            digest = chain.event_hash(columns)
            conn.execute(events.update().where(events.c.id == row["id"])
                         .values(seq=seq, prev_hash=prev, hash=digest))
            prev = digest
        conn.execute(heads.insert().values(engagement_id=engagement_id, seq=len(chained), hash=prev))


def upgrade() -> None:
    op.create_table('audit_heads',
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('engagement_id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('row_table', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('row_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('row_hash', sa.String(length=64), nullable=True))

    conn = op.get_bind()
    _seal_existing_rows(conn)
    _chain_existing_events(conn)

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_audit_events_seq', ['engagement_id', 'seq'])
        batch_op.create_unique_constraint('uq_audit_events_prev_hash', ['engagement_id', 'prev_hash'])

    append_only.create(conn, append_only.FIRST)


def downgrade() -> None:
    append_only.drop(op.get_bind())
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_audit_events_prev_hash', type_='unique')
        batch_op.drop_constraint('uq_audit_events_seq', type_='unique')
        batch_op.drop_column('row_hash')
        batch_op.drop_column('row_id')
        batch_op.drop_column('row_table')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
    op.execute(sa.text("DELETE FROM audit_events WHERE kind = 'row_sealed'"))
    op.drop_table('audit_heads')

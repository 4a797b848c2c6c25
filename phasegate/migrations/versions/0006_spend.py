"""spend entries: money spent per phase, append-only

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from phasegate.ledger import append_only

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('spend_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32),
              nullable=False),
    sa.Column('amount', sa.Float(), nullable=False),
    sa.Column('raw_amount', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('operator', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_spend_entries_engagement_id', 'spend_entries', ['engagement_id'])
    append_only.protect(op.get_bind(), 'spend_entries')


def downgrade() -> None:
    op.drop_index('ix_spend_entries_engagement_id', table_name='spend_entries')
    op.drop_table('spend_entries')  # its triggers go with it

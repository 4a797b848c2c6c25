"""follow-ups: the work after an answer (a prompt to redraw, a run to wake), queued in the ledger

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('follow_ups',
    sa.Column('prompt', sa.Enum('gate', 'change_request', name='prompt', native_enum=False, length=32),
              nullable=False),
    sa.Column('target', sa.Integer(), nullable=False),
    sa.Column('wake', sa.Boolean(), nullable=False),
    sa.Column('tell', sa.String(length=64), nullable=True),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('marked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('prompt', 'target')
    )
    op.create_index('ix_follow_ups_due_at', 'follow_ups', ['due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_follow_ups_due_at', table_name='follow_ups')
    op.drop_table('follow_ups')

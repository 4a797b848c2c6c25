"""weekly reports: one per engagement (or the portfolio) per ISO week

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('weekly_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('engagement', 'portfolio', name='reportkind', native_enum=False, length=32), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('week', sa.String(length=10), nullable=False),
    sa.Column('rag', sa.Enum('green', 'amber', 'red', name='rag', native_enum=False, length=32), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('message_ts', sa.String(length=32), nullable=True),
    sa.Column('chart_path', sa.Text(), nullable=True),
    sa.Column('chart_file_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'subject', 'week')
    )


def downgrade() -> None:
    op.drop_table('weekly_reports')

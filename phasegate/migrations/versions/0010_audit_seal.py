"""audit events record how their hash was made: plain SHA-256 or HMAC-SHA-256 under the audit key

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy on SQLite, so the append-only triggers stay); every event
    # written before this was sealed with plain SHA-256.
    op.add_column('audit_events', sa.Column('seal', sa.String(length=16), server_default='sha256', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('seal')

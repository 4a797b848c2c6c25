"""the ledger's heartbeat: one row /readyz and /healthz update to prove the ledger takes a write

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_heartbeat',
    sa.Column('probe', sa.String(length=32), nullable=False),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('probe')
    )


def downgrade() -> None:
    op.drop_table('ledger_heartbeat')

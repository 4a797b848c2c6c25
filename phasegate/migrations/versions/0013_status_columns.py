"""status columns: the status projection (engagement_status), one row per engagement, backfilled

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

from phasegate.ledger import projection

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('engagement_status',
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('phase_started', sa.Date(), nullable=True),
    sa.Column('planned_weeks', sa.Integer(), nullable=True),
    sa.Column('booked_weeks', sa.Integer(), nullable=False),
    sa.Column('timebox_ends_on', sa.Date(), nullable=True),
    sa.Column('over_budget', sa.Boolean(), nullable=False),
    sa.Column('near_cap', sa.Boolean(), nullable=False),
    sa.Column('deletion_deadline', sa.Date(), nullable=True),
    sa.Column('last_report_week', sa.String(length=10), nullable=True),
    sa.Column('last_report_rag', sa.Enum('green', 'amber', 'red', name='rag', native_enum=False, length=32),
              nullable=True),
    sa.Column('gates', sa.JSON(), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id']),
    sa.PrimaryKeyConstraint('engagement_id')
    )
    session = Session(bind=op.get_bind())  # the backfill: every engagement's row, from the ledger as it is
    ids = [row[0] for row in session.execute(sa.text("SELECT id FROM engagements"))]
    for start in range(0, len(ids), 500):
        projection.refresh(session, ids[start:start + 500])
    session.flush()


def downgrade() -> None:
    op.drop_table('engagement_status')

"""change requests and their decisions (the lead re-chains down_revision at merge)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 07:58:03.260864
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('change_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=False),
    sa.Column('phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('source', sa.Enum('cli', 'slack', 'jira', 'file', name='changesource', native_enum=False, length=32), nullable=False),
    sa.Column('jira_issue', sa.String(length=64), nullable=True),
    sa.Column('scope_added', sa.JSON(), nullable=False),
    sa.Column('scope_removed', sa.JSON(), nullable=False),
    sa.Column('effort_days', sa.Float(), nullable=False),
    sa.Column('schedule_days', sa.Integer(), nullable=False),
    sa.Column('cost', sa.Float(), nullable=False),
    sa.Column('amendment', sa.JSON(), nullable=True),
    sa.Column('base_digest', sa.String(length=64), nullable=False),
    sa.Column('assessment', sa.JSON(), nullable=True),
    sa.Column('state', sa.Enum('submitted', 'assessed', 'approved', 'rejected', 'withdrawn', name='changerequeststate', native_enum=False, length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=200), nullable=True),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('message_ts', sa.String(length=32), nullable=True),
    sa.Column('announced', sa.Boolean(), nullable=False),
    sa.Column('baseline_version', sa.Integer(), nullable=True),
    sa.Column('closed_reason', sa.Text(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id'),
    sa.UniqueConstraint('engagement_id', 'jira_issue'),
    sa.UniqueConstraint('engagement_id', 'number')
    )
    op.create_table('change_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_request_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('go', 'no_go', 'extend', 'accept', 'not_yet', 'approve', 'reject', name='outcome', native_enum=False, length=32), nullable=False),
    sa.Column('approver', sa.String(length=64), nullable=False),
    sa.Column('side', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('channel', sa.Enum('slack', 'cli', 'prefect_ui', 'timeout', name='channel', native_enum=False, length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['change_request_id'], ['change_requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id')
    )
    with op.batch_alter_table('change_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_decisions_change_request_id'), ['change_request_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('change_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_decisions_change_request_id'))

    op.drop_table('change_decisions')
    op.drop_table('change_requests')

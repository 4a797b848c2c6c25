"""initial ledger

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('engagement_registered', 'phase_started', 'kickoff_posted', 'milestone_linked', 'baseline_recorded', 'timebox_opened', 'evidence_frozen', 'gate_opened', 'decision_recorded', 'gate_decided', 'gate_stale', 'attestation_recorded', 'metric_submitted', 'reminder_sent', 'gate_escalated', 'gate_overdue', 'engagement_closed', name='auditkind', native_enum=False, length=32), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_engagement_id'), ['engagement_id'], unique=False)

    op.create_table('engagements',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_digest', sa.String(length=64), nullable=False),
    sa.Column('state', sa.Enum('registered', 'active', 'closed', 'completed', name='engagementstate', native_enum=False, length=32), nullable=False),
    sa.Column('current_phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32), nullable=True),
    sa.Column('closed_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('attestations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32), nullable=False),
    sa.Column('milestone', sa.String(length=64), nullable=False),
    sa.Column('attested_by', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.Enum('slack', 'cli', 'prefect_ui', 'timeout', name='channel', native_enum=False, length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('baselines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('engagement_id', 'version')
    )
    op.create_table('evidence_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evidence_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_snapshots_digest'), ['digest'], unique=False)

    op.create_table('metric_submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.Column('submitted_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('milestone_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32), nullable=False),
    sa.Column('milestone', sa.String(length=64), nullable=False),
    sa.Column('issue_key', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('engagement_id', 'phase', 'milestone')
    )
    op.create_table('phase_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('kickoff_ts', sa.String(length=32), nullable=True),
    sa.Column('advance_requested', sa.Boolean(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('engagement_id', 'phase')
    )
    op.create_table('timeboxes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('weeks', sa.Integer(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('review_requested', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('engagement_id', 'phase', 'number')
    )
    op.create_table('gates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('engagement_id', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.Enum('poc', 'development', 'handover', name='phase', native_enum=False, length=32), nullable=False),
    sa.Column('timebox', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('open', 'decided', 'stale', name='gatestate', native_enum=False, length=32), nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('message_ts', sa.String(length=32), nullable=True),
    sa.Column('outcome', sa.Enum('go', 'no_go', 'extend', 'accept', 'not_yet', name='outcome', native_enum=False, length=32), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reopened_because', sa.Text(), nullable=False),
    sa.Column('reminders_sent', sa.Integer(), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['engagement_id'], ['engagements.id'], ),
    sa.ForeignKeyConstraint(['snapshot_id'], ['evidence_snapshots.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('engagement_id', 'phase', 'timebox', 'revision')
    )
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gate_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('go', 'no_go', 'extend', 'accept', 'not_yet', name='outcome', native_enum=False, length=32), nullable=False),
    sa.Column('approver', sa.String(length=64), nullable=False),
    sa.Column('side', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.Enum('slack', 'cli', 'prefect_ui', 'timeout', name='channel', native_enum=False, length=32), nullable=False),
    sa.Column('delivery_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['gate_id'], ['gates.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id')
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_gate_id'), ['gate_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_gate_id'))

    op.drop_table('decisions')
    op.drop_table('gates')
    op.drop_table('timeboxes')
    op.drop_table('phase_runs')
    op.drop_table('milestone_links')
    op.drop_table('metric_submissions')
    with op.batch_alter_table('evidence_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_snapshots_digest'))

    op.drop_table('evidence_snapshots')
    op.drop_table('baselines')
    op.drop_table('attestations')
    op.drop_table('engagements')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_engagement_id'))

    op.drop_table('audit_events')

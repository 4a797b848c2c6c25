"""change requests from Jira: frozen revisions, the revision each answer was given to, fields not estimated

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from phasegate.ledger import append_only

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_estimated', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('change_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='1', nullable=False))
    op.create_table('jira_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('change_request_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('issue_key', sa.String(length=64), nullable=False),
    sa.Column('issue_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['change_request_id'], ['change_requests.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('change_request_id', 'revision')
    )
    op.create_index('ix_jira_revisions_change_request_id', 'jira_revisions', ['change_request_id'])
    append_only.protect(op.get_bind(), 'jira_revisions')


def downgrade() -> None:
    op.drop_index('ix_jira_revisions_change_request_id', table_name='jira_revisions')
    op.drop_table('jira_revisions')  # its triggers go with it
    with op.batch_alter_table('change_decisions', schema=None) as batch_op:
        batch_op.drop_column('revision')
    with op.batch_alter_table('change_requests', schema=None) as batch_op:
        batch_op.drop_column('revision')
        batch_op.drop_column('not_estimated')

"""who ran a CLI command (user@host) beside the Slack id it named, and the text typed for a metric

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('operator', sa.String(length=200), nullable=True))

    with op.batch_alter_table('metric_submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw_value', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('operator', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('metric_submissions', schema=None) as batch_op:
        batch_op.drop_column('operator')
        batch_op.drop_column('raw_value')

    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('operator')

"""sealed rows: every row that decides anything is sealed by its chain event

Change-request answers, attestations, metric submissions and scope baselines become append-only
(triggers, as for decisions). Existing ledgers are sealed as they stand: every engagement, gate,
change request, answer, attestation, metric submission and baseline already in the ledger gets a
`row_sealed` event at the end of its engagement's chain holding its content hash (see
phasegate/ledger/seals.py), so an old ledger verifies after `phasegate db upgrade`. What those rows
were before this upgrade is not known to the chain; from here on every change is sealed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

from phasegate.ledger import append_only, chain, seals
from phasegate.ledger.models import Base
from phasegate.states import AuditKind

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

WHY = "written before its rows were sealed; sealed by migration 0011"


def _seal_existing_rows(conn: sa.Connection) -> None:
    tables = Base.metadata.tables
    session = Session(bind=conn)
    ids: list[str] = list(conn.execute(sa.select(tables["engagements"].c.id).order_by(tables["engagements"].c.id)).scalars())
    for engagement_id in ids:
        links = []
        for table_name in seals.SEALED:
            table = tables[table_name]
            if table_name == "engagements":
                keys: list[int | str] = [engagement_id]
            elif table_name == "change_decisions":
                requests = tables["change_requests"]
                keys = list(conn.execute(sa.select(table.c.id).join(requests, table.c.change_request_id == requests.c.id)
                                         .where(requests.c.engagement_id == engagement_id).order_by(table.c.id)).scalars())
            else:
                keys = list(conn.execute(sa.select(table.c.id).where(table.c.engagement_id == engagement_id)
                                         .order_by(table.c.id)).scalars())
            for key in keys:
                links.append(seals.link(session, AuditKind.ROW_SEALED, f"{seals.NOUNS[table_name]} {key}",
                                        {"why": WHY}, table_name, key))
        chain.extend(session, engagement_id, links)
    session.flush()


def upgrade() -> None:
    conn = op.get_bind()
    _seal_existing_rows(conn)
    for table in append_only.SEALED_ONCE:
        append_only.protect(conn, table)


def downgrade() -> None:
    conn = op.get_bind()
    for table in append_only.SEALED_ONCE:
        append_only.unprotect(conn, table)

"""A PostgreSQL database owned by a fresh owner role, with a runtime role that may only connect: the
least-privilege set-up that tests/test_roles.py and tests/test_tamper_matrix.py try to get past."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from conftest import PG_ADMIN
from sqlalchemy import create_engine, text

SERVER = PG_ADMIN.rsplit("/", 1)[0].split("://", 1)[1].split("@")[-1]  # host:port


@contextmanager
def owner_and_runtime(name: str) -> Iterator[tuple[str, str, str]]:
    """(owner url, runtime url, runtime role) of a new database `phasegate_<name>_<tag>`, dropped after."""
    tag = uuid.uuid4().hex[:8]
    owner, runtime, db = f"phasegate_owner_{tag}", f"phasegate_app_{tag}", f"phasegate_{name}_{tag}"
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{owner}" LOGIN'))
        conn.execute(text(f'CREATE ROLE "{runtime}" LOGIN'))
        conn.execute(text(f'CREATE DATABASE "{db}" OWNER "{owner}"'))
        conn.execute(text(f'REVOKE ALL ON DATABASE "{db}" FROM PUBLIC'))
        conn.execute(text(f'GRANT CONNECT ON DATABASE "{db}" TO "{runtime}"'))
    try:
        yield f"postgresql://{owner}@{SERVER}/{db}", f"postgresql://{runtime}@{SERVER}/{db}", runtime
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{db}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE "{runtime}"'))
            conn.execute(text(f'DROP ROLE "{owner}"'))
        admin.dispose()

from __future__ import annotations

from alembic import context

from phasegate.errors import InternalError
from phasegate.ledger.db import make_engine
from phasegate.ledger.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if url is None:
    raise InternalError("alembic was started without sqlalchemy.url; run migrations through phasegate.ledger.db.upgrade")
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()

"""Alembic environment: runs on a connection handed over by ``db.engine.migrate``.

For writing a new revision by hand, point Alembic at a scratch database:
``alembic -c alembic.ini -x url=sqlite:///scratch.db revision --autogenerate -m "..."``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from guruconnect.server.db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the scratch database with -x url=...")
    with create_engine(url).begin() as scratch:
        _run(scratch)

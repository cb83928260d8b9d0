"""Engine construction and migrations, the same for SQLite and PostgreSQL."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import Pool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary, fixed: serialises migrations when several nodes start at once on PostgreSQL.
_MIGRATION_LOCK_ID = 0x6775_7275


def create_engine(
    database_url: str, *, schema: str | None = None, poolclass: type[Pool] | None = None
) -> AsyncEngine:
    """An async engine with the per-dialect settings GuruConnect relies on.

    SQLite: foreign keys on (ON DELETE CASCADE depends on it), WAL so readers do not block
    the writer, and a busy timeout instead of instant "database is locked" errors.
    PostgreSQL: optional ``schema`` becomes the connection's ``search_path``.
    """
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    if url.get_backend_name() == "postgresql" and schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection, schema: str | None) -> None:
    if connection.dialect.name == "postgresql":
        if schema:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine, *, schema: str | None = None) -> None:
    """Bring the database to the newest schema; a no-op when it is there already."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, schema)


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


@cache
def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def at_head(engine: AsyncEngine) -> bool:
    """Readiness: the database answers and its schema is the newest this code knows."""
    async with engine.connect() as connection:
        current = await connection.run_sync(current_revision)
    return current is not None and current == head_revision()

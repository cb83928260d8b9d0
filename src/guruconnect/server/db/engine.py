"""Engine construction and migrations, the same for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
from functools import cache, partial
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
    # A server's connection can drop (a restart, a proxy's idle timeout): test each one as
    # it leaves the pool. A SQLite file cannot go away like that, and there the test is a
    # hop to the driver's thread on every checkout, for nothing.
    kwargs: dict[str, Any] = {"pool_pre_ping": url.get_backend_name() != "sqlite"}
    if poolclass is not None:
        kwargs["poolclass"] = poolclass
    if url.get_backend_name() == "postgresql" and schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url.database)
        if path is not None:
            _private_database_file(path)
        event.listen(engine.sync_engine, "connect", partial(_sqlite_pragmas, path))
    return engine


def _sqlite_path(database: str | None) -> Path | None:
    """The database file, or None for an in-memory database or a ``file:`` URI."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _private_database_file(path: Path) -> None:
    """Create the database file 0600 (its directory 0700 if it is new) whatever the umask.

    It holds password hashes, credential digests and the audit trail. SQLite creates the
    ``-wal`` and ``-shm`` files with the database file's permissions, so they follow.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
        path.parent.chmod(0o700)  # mkdir's mode is masked by the umask
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        path.chmod(0o600)
    _tighten(path)


def _tighten(path: Path) -> None:
    """Take group and other access off the database and its WAL files (older installs)."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # absent, or not ours to change: SQLite decides
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


def _sqlite_pragmas(path: Path | None, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()
    if path is not None:
        _tighten(path)


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

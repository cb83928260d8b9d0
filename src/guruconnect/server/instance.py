"""One server per database: the instance lock, taken before the server changes anything.

A second ``guruconnect server`` pointed at a database a live server uses would otherwise
migrate it, end the live sessions as "server_restart" and only then fail on its port.

- SQLite: an exclusive ``flock`` on ``<database>.lock`` beside the database file
  (``<database>.<node>.lock`` for a node other than ``default``), held by an open
  descriptor for the life of the process (the kernel drops it when the process dies,
  however it dies).
- PostgreSQL: a session-level advisory lock on a dedicated connection, keyed on the schema
  and the node id. PostgreSQL scopes advisory locks to the database, and drops the lock
  when the connection ends.

The identity is the node id (``GURUCONNECT_NODE_ID``, default ``default``): several nodes
sharing one PostgreSQL database would each hold their own node's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from guruconnect.server.config import DatabaseSettings
from guruconnect.server.db.engine import create_engine

log = structlog.get_logger(__name__)

#: The exit code of ``guruconnect server`` (and ``admin restore``) when a live server holds
#: the database.
EXIT_IN_USE = 3


class InstanceInUse(Exception):
    """Another live server holds this database; the message is one line for the operator."""


def sqlite_path(database_url: str) -> Path | None:
    """The database file of a SQLite URL (absolute); ``None`` for in-memory or other kinds."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None  # a URI filename: rare; not locked
    return Path(url.database).absolute()


def lock_file(database: Path, node_id: str = "default") -> Path:
    node = "" if node_id == "default" else f".{node_id}"
    return database.with_name(f"{database.name}{node}.lock")


def lock_files(database: Path) -> list[Path]:
    """Every node's lock file beside ``database`` (the default node's always included)."""
    found = set(database.parent.glob(f"{database.name}.*lock"))
    return sorted(found | {lock_file(database)})


def advisory_key(schema: str | None, node_id: str) -> int:
    """The PostgreSQL advisory lock key: a signed 64-bit hash of (schema, node id)."""
    digest = hashlib.blake2b(
        f"guruconnect-instance\0{schema or 'public'}\0{node_id}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


_KEEPALIVES = {"tcp_keepalives_idle": 30, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 3}


async def _try_advisory_lock(engine: AsyncEngine, key: int) -> AsyncConnection | None:
    """A new connection holding the session lock ``key``, or ``None`` if someone else has
    it. Autocommit: the connection never sits idle in a transaction."""
    conn = await engine.connect()
    try:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        # If this host dies without closing the connection, PostgreSQL notices within
        # about a minute (not the system's default two hours) and frees the lock.
        for setting, value in _KEEPALIVES.items():
            await conn.execute(text(f"SET {setting} = {value}"))
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})).scalar()
    except BaseException:
        await conn.close()
        raise
    if not got:
        await conn.close()
        return None
    return conn


class InstanceLock:
    """Held from :meth:`acquire` until :meth:`release` (or the end of the process)."""

    def __init__(
        self,
        description: str,
        *,
        fd: int | None = None,
        engine: AsyncEngine | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        self.description = description
        self._key: int | None = None
        self._fd = fd
        self._engine = engine
        self._conn = conn

    @classmethod
    async def acquire(cls, settings: DatabaseSettings) -> InstanceLock:
        """Take this node's lock on the configured database, or raise :class:`InstanceInUse`."""
        path = sqlite_path(settings.database_url)
        if path is not None:
            return cls.for_sqlite_file(path, settings.node_id)
        if make_url(settings.database_url).get_backend_name() == "postgresql":
            return await cls._postgres(settings)
        return cls("nothing to lock")

    @classmethod
    def for_sqlite_file(cls, database: Path, node_id: str = "default") -> InstanceLock:
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls.for_lock_file(database, lock_file(database, node_id))

    @classmethod
    def for_lock_file(cls, database: Path, path: Path) -> InstanceLock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise InstanceInUse(
                f"another GuruConnect server{who} is using the database {database}; "
                f"stop it first (its lock: {path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(f"lock file {path}", fd=fd)

    @classmethod
    async def _postgres(cls, settings: DatabaseSettings) -> InstanceLock:
        key = advisory_key(settings.database_schema, settings.node_id)
        # A connection of its own, outside every pool, for the life of the process.
        engine = create_engine(
            settings.database_url, schema=settings.database_schema, poolclass=NullPool
        )
        where = f"schema {settings.database_schema or 'public'}, node {settings.node_id}"
        try:
            conn = await _try_advisory_lock(engine, key)
        except BaseException:
            await engine.dispose()
            raise
        if conn is None:
            await engine.dispose()
            raise InstanceInUse(
                f"another GuruConnect server is using this database ({where}); stop it first"
            )
        lock = cls(f"PostgreSQL advisory lock {key} ({where})", engine=engine, conn=conn)
        lock._key = key
        return lock

    async def keep(self, interval: float) -> None:
        """Run for the life of the server: a PostgreSQL lock dies with its connection (a
        database restart, a network cut), so check it every ``interval`` seconds and take
        it again on a new connection when it is gone."""
        if self._engine is None or self._key is None:
            return
        while True:
            await asyncio.sleep(interval)
            if await self.alive():
                continue
            log.warning("lost the instance lock's connection; taking the lock again")
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    await self._conn.close()
                self._conn = None
            try:
                self._conn = await _try_advisory_lock(self._engine, self._key)
            except Exception as exc:
                log.warning("could not take the instance lock again yet", error=repr(exc))
                continue
            if self._conn is None:
                log.error(
                    "another server holds this node's instance lock now; stop one of them",
                    lock=self.description,
                )
            else:
                log.info("instance lock taken again", lock=self.description)

    async def alive(self) -> bool:
        """Whether the lock is still held (a PostgreSQL lock dies with its connection)."""
        if self._engine is None:
            return True  # SQLite (or nothing to lock): held until released
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def release_file(self) -> None:
        """Release a SQLite lock (no I/O but closing the descriptor)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    async def release(self) -> None:
        self.release_file()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close()  # ends the session, and with it the advisory lock
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

"""Shared fixtures: real databases, a real server on loopback, real HTTP clients.

Every test that takes ``database`` (directly or through ``server``) runs twice: on a
SQLite file and on a fresh schema of the PostgreSQL ``test`` database. PostgreSQL and
Redis tests fail in CI (``CI=true``) when the service is missing and skip elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Executable, select, text

from guruconnect.server import admin
from guruconnect.server.background import BackgroundServer
from guruconnect.server.config import Settings
from guruconnect.server.db.engine import create_engine
from guruconnect.server.db.schema import session_events
from guruconnect.server.log_setup import configure
from tests.timing import scaled

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get(
    "GURUCONNECT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("GURUCONNECT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: One secret for the whole run; tests that need another make their own.
JWT_SECRET = secrets.token_urlsafe(48)
PASSWORD = "correct horse battery staple"
#: Real Argon2id, but cheap enough for hundreds of logins in a test run.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost_kib": 1024, "argon2_parallelism": 1}
STARTUP_TIMEOUT = scaled(15.0)


def require_service(name: str, problem: str | None) -> None:
    if problem is None:
        return
    message = f"{name} unavailable: {problem}"
    if IN_CI:
        pytest.fail(f"{message} (CI must have it)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True, scope="session")
def _structured_logs_through_logging() -> None:
    """Route structlog through the standard library, as the server does, so pytest
    captures the servers' logs (and caplog sees them) instead of raw prints."""
    configure("INFO", "json")


@pytest.fixture(autouse=True, scope="session")
def _a_home_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """GURUCONNECT_HOME for the run: a default that reached the user's own home would
    read or create their real database."""
    old = os.environ.get("GURUCONNECT_HOME")
    os.environ["GURUCONNECT_HOME"] = str(tmp_path_factory.mktemp("guruconnect-home"))
    yield
    if old is None:
        os.environ.pop("GURUCONNECT_HOME", None)
    else:
        os.environ["GURUCONNECT_HOME"] = old


@cache
def postgres_problem() -> str | None:
    async def probe() -> None:
        engine = create_engine(POSTGRES_URL)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{POSTGRES_URL}: {exc!r}"
    return None


@cache
def redis_problem() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"{REDIS_URL}: {exc!r}"
    return None


def run_sql(url: str, sql: str | Executable, schema: str | None = None, **params: Any) -> list[Any]:
    """Run one statement on a fresh engine (a separate connection from the server's).

    Raw SQL returns raw values (which differ between backends); a Core statement returns
    decoded ones (UUIDs, dicts, aware datetimes).
    """
    statement = text(sql) if isinstance(sql, str) else sql

    async def go() -> list[Any]:
        engine = create_engine(url, schema=schema)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(statement, params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


@dataclass(frozen=True)
class Database:
    kind: str  # "sqlite" | "postgres"
    url: str
    schema: str | None = None

    def sql(self, statement: str | Executable, **params: Any) -> list[Any]:
        return run_sql(self.url, statement, self.schema, **params)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'guruconnect.db'}")
        return
    require_service("PostgreSQL", postgres_problem())
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield Database("postgres", POSTGRES_URL, schema)
    run_sql(POSTGRES_URL, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", redis_problem())
    return REDIS_URL


def make_settings(database: Database, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_secret": JWT_SECRET,
        "database_url": database.url,
        "database_schema": database.schema,
        "host": "127.0.0.1",
        "port": 0,
        **FAST_ARGON2,
    }
    values.update(overrides)
    return Settings(**values)


class LiveServer(BackgroundServer):
    """The real app under uvicorn, in a thread, on a loopback port of its own, with
    helpers to seed it and talk to it."""

    def __init__(self, settings: Settings, database: Database) -> None:
        super().__init__(settings, timeout=STARTUP_TIMEOUT)
        self.database = database
        self._clients: list[httpx.Client] = []

    def start(self) -> LiveServer:  # type: ignore[override]
        super().start()
        return self

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        super().stop()

    def client(self, *, source: str | None = None, token: str | None = None) -> httpx.Client:
        """An HTTP client; ``source`` binds it to another loopback address (127.0.0.x)."""
        transport = httpx.HTTPTransport(local_address=source) if source else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, transport=transport, headers=headers, timeout=15)
        self._clients.append(client)
        return client

    # -- seeding through the same code paths the admin CLI uses -------------------------

    def create_tenant(self, name: str) -> uuid.UUID:
        return asyncio.run(admin.create_tenant(self.settings, name)).id

    def create_user(
        self,
        username: str,
        *,
        password: str = PASSWORD,
        is_admin: bool = False,
        tenant: str = "default",
    ) -> uuid.UUID:
        user = asyncio.run(
            admin.create_user(self.settings, username, password, admin=is_admin, tenant=tenant)
        )
        return user.id

    def login(self, username: str, password: str = PASSWORD) -> str:
        response = self.client().post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        assert isinstance(token, str)
        return token

    def events(self, event_type: str) -> list[Any]:
        """Audit rows of one type, oldest first, with decoded values."""
        return self.database.sql(
            select(session_events)
            .where(session_events.c.event_type == event_type)
            .order_by(session_events.c.created_at)
        )


@pytest.fixture
def server_factory(database: Database) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on the test's database; each is stopped at teardown."""
    started: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        # One server per node and database (the instance lock): a server started while
        # others run is a further node; one started after they stopped takes their place.
        busy = {live.settings.node_id for live in started if live.running}
        free = ["default", *(f"node-{n}" for n in range(2, len(started) + 2))]
        overrides.setdefault("node_id", next(node for node in free if node not in busy))
        live = LiveServer(make_settings(database, **overrides), database).start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture
def server(server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory()

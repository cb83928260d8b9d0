"""The app factory: settings -> database -> services -> routers.

``create_app`` does no I/O; the lifespan migrates the database and starts the background
work, and releases everything on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from fastapi import FastAPI

from guruconnect.server.api import (
    agent_keys,
    auth,
    clients,
    console,
    events,
    health,
    machines,
    ops,
    releases,
    sessions,
    support_codes,
    users,
)
from guruconnect.server.audit import AuditLog
from guruconnect.server.auth.login_limits import LoginLimiter
from guruconnect.server.auth.passwords import PasswordChecks, Passwords
from guruconnect.server.body_limit import BodyLimit
from guruconnect.server.config import Settings
from guruconnect.server.db import auth_tokens, viewer_tickets
from guruconnect.server.db.engine import create_engine, migrate
from guruconnect.server.errors import InternalErrors, install_handlers
from guruconnect.server.hosts import TrustedHosts
from guruconnect.server.instance import InstanceLock
from guruconnect.server.log_setup import install_redaction
from guruconnect.server.metrics import Metrics
from guruconnect.server.middleware import AccessLog, HeadAsGet, SecurityHeaders
from guruconnect.server.path_guard import EncodedSlashes
from guruconnect.server.rate_limits import RateLimits
from guruconnect.server.relay.hub import Hub
from guruconnect.server.relay.router import router as relay_router
from guruconnect.server.state import AppState
from guruconnect.server.web import routes as web_routes
from guruconnect.version import build_info

log = structlog.get_logger(__name__)

#: Path prefix -> largest body, for routes that need more than ``max_body_bytes`` (none yet).
BODY_LIMIT_OVERRIDES: dict[str, int] = {}


async def _prune_tokens(state: AppState) -> None:
    while True:
        try:
            async with state.engine.begin() as conn:
                pruned = await auth_tokens.prune_expired(conn)
                pruned += await viewer_tickets.prune_expired(conn)
            if pruned:
                log.info("pruned expired tokens and tickets", count=pruned)
        except Exception:
            log.exception("token pruning failed; will retry")
        await asyncio.sleep(state.settings.token_prune_interval_seconds)


def create_app(settings: Settings, *, instance_lock: InstanceLock | None = None) -> FastAPI:
    """``instance_lock``: this node's lock on the database, taken by the caller (the CLI
    takes it before its own checks); without it the lifespan takes it, before anything
    else, and refuses to start when another server holds it."""
    install_redaction()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lock = instance_lock or await InstanceLock.acquire(settings)
        keeper = asyncio.create_task(
            lock.keep(settings.heartbeat_interval_seconds), name="keep-instance-lock"
        )
        try:
            async with _serving(app, lock):
                yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            if instance_lock is None:
                await lock.release()

    @contextlib.asynccontextmanager
    async def _serving(app: FastAPI, lock: InstanceLock) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, schema=settings.database_schema)
        limits = RateLimits.create(redis_url=settings.redis_url, prefix=settings.redis_prefix)
        try:
            await migrate(engine, schema=settings.database_schema)
            audit = AuditLog(engine)
            hub = Hub(settings, engine, audit, metrics)
            await hub.reconcile()
            state = AppState(
                settings=settings,
                engine=engine,
                passwords=Passwords.from_settings(settings),
                password_checks=PasswordChecks.from_settings(settings),
                rate_limits=limits,
                login_limiter=LoginLimiter(
                    limits,
                    settings.login_rate_limit,
                    settings.login_user_rate_limit,
                    settings.login_backoff_max_seconds,
                ),
                audit=audit,
                hub=hub,
            )
            app.state.guruconnect = state
            metrics.watch(hub)
            pruner = asyncio.create_task(_prune_tokens(state), name="prune-tokens")
            log.info(
                "server ready",
                version=build_info().full_version,
                node=settings.node_id,
                instance_lock=lock.description,
            )
            try:
                yield
            finally:
                metrics.watch(None)
                await hub.shutdown()
                pruner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pruner
        finally:
            await limits.close()
            await engine.dispose()

    app = FastAPI(
        title="GuruConnect",
        version=build_info().full_version,
        docs_url=None,  # Swagger UI loads scripts from a CDN; the CSP (rightly) forbids it
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    install_handlers(app)
    app.include_router(health.router)
    app.include_router(ops.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(agent_keys.router)
    app.include_router(support_codes.router)
    app.include_router(machines.router)
    app.include_router(clients.router)
    app.include_router(sessions.router)
    app.include_router(events.router)
    app.include_router(console.router)
    app.include_router(releases.router)
    app.include_router(relay_router)
    web_routes.mount(app)
    # Last added runs first: headers on everything, then the access log, then the catch-all.
    app.add_middleware(HeadAsGet)
    app.add_middleware(InternalErrors)
    app.add_middleware(EncodedSlashes)  # such a path reaches no route at all
    # Bodies over the limit are refused before anything reads them (per-route overrides
    # for routes that need more go in BODY_LIMIT_OVERRIDES).
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, overrides=BODY_LIMIT_OVERRIDES)
    # Unknown Host names (DNS rebinding) are refused on both planes, logged by AccessLog.
    app.add_middleware(TrustedHosts, allowed=settings.trusted_hosts)
    app.add_middleware(AccessLog)
    app.add_middleware(SecurityHeaders)
    return app

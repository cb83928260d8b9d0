"""Run the server under uvicorn with explicit, deliberate settings."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import structlog
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from guruconnect.server.app import create_app
from guruconnect.server.config import DATABASE_FILE, Settings
from guruconnect.server.db.engine import create_engine, migrate
from guruconnect.server.forwarded import RealIpFromTrustedProxies
from guruconnect.server.instance import InstanceInUse, InstanceLock
from guruconnect.server.log_setup import configure
from guruconnect.server.tls import CertificateReloader
from guruconnect.server.transport_limits import http_protocol, ws_protocol

log = structlog.get_logger(__name__)


class StartupError(Exception):
    """The server cannot start; the message says why in one line."""


__all__ = ["InstanceInUse", "StartupError", "serve", "uvicorn_config"]


async def _preflight(settings: Settings) -> None:
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    try:
        await migrate(engine, schema=settings.database_schema)
    finally:
        await engine.dispose()


def uvicorn_config(
    settings: Settings, app: FastAPI | None = None, **overrides: object
) -> uvicorn.Config:
    """uvicorn's settings, spelled out; ``app`` defaults to ``create_app(settings)``."""
    trusted = settings.trusted_proxies
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        # uvicorn's httptools and websockets-sansio protocols, with a deadline for request
        # headers and a hard end for sockets whose peer stopped reading.
        "http": http_protocol(settings.header_timeout_seconds, settings.max_header_bytes),
        "ws": ws_protocol({"/ws/viewer": settings.viewer_max_message_bytes}),
        # Liveness is the relay's own heartbeat (relay.peers.Heartbeats), one mechanism at
        # exactly its interval: no second, protocol-level ping.
        "ws_ping_interval": None,
        # Frames are already compressed; deflate would only burn CPU.
        "ws_per_message_deflate": False,
        # The agent plane's limit; the viewer plane's smaller one is set per connection.
        "ws_max_size": max(settings.agent_max_message_bytes, settings.viewer_max_message_bytes),
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: trust no one unless
        # the operator names the proxies.
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": ",".join(trusted) if trusted else "",
        "server_header": False,
        "access_log": False,
        "log_config": None,
        "lifespan": "on",
    }
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        options["ssl_certfile"] = str(settings.tls_cert_file)
        options["ssl_keyfile"] = str(settings.tls_key_file)
    options.update(overrides)
    asgi: ASGIApp = app or create_app(settings)
    if trusted:
        # Inside uvicorn's X-Forwarded-For handling: X-Real-IP, from the same proxies only.
        asgi = RealIpFromTrustedProxies(asgi, trusted)
    return uvicorn.Config(asgi, **options)  # type: ignore[arg-type]


def serve(settings: Settings) -> None:
    """Run until stopped. Raises :class:`InstanceInUse` when another server holds the
    database, :class:`StartupError` for any other reason not to start; both before the
    database is changed or the port bound."""
    configure(settings.log_level, settings.log_format)
    _check_tls_files(settings)
    _warn_about_an_old_database(settings)
    # uvicorn's loop (uvloop when installed); the app string is never imported, and
    # log_config=None keeps uvicorn from replacing our logging setup.
    loop_factory = uvicorn.Config("guruconnect:unused", log_config=None).get_loop_factory()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        started = runner.run(_serve(settings))
    if not started:
        raise StartupError("the server did not start (see the log above)")


async def _serve(settings: Settings) -> bool:
    # The instance lock first: a second server must not migrate, reconcile or bind.
    try:
        lock = await InstanceLock.acquire(settings)
    except InstanceInUse:
        raise
    except Exception as exc:
        raise StartupError(f"database {_safe_url(settings.database_url)} unusable: {exc}") from exc
    try:
        # Migrate before binding the port, so a broken database is a one-line error.
        try:
            await _preflight(settings)
        except Exception as exc:
            raise StartupError(
                f"database {_safe_url(settings.database_url)} unusable: {exc}"
            ) from exc
        app = create_app(settings, instance_lock=lock)
        config = uvicorn_config(settings, app)
        config.load()
        cert, key = settings.tls_cert_file, settings.tls_key_file
        if config.ssl is not None and cert is not None and key is not None:
            CertificateReloader(config.ssl, cert, key).install_sighup()
        server = uvicorn.Server(config)
        await server.serve()
        return server.started
    finally:
        await lock.release()


def _check_tls_files(settings: Settings) -> None:
    """A certificate and key that do not load are a one-line error before the instance lock
    or the database are touched."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None or key is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"TLS certificate or key unusable: {exc}") from exc


def _warn_about_an_old_database(settings: Settings) -> None:
    """Before GURUCONNECT_HOME, the default database was ./guruconnect.db."""
    old = Path(DATABASE_FILE).absolute()
    in_home = settings.home / DATABASE_FILE
    if settings.database_url.endswith(f"///{in_home}") and old != in_home and old.exists():
        log.warning(
            "found a database in the working directory that this server does not use; "
            "see README, 'Where data lives', to move it",
            found=str(old),
            using=str(in_home),
        )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)

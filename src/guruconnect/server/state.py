"""What the running server holds: built once in the app factory, read by the routers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from guruconnect.server.audit import AuditLog
from guruconnect.server.auth.login_limits import LoginLimiter
from guruconnect.server.auth.passwords import PasswordChecks, Passwords
from guruconnect.server.config import Settings
from guruconnect.server.rate_limits import RateLimits
from guruconnect.server.relay.hub import Hub


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    passwords: Passwords
    password_checks: PasswordChecks
    rate_limits: RateLimits
    login_limiter: LoginLimiter
    audit: AuditLog
    hub: Hub


def app_state(request: HTTPConnection) -> AppState:
    """The state, from a request or a WebSocket."""
    state = request.app.state.guruconnect
    assert isinstance(state, AppState)
    return state

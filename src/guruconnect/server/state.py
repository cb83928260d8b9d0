"""What the running server holds: built once in the app factory, read by the routers."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from guruconnect.server.audit import AuditLog
from guruconnect.server.auth.login_limits import LoginLimiter
from guruconnect.server.auth.passwords import Passwords
from guruconnect.server.config import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    passwords: Passwords
    login_limiter: LoginLimiter
    audit: AuditLog


def app_state(request: Request) -> AppState:
    state = request.app.state.guruconnect
    assert isinstance(state, AppState)
    return state

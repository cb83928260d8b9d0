"""Request-level dependencies: who is calling, from where, and may they."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from guruconnect.server.auth import user_tokens
from guruconnect.server.auth.errors import InvalidToken
from guruconnect.server.auth.permissions import Permission, Role, effective_permissions
from guruconnect.server.db import auth_tokens, users
from guruconnect.server.db.users import User
from guruconnect.server.state import AppState, app_state

_bearer = HTTPBearer(auto_error=False, description="An access token from /api/auth/login")

State = Annotated[AppState, Depends(app_state)]


def source_address(request: Request) -> str:
    """The peer's address. Forwarded headers are applied (or not) by uvicorn, which only
    believes them from ``GURUCONNECT_TRUSTED_PROXIES``."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Principal:
    user: User
    claims: user_tokens.TokenClaims
    permissions: frozenset[Permission]

    @property
    def is_admin(self) -> bool:
        return self.user.role is Role.ADMIN


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def authenticated(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """A valid, unrevoked dashboard token of a live user; 401 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("not authenticated")
    try:
        claims = user_tokens.decode(state.settings.secret, credentials.credentials)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    async with state.engine.connect() as conn:
        token_state = await auth_tokens.state(conn, claims)
        if token_state is None or token_state.revoked or not token_state.user_live:
            raise unauthorized("token revoked")
        user = await users.get(conn, claims.tenant_id, claims.user_id)
        if user is None:
            raise unauthorized("token revoked")
        granted = await users.permissions_of(conn, user.id)
    return Principal(user, claims, effective_permissions(user.role, granted))


Authenticated = Annotated[Principal, Depends(authenticated)]


async def admin(principal: Authenticated) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admin role required")
    return principal


Admin = Annotated[Principal, Depends(admin)]


def require(principal: Principal, permission: Permission) -> None:
    if permission not in principal.permissions:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"permission {permission.value!r} required"
        )

"""Request-level dependencies: who is calling, from where, and may they."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from guruconnect.server.auth import account_gate, browser_sessions, user_tokens
from guruconnect.server.auth.errors import InvalidToken
from guruconnect.server.auth.permissions import Permission, Role, effective_permissions
from guruconnect.server.db import accounts, auth_tokens, users
from guruconnect.server.db.events import Event
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
    #: The token came in the browser's session cookie (not an Authorization header).
    via_cookie: bool = False

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
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """A valid, unrevoked dashboard token of a live user; 401 otherwise.

    The token comes from the Authorization header or, for the browser, from the session
    cookie; a cookie-borne write also needs its CSRF header (403 without it).
    """
    if credentials is not None:
        if credentials.scheme.lower() != "bearer":
            raise unauthorized("not authenticated")
        token, via_cookie = credentials.credentials, False
    elif cookie := request.cookies.get(browser_sessions.COOKIE_NAME):
        token, via_cookie = cookie, True
    else:
        raise unauthorized("not authenticated")
    try:
        claims = user_tokens.decode(state.settings.secret, token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    if (
        via_cookie
        and request.method not in browser_sessions.SAFE_METHODS
        and not browser_sessions.csrf_valid(
            state.settings.secret,
            claims.jti,
            request.headers.get(browser_sessions.CSRF_HEADER),
        )
    ):
        await state.audit.record(
            Event(
                "auth.csrf_rejected",
                tenant_id=claims.tenant_id,
                user_id=claims.user_id,
                source_address=source_address(request),
                detail={"method": request.method, "path": request.url.path},
            )
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or invalid CSRF token")
    async with state.engine.connect() as conn:
        token_state = await auth_tokens.state(conn, claims)
        if token_state is None or token_state.revoked or not token_state.user_live:
            raise unauthorized("token revoked")
        user = await users.get(conn, claims.tenant_id, claims.user_id)
        if user is None:
            raise unauthorized("token revoked")
        granted = await users.permissions_of(conn, user.id)
        account = await accounts.state(conn, user.tenant_id, user.id)
    if why := account_gate.refusal(request.method, request.url.path, account):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=why)
    return Principal(user, claims, effective_permissions(user.role, granted), via_cookie)


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

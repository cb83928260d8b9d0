"""Login, logout, who-am-I, and an admin's "revoke every token of this user".

API clients log in with ``/login`` and send the token as a Bearer header. The browser
dashboard logs in with ``/session``: the token goes into an HttpOnly cookie and the page
gets only a CSRF token (see ``auth.browser_sessions`` for why).
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from guruconnect.server.api.deps import Admin, Authenticated, State, source_address
from guruconnect.server.auth import browser_sessions, user_tokens
from guruconnect.server.auth.errors import RateLimited
from guruconnect.server.auth.login_limits import LimiterUnavailable, Throttled
from guruconnect.server.auth.passwords import Busy
from guruconnect.server.db import auth_tokens, users
from guruconnect.server.db.events import Event
from guruconnect.server.db.users import normalise_username

router = APIRouter(prefix="/api/auth", tags=["auth"])

#: One message for an unknown name, a wrong password and a disabled account alike.
BAD_CREDENTIALS = "invalid username or password"


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 scheme name, not a secret
    expires_at: datetime


class Me(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    username: str
    display_name: str | None
    role: str
    permissions: list[str]
    token_expires_at: datetime
    #: Only for a browser session (cookie): the value of the ``X-CSRF-Token`` header.
    csrf_token: str | None = None


class BrowserSession(BaseModel):
    """The answer to a browser login: no token (it is in the HttpOnly cookie)."""

    username: str
    csrf_token: str
    expires_at: datetime


class Revoked(BaseModel):
    revoked: int


@router.post(
    "/login",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Rate limited"}},
)
async def login(body: LoginRequest, request: Request, state: State) -> LoginResponse:
    issued = await _log_in(body, request, state)
    return LoginResponse(access_token=issued.token, expires_at=issued.claims.expires_at)


@router.post(
    "/session",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Rate limited"}},
)
async def browser_login(
    body: LoginRequest, request: Request, response: Response, state: State
) -> BrowserSession:
    """Log in for the browser dashboard: the token is set as an HttpOnly cookie."""
    issued = await _log_in(body, request, state)
    response.set_cookie(
        browser_sessions.COOKIE_NAME,
        issued.token,
        max_age=state.settings.access_token_ttl_seconds,
        path=browser_sessions.COOKIE_PATH,
        secure=browser_sessions.cookie_secure(state.settings.public_url, request.url.scheme),
        httponly=True,
        samesite="strict",
    )
    return BrowserSession(
        username=normalise_username(body.username),
        csrf_token=browser_sessions.csrf_token(state.settings.secret, issued.claims.jti),
        expires_at=issued.claims.expires_at,
    )


async def _log_in(body: LoginRequest, request: Request, state: State) -> user_tokens.IssuedToken:
    address = source_address(request)
    username = normalise_username(body.username)
    try:
        # Counted before the password is checked: guesses sent at once cannot all slip
        # through between a check and a count (refunded below if the login succeeds).
        attempt = await state.login_limiter.begin(address, username)
    except RateLimited as exc:
        throttled = isinstance(exc, Throttled)
        state.hub.metrics.login_failures.labels("rate_limited").inc()
        await state.audit.record(
            Event(
                "auth.login_throttled" if throttled else "auth.login_rate_limited",
                actor=username,
                source_address=address,
                detail={"retry_after": exc.retry_after}
                | ({"pattern": "many_failures_for_user"} if throttled else {}),
            )
        )
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many failed login attempts; try again later",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except LimiterUnavailable:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="login is unavailable, try again soon"
        ) from None

    try:
        user, reason = await _check_password(body, username, state)
    except Busy:
        with contextlib.suppress(LimiterUnavailable):
            await state.login_limiter.abandoned(attempt)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="too many logins at once; try again in a moment",
            headers={"Retry-After": "1"},
        ) from None

    if reason:
        state.hub.metrics.login_failures.labels(reason).inc()
        with contextlib.suppress(LimiterUnavailable):  # still refused and audited below
            await state.login_limiter.failed(attempt)
        await state.audit.record(
            Event(
                "auth.login_failed",
                tenant_id=user.tenant_id if user else None,
                user_id=user.id if user else None,
                actor=username,
                source_address=address,
                detail={"reason": reason},
            )
        )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=BAD_CREDENTIALS,
            headers={"WWW-Authenticate": "Bearer"},
        )
    with contextlib.suppress(LimiterUnavailable):
        await state.login_limiter.succeeded(attempt)

    assert user is not None
    issued = user_tokens.issue(
        state.settings.secret,
        user_id=user.id,
        tenant_id=user.tenant_id,
        ttl=timedelta(seconds=state.settings.access_token_ttl_seconds),
    )
    rehashed = None
    if state.passwords.needs_rehash(user.password_hash):
        # A busy server keeps the old hash this time; the next login rehashes.
        with contextlib.suppress(Busy):
            rehashed = await state.password_checks.run(state.passwords.hash, body.password)
    async with state.engine.begin() as conn:
        await auth_tokens.record(conn, issued.claims)
        await users.record_login(conn, user.id, new_password_hash=rehashed)
    await state.audit.record(
        Event(
            "auth.login",
            tenant_id=user.tenant_id,
            user_id=user.id,
            actor=user.username,
            source_address=address,
            detail={"jti": str(issued.claims.jti), "rehashed": rehashed is not None},
        )
    )
    return issued


async def _check_password(
    body: LoginRequest, username: str, state: State
) -> tuple[users.User | None, str]:
    """The user and why the login fails ("" if it does not). Argon2 is deliberately slow
    and big: it runs off the event loop, in one of a bounded number of slots (:class:`Busy`
    when none is free)."""
    async with state.engine.connect() as conn:
        user = await users.by_username(conn, username)
    checks = state.password_checks
    if user is None:
        await checks.run(state.passwords.verify_decoy, body.password)
        return None, "unknown_user"
    if not await checks.run(state.passwords.verify, user.password_hash, body.password):
        return user, "bad_password"
    if user.disabled:
        return user, "disabled"
    return user, ""


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: Authenticated, request: Request, state: State) -> Response:
    async with state.engine.begin() as conn:
        await auth_tokens.revoke(conn, principal.claims.jti, "logout")
    closed = state.hub.revoke_token(principal.claims.jti)
    await state.audit.record(
        Event(
            "auth.logout",
            tenant_id=principal.user.tenant_id,
            user_id=principal.user.id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"jti": str(principal.claims.jti), "closed_viewers": closed},
        )
    )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if principal.via_cookie:
        response.delete_cookie(
            browser_sessions.COOKIE_NAME,
            path=browser_sessions.COOKIE_PATH,
            httponly=True,
            samesite="strict",
        )
    return response


@router.get("/me")
async def me(principal: Authenticated, state: State) -> Me:
    user = principal.user
    return Me(
        id=user.id,
        tenant_id=user.tenant_id,
        username=user.username,
        display_name=user.display_name,
        role=user.role.value,
        permissions=sorted(p.value for p in principal.permissions),
        token_expires_at=principal.claims.expires_at,
        csrf_token=browser_sessions.csrf_token(state.settings.secret, principal.claims.jti)
        if principal.via_cookie
        else None,
    )


@router.post("/revoke-user/{user_id}", responses={404: {"description": "No such user"}})
async def revoke_user(
    user_id: uuid.UUID, principal: Admin, request: Request, state: State
) -> Revoked:
    async with state.engine.begin() as conn:
        target = await users.get(conn, principal.user.tenant_id, user_id)
        if target is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="user not found")
        revoked = await auth_tokens.revoke_user(conn, target.id, "admin_revoked")
    closed = state.hub.revoke_user(target.id)
    await state.audit.record(
        Event(
            "auth.tokens_revoked",
            tenant_id=principal.user.tenant_id,
            user_id=target.id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"count": len(revoked), "by": str(principal.user.id), "closed_viewers": closed},
        )
    )
    return Revoked(revoked=len(revoked))

"""Login, logout, who-am-I, and an admin's "revoke every token of this user".

API clients log in with ``/login`` and send the token as a Bearer header. The browser
dashboard logs in with ``/session``: the token goes into an HttpOnly cookie and the page
gets only a CSRF token (see ``auth.browser_sessions`` for why).
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field, StringConstraints

from guruconnect.server.api.deps import (
    Admin,
    Authenticated,
    Principal,
    State,
    source_address,
    unauthorized,
)
from guruconnect.server.audit_types import AuditType
from guruconnect.server.auth import browser_sessions, mfa, user_tokens
from guruconnect.server.auth.errors import InvalidToken, RateLimited
from guruconnect.server.auth.login_limits import LimiterUnavailable, Throttled
from guruconnect.server.auth.mfa_limits import MfaAttempt, MfaLimiter
from guruconnect.server.auth.passwords import Busy
from guruconnect.server.db import accounts, auth_tokens, users
from guruconnect.server.db.events import Event
from guruconnect.server.db.users import normalise_username
from guruconnect.server.errors import invalid

router = APIRouter(prefix="/api/auth", tags=["auth"])

#: One message for an unknown name, a wrong password and a disabled account alike.
BAD_CREDENTIALS = "invalid username or password"


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    #: Null when ``mfa_required``: then only ``mfa_token`` is given, for ``/login/mfa``.
    access_token: str | None
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 scheme name, not a secret
    expires_at: datetime
    mfa_required: bool = False
    mfa_token: str | None = None
    #: The token works only for changing the password (an admin reset it).
    must_change_password: bool = False
    #: The tenant requires MFA: the token works only for setting it up.
    mfa_enrolment_required: bool = False


class MfaLoginRequest(BaseModel):
    mfa_token: str = Field(min_length=1, max_length=2048)
    #: A 6-digit TOTP code or a recovery code.
    code: str = Field(min_length=1, max_length=64)


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
    must_change_password: bool = False
    mfa_enabled: bool = False
    mfa_enrolment_required: bool = False


class BrowserSession(BaseModel):
    """The answer to a browser login: no token (it is in the HttpOnly cookie)."""

    username: str
    #: Null when ``mfa_required`` (no session yet).
    csrf_token: str | None
    expires_at: datetime
    mfa_required: bool = False
    mfa_token: str | None = None
    must_change_password: bool = False
    mfa_enrolment_required: bool = False


class Revoked(BaseModel):
    revoked: int


@router.post(
    "/login",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Rate limited"}},
)
async def login(body: LoginRequest, request: Request, state: State) -> LoginResponse:
    """Step one. With MFA on, the answer holds no access token, only an ``mfa_token`` for
    ``/login/mfa`` (which no other route accepts)."""
    outcome = await _log_in(body, request, state)
    if isinstance(outcome, _Challenged):
        return LoginResponse(
            access_token=None,
            expires_at=outcome.challenge.expires_at,
            mfa_required=True,
            mfa_token=outcome.token,
        )
    return _token_response(outcome)


@router.post(
    "/login/mfa",
    responses={401: {"description": "Wrong code or challenge"}, 429: {"description": "Limited"}},
)
async def login_mfa(body: MfaLoginRequest, request: Request, state: State) -> LoginResponse:
    """Step two: the challenge from ``/login`` and a TOTP or recovery code."""
    return _token_response(await _second_factor(body, request, state))


def _token_response(outcome: _LoggedIn) -> LoginResponse:
    return LoginResponse(
        access_token=outcome.issued.token,
        expires_at=outcome.issued.claims.expires_at,
        must_change_password=outcome.account.must_change_password,
        mfa_enrolment_required=outcome.account.mfa_enrolment_required,
    )


@router.post(
    "/session",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Rate limited"}},
)
async def browser_login(
    body: LoginRequest, request: Request, response: Response, state: State
) -> BrowserSession:
    """Log in for the browser dashboard: the token is set as an HttpOnly cookie (with MFA
    on, only after ``/session/mfa``)."""
    outcome = await _log_in(body, request, state)
    if isinstance(outcome, _Challenged):
        return BrowserSession(
            username=normalise_username(body.username),
            csrf_token=None,
            expires_at=outcome.challenge.expires_at,
            mfa_required=True,
            mfa_token=outcome.token,
        )
    return _browser_session(outcome, request, response, state)


@router.post(
    "/session/mfa",
    responses={401: {"description": "Wrong code or challenge"}, 429: {"description": "Limited"}},
)
async def browser_login_mfa(
    body: MfaLoginRequest, request: Request, response: Response, state: State
) -> BrowserSession:
    return _browser_session(await _second_factor(body, request, state), request, response, state)


def _browser_session(
    outcome: _LoggedIn, request: Request, response: Response, state: State
) -> BrowserSession:
    issued = outcome.issued
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
        username=outcome.user.username,
        csrf_token=browser_sessions.csrf_token(state.settings.secret, issued.claims.jti),
        expires_at=issued.claims.expires_at,
        must_change_password=outcome.account.must_change_password,
        mfa_enrolment_required=outcome.account.mfa_enrolment_required,
    )


@dataclass(frozen=True)
class _LoggedIn:
    user: users.User
    issued: user_tokens.IssuedToken
    account: accounts.AccountState


@dataclass(frozen=True)
class _Challenged:
    token: str
    challenge: mfa.Challenge


async def _log_in(body: LoginRequest, request: Request, state: State) -> _LoggedIn | _Challenged:
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
                AuditType.AUTH_LOGIN_THROTTLED if throttled else AuditType.AUTH_LOGIN_RATE_LIMITED,
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
                AuditType.AUTH_LOGIN_FAILED,
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
    rehashed = None
    if state.passwords.needs_rehash(user.password_hash):
        # A busy server keeps the old hash this time; the next login rehashes.
        with contextlib.suppress(Busy):
            rehashed = await state.password_checks.run(state.passwords.hash, body.password)
    async with state.engine.connect() as conn:
        factor = await accounts.mfa(conn, user.id)
    if factor.enabled:
        # The password was right; no token until the second factor is too.
        if rehashed is not None:
            async with state.engine.begin() as conn:
                await accounts.rehash(conn, user.id, rehashed)
        token, challenge = mfa.issue_challenge(
            state.settings.secret,
            user_id=user.id,
            tenant_id=user.tenant_id,
            password_hash=rehashed or user.password_hash,
        )
        await state.audit.record(
            Event(
                AuditType.AUTH_MFA_CHALLENGED,
                tenant_id=user.tenant_id,
                user_id=user.id,
                actor=user.username,
                source_address=address,
                detail={"challenge": str(challenge.jti)},
            )
        )
        return _Challenged(token, challenge)
    return await _issue(state, user, address, rehashed=rehashed, detail={})


async def _issue(
    state: State, user: users.User, address: str, *, rehashed: str | None, detail: dict[str, Any]
) -> _LoggedIn:
    issued = user_tokens.issue(
        state.settings.secret,
        user_id=user.id,
        tenant_id=user.tenant_id,
        ttl=timedelta(seconds=state.settings.access_token_ttl_seconds),
    )
    async with state.engine.begin() as conn:
        await auth_tokens.record(conn, issued.claims)
        await users.record_login(conn, user.id, new_password_hash=rehashed)
        account = await accounts.state(conn, user.tenant_id, user.id)
    await state.audit.record(
        Event(
            AuditType.AUTH_LOGIN,
            tenant_id=user.tenant_id,
            user_id=user.id,
            actor=user.username,
            source_address=address,
            detail={"jti": str(issued.claims.jti), "rehashed": rehashed is not None} | detail,
        )
    )
    return _LoggedIn(user, issued, account)


async def _second_factor(body: MfaLoginRequest, request: Request, state: State) -> _LoggedIn:
    address = source_address(request)
    try:
        challenge = mfa.decode_challenge(state.settings.secret, body.mfa_token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    async with state.engine.connect() as conn:
        user = await users.get(conn, challenge.tenant_id, challenge.user_id)
        factor = await accounts.mfa(conn, user.id) if user else None
    if (
        user is None
        or user.disabled
        or factor is None
        or not factor.enabled
        or not challenge.matches_password(user.password_hash)
    ):
        # Deleted, disabled, password changed or MFA turned off since the password step.
        raise unauthorized("invalid MFA challenge; log in again")
    assert factor.secret is not None
    limiter = MfaLimiter(state.rate_limits)
    attempt = await _count_code(limiter, state, user, address, phase="login")
    method, ok, reason = await _check_code(state, user, factor.secret, body.code)
    if not ok:
        await state.audit.record(
            Event(
                AuditType.AUTH_MFA_FAILED,
                tenant_id=user.tenant_id,
                user_id=user.id,
                actor=user.username,
                source_address=address,
                detail={"method": method, "reason": reason, "phase": "login"},
            )
        )
        raise unauthorized("invalid code")
    with contextlib.suppress(LimiterUnavailable):
        await limiter.succeeded(attempt)
        lifetime = int((challenge.expires_at - datetime.now(UTC)).total_seconds()) + 1
        if not await limiter.use_challenge(challenge.jti, lifetime):
            raise unauthorized("this login was completed already; log in again")
    if method == "recovery_code":
        async with state.engine.connect() as conn:
            left = await accounts.recovery_codes_left(conn, user.id)
        await state.audit.record(
            Event(
                AuditType.AUTH_MFA_RECOVERY_USED,
                tenant_id=user.tenant_id,
                user_id=user.id,
                actor=user.username,
                source_address=address,
                detail={"codes_left": left},
            )
        )
    return await _issue(state, user, address, rehashed=None, detail={"mfa": method})


async def _count_code(
    limiter: MfaLimiter, state: State, user: users.User, address: str, *, phase: str
) -> MfaAttempt:
    """Count a second-factor attempt before its code is checked (429 when over)."""
    try:
        return await limiter.begin(user.id)
    except RateLimited as exc:
        await state.audit.record(
            Event(
                AuditType.AUTH_MFA_RATE_LIMITED,
                tenant_id=user.tenant_id,
                user_id=user.id,
                actor=user.username,
                source_address=address,
                detail={"retry_after": exc.retry_after, "phase": phase},
            )
        )
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many wrong codes; try again later",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except LimiterUnavailable:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="login is unavailable, try again soon"
        ) from None


async def _check_code(
    state: State, user: users.User, secret: str, code: str
) -> tuple[str, bool, str]:
    """(method, accepted, why not): a TOTP code (each time step once) or a recovery code
    (each once)."""
    code = code.strip().replace(" ", "")
    if mfa.is_totp_code(code):
        step = mfa.totp_step(secret, code)
        if step is None:
            return "totp", False, "wrong_code"
        async with state.engine.begin() as conn:
            fresh = await accounts.accept_step(conn, user.id, step)
        return "totp", fresh, "" if fresh else "replayed_code"
    async with state.engine.begin() as conn:
        spent = await accounts.use_recovery_code(conn, user.id, mfa.recovery_code_hash(code))
    return "recovery_code", spent, "" if spent else "wrong_or_used_recovery_code"


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
            AuditType.AUTH_LOGOUT,
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
    async with state.engine.connect() as conn:
        account = await accounts.state(conn, user.tenant_id, user.id)
    return Me(
        must_change_password=account.must_change_password,
        mfa_enabled=account.mfa_enabled,
        mfa_enrolment_required=account.mfa_enrolment_required,
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
            AuditType.AUTH_TOKENS_REVOKED,
            tenant_id=principal.user.tenant_id,
            user_id=target.id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"count": len(revoked), "by": str(principal.user.id), "closed_viewers": closed},
        )
    )
    return Revoked(revoked=len(revoked))


# -- your own account: password, second factor ---------------------------------------------

#: Long enough to resist guessing offline; capped so hashing cannot be made expensive.
NewPassword = Annotated[str, StringConstraints(min_length=12, max_length=1024)]
CurrentPassword = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
WRONG_PASSWORD = "the current password is wrong"  # noqa: S105 - a message


class AccountOut(BaseModel):
    username: str
    must_change_password: bool
    mfa_enabled: bool
    mfa_required: bool
    mfa_enrolment_required: bool
    recovery_codes_left: int


class PasswordChange(BaseModel):
    current_password: CurrentPassword
    new_password: NewPassword


class PasswordOnly(BaseModel):
    password: CurrentPassword


class CodeOnly(BaseModel):
    code: str = Field(min_length=1, max_length=64)


class PasswordAndCode(BaseModel):
    password: CurrentPassword
    code: str = Field(min_length=1, max_length=64)


class MfaSetup(BaseModel):
    secret: str
    otpauth_uri: str
    #: The QR code of ``otpauth_uri``, an SVG ``data:`` URL for an ``<img>``.
    qr_data_url: str


class RecoveryCodes(BaseModel):
    #: Shown once: only their hashes are kept.
    recovery_codes: list[str]
    revoked_sessions: int = 0


class PasswordChanged(BaseModel):
    #: Your other tokens and browser sessions, now revoked.
    revoked_sessions: int


class Policy(BaseModel):
    mfa_required: bool
    audit_keep_content: bool


class PolicyPatch(BaseModel):
    mfa_required: bool | None = None
    audit_keep_content: bool | None = None


def _own_event(
    event_type: AuditType, principal: Principal, request: Request, **detail: object
) -> Event:
    return Event(
        event_type,
        tenant_id=principal.user.tenant_id,
        user_id=principal.user.id,
        actor=principal.user.username,
        source_address=source_address(request),
        detail=dict(detail),
    )


async def _verify_own_password(
    principal: Principal, password: str, request: Request, state: State, *, purpose: str
) -> None:
    """Check the caller's current password under the login's limits (counted first, in a
    bounded Argon2 slot); 403 when wrong, 429 when over the limit."""
    address = source_address(request)
    try:
        attempt = await state.login_limiter.begin(address, principal.user.username)
    except RateLimited as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many wrong passwords; try again later",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except LimiterUnavailable:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="unavailable, try again soon"
        ) from None
    try:
        ok = await state.password_checks.run(
            state.passwords.verify, principal.user.password_hash, password
        )
    except Busy:
        with contextlib.suppress(LimiterUnavailable):
            await state.login_limiter.abandoned(attempt)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the server is busy; try again in a moment",
            headers={"Retry-After": "1"},
        ) from None
    if not ok:
        with contextlib.suppress(LimiterUnavailable):
            await state.login_limiter.failed(attempt)
        await state.audit.record(
            _own_event(
                AuditType.AUTH_PASSWORD_CHANGE_FAILED
                if purpose == "password_change"
                else AuditType.AUTH_MFA_FAILED,
                principal,
                request,
                reason="bad_password",
                phase=purpose,
            )
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=WRONG_PASSWORD)
    with contextlib.suppress(LimiterUnavailable):
        await state.login_limiter.succeeded(attempt)


async def _hash(state: State, password: str) -> str:
    try:
        return await state.password_checks.run(state.passwords.hash, password)
    except Busy:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the server is busy; try again in a moment",
            headers={"Retry-After": "1"},
        ) from None


async def _revoke_others(state: State, principal: Principal, reason: str) -> int:
    async with state.engine.begin() as conn:
        revoked = await accounts.revoke_other_tokens(
            conn, principal.user.id, principal.claims.jti, reason
        )
    for jti in revoked:
        state.hub.revoke_token(jti)
    return len(revoked)


@router.get("/account")
async def account(principal: Authenticated, state: State) -> AccountOut:
    user = principal.user
    async with state.engine.connect() as conn:
        current = await accounts.state(conn, user.tenant_id, user.id)
        left = await accounts.recovery_codes_left(conn, user.id)
    return AccountOut(
        username=user.username,
        must_change_password=current.must_change_password,
        mfa_enabled=current.mfa_enabled,
        mfa_required=current.mfa_required,
        mfa_enrolment_required=current.mfa_enrolment_required,
        recovery_codes_left=left if current.mfa_enabled else 0,
    )


@router.post(
    "/password",
    responses={403: {"description": WRONG_PASSWORD}, 429: {"description": "Rate limited"}},
)
async def change_password(
    body: PasswordChange, principal: Authenticated, request: Request, state: State
) -> PasswordChanged:
    """Change your own password: needs the current one; ends your other sessions."""
    await _verify_own_password(
        principal, body.current_password, request, state, purpose="password_change"
    )
    if body.new_password == body.current_password:
        raise invalid("new_password", "the new password must differ from the current one")
    new_hash = await _hash(state, body.new_password)
    async with state.engine.begin() as conn:
        await accounts.set_password(
            conn, principal.user.tenant_id, principal.user.id, new_hash, must_change=False
        )
    revoked = await _revoke_others(state, principal, "password_changed")
    await state.audit.record(
        _own_event(AuditType.AUTH_PASSWORD_CHANGED, principal, request, revoked=revoked)
    )
    return PasswordChanged(revoked_sessions=revoked)


@router.post(
    "/mfa/setup",
    responses={403: {"description": WRONG_PASSWORD}, 409: {"description": "Already on"}},
)
async def mfa_setup(
    body: PasswordOnly, principal: Authenticated, request: Request, state: State
) -> MfaSetup:
    """Start enrolment: a new secret, shown once (as text and QR code), confirmed by
    ``/mfa/enable``."""
    await _verify_own_password(principal, body.password, request, state, purpose="mfa_setup")
    secret = mfa.new_secret()
    async with state.engine.begin() as conn:
        if (await accounts.mfa(conn, principal.user.id)).enabled:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail="two-factor login is on already; turn it off first to start again",
            )
        await accounts.set_pending_secret(conn, principal.user.id, secret)
    uri = mfa.provisioning_uri(secret, principal.user.username)
    await state.audit.record(_own_event(AuditType.AUTH_MFA_ENROLLING, principal, request))
    return MfaSetup(secret=secret, otpauth_uri=uri, qr_data_url=mfa.qr_data_url(uri))


@router.post(
    "/mfa/enable",
    responses={409: {"description": "No setup started"}, 429: {"description": "Limited"}},
)
async def mfa_enable(
    body: CodeOnly, principal: Authenticated, request: Request, state: State
) -> RecoveryCodes:
    """Confirm enrolment with a code from the app; answers the recovery codes, once."""
    user = principal.user
    async with state.engine.connect() as conn:
        factor = await accounts.mfa(conn, user.id)
    if factor.enabled or factor.pending_secret is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="start the setup first")
    limiter = MfaLimiter(state.rate_limits)
    attempt = await _count_code(limiter, state, user, source_address(request), phase="enable")
    step = mfa.totp_step(factor.pending_secret, body.code.strip().replace(" ", ""))
    if step is None:
        await state.audit.record(
            _own_event(
                AuditType.AUTH_MFA_FAILED, principal, request, reason="wrong_code", phase="enable"
            )
        )
        raise invalid("code", "the code does not match; check the time on your device")
    with contextlib.suppress(LimiterUnavailable):
        await limiter.succeeded(attempt)
    codes = mfa.new_recovery_codes()
    async with state.engine.begin() as conn:
        done = await accounts.enable(
            conn,
            user.tenant_id,
            user.id,
            secret=factor.pending_secret,
            step=step,
            recovery_hashes=[mfa.recovery_code_hash(c) for c in codes],
        )
    if not done:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the setup changed; start again")
    # Sessions opened with the password alone end: from now on a login needs both.
    revoked = await _revoke_others(state, principal, "mfa_enabled")
    await state.audit.record(
        _own_event(AuditType.AUTH_MFA_ENABLED, principal, request, revoked=revoked)
    )
    return RecoveryCodes(recovery_codes=codes, revoked_sessions=revoked)


async def _own_code(
    principal: Principal, code: str, request: Request, state: State, phase: str
) -> None:
    user = principal.user
    async with state.engine.connect() as conn:
        factor = await accounts.mfa(conn, user.id)
    if not factor.enabled or factor.secret is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="two-factor login is off")
    limiter = MfaLimiter(state.rate_limits)
    attempt = await _count_code(limiter, state, user, source_address(request), phase=phase)
    method, ok, reason = await _check_code(state, user, factor.secret, code)
    if not ok:
        await state.audit.record(
            _own_event(
                AuditType.AUTH_MFA_FAILED,
                principal,
                request,
                method=method,
                reason=reason,
                phase=phase,
            )
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid code")
    with contextlib.suppress(LimiterUnavailable):
        await limiter.succeeded(attempt)


@router.post(
    "/mfa/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"description": "Wrong password or code"}, 409: {"description": "Required"}},
)
async def mfa_disable(
    body: PasswordAndCode, principal: Authenticated, request: Request, state: State
) -> Response:
    """Turn the second factor off: needs the password and a code (or a recovery code)."""
    async with state.engine.connect() as conn:
        required = (await accounts.policy(conn, principal.user.tenant_id)).mfa_required
    if required:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="your organisation requires two-factor login"
        )
    await _verify_own_password(principal, body.password, request, state, purpose="mfa_disable")
    await _own_code(principal, body.code, request, state, "disable")
    async with state.engine.begin() as conn:
        await accounts.disable(conn, principal.user.id)
    await state.audit.record(_own_event(AuditType.AUTH_MFA_DISABLED, principal, request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/mfa/recovery-codes",
    responses={403: {"description": "Wrong password or code"}, 409: {"description": "MFA off"}},
)
async def renew_recovery_codes(
    body: PasswordAndCode, principal: Authenticated, request: Request, state: State
) -> RecoveryCodes:
    """New recovery codes (the old ones stop working)."""
    await _verify_own_password(principal, body.password, request, state, purpose="mfa_codes")
    await _own_code(principal, body.code, request, state, "recovery_codes")
    codes = mfa.new_recovery_codes()
    async with state.engine.begin() as conn:
        await accounts.replace_recovery_codes(
            conn,
            principal.user.tenant_id,
            principal.user.id,
            [mfa.recovery_code_hash(c) for c in codes],
        )
    await state.audit.record(
        _own_event(AuditType.AUTH_MFA_RECOVERY_CODES_RENEWED, principal, request)
    )
    return RecoveryCodes(recovery_codes=codes)


# -- the tenant's security policy ------------------------------------------------------------


@router.get("/policy")
async def get_policy(principal: Authenticated, state: State) -> Policy:
    async with state.engine.connect() as conn:
        found = await accounts.policy(conn, principal.user.tenant_id)
    return Policy(mfa_required=found.mfa_required, audit_keep_content=found.audit_keep_content)


@router.put("/policy")
async def set_policy(body: PolicyPatch, principal: Admin, request: Request, state: State) -> Policy:
    """Admins: require MFA of every user; keep chat/clipboard text in the audit trail."""
    async with state.engine.begin() as conn:
        found = await accounts.set_policy(
            conn,
            principal.user.tenant_id,
            mfa_required=body.mfa_required,
            audit_keep_content=body.audit_keep_content,
        )
    await state.audit.record(
        _own_event(
            AuditType.TENANT_POLICY_SET,
            principal,
            request,
            mfa_required=found.mfa_required,
            audit_keep_content=found.audit_keep_content,
        )
    )
    return Policy(mfa_required=found.mfa_required, audit_keep_content=found.audit_keep_content)

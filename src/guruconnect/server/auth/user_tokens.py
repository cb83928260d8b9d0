"""Dashboard-plane access tokens: HS256 JWTs with ``aud = "dashboard"``.

The signature, expiry, audience and required claims are checked here, with no I/O; whether
the ``jti`` has been revoked is the caller's database question (``db.auth_tokens``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from guruconnect.server.auth.errors import InvalidToken

AUDIENCE = "dashboard"
ALGORITHM = "HS256"
_REQUIRED = ["exp", "iat", "jti", "sub", "tid", "aud"]


@dataclass(frozen=True)
class TokenClaims:
    jti: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: TokenClaims


def issue(
    secret: str,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    ttl: timedelta,
    now: datetime | None = None,
) -> IssuedToken:
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    claims = TokenClaims(
        jti=uuid.uuid4(),
        user_id=user_id,
        tenant_id=tenant_id,
        issued_at=issued_at,
        expires_at=issued_at + ttl,
    )
    payload = {
        "sub": str(user_id),
        "tid": str(tenant_id),
        "jti": str(claims.jti),
        "aud": AUDIENCE,
        "iat": int(issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
    }
    return IssuedToken(token=jwt.encode(payload, secret, algorithm=ALGORITHM), claims=claims)


def decode(secret: str, token: str) -> TokenClaims:
    """Verify ``token``; raise :class:`InvalidToken` with a client-safe reason otherwise."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # a fixed list: "none" and RS/HS confusion are refused
            audience=AUDIENCE,
            options={"require": _REQUIRED},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("token is not valid here") from None
    except jwt.PyJWTError:
        raise InvalidToken("invalid token") from None
    try:
        return TokenClaims(
            jti=uuid.UUID(str(payload["jti"])),
            user_id=uuid.UUID(str(payload["sub"])),
            tenant_id=uuid.UUID(str(payload["tid"])),
            issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (ValueError, TypeError, OverflowError):
        raise InvalidToken("invalid token") from None

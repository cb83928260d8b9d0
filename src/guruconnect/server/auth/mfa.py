"""The second factor: TOTP codes, recovery codes and the login's MFA challenge. No I/O.

- **TOTP** (RFC 6238, ``pyotp``): 30-second steps, 6 digits, one step of clock drift either
  way. :func:`totp_step` answers *which* step a code belongs to; the caller stores the last
  accepted step and accepts only a later one, so a code is never accepted twice (not even
  by two requests at once: the store is a conditional UPDATE).
- **Recovery codes**: ten random codes shown once, stored as SHA-256 (they carry 50 bits
  of entropy, so a slow hash adds nothing), each usable once.
- **The MFA challenge**: what the password step of a login yields when the user has MFA.
  A JWT whose audience is ``mfa`` (so no API accepts it as an access token), bound to the
  user and to the password hash it was issued against (a password change voids it), and
  short-lived. Only ``/api/auth/login/mfa`` and ``/api/auth/session/mfa`` take it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
import segno

from guruconnect.server.auth.errors import InvalidToken

CHALLENGE_AUDIENCE = "mfa"
CHALLENGE_TTL = timedelta(minutes=5)
ALGORITHM = "HS256"
#: Steps of clock drift accepted either side of now.
DRIFT_STEPS = 1
RECOVERY_CODES = 10
ISSUER = "GuruConnect"
_REQUIRED = ["exp", "iat", "jti", "sub", "tid", "aud", "pwd"]


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_data_url(uri: str) -> str:
    """The enrolment QR code as an SVG ``data:`` URL: drawn here, no script or CDN needed
    (the page's CSP allows ``img-src data:``)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=4, border=2))


def is_totp_code(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit()


def totp_step(secret: str, code: str, now: datetime | None = None) -> int | None:
    """The time step ``code`` is valid for (within the drift), or None."""
    if not is_totp_code(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now or datetime.now(UTC))
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every candidate is compared (constant work whichever matches).
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Codes like ``k7wq2-pxm4d``: 10 base32 characters (50 bits)."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read off paper safely
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise_recovery_code(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def recovery_code_hash(code: str) -> str:
    return hashlib.sha256(normalise_recovery_code(code).encode()).hexdigest()


def _password_binding(password_hash: str) -> str:
    return hashlib.sha256(b"mfa-challenge:" + password_hash.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Challenge:
    jti: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    expires_at: datetime
    password_binding: str

    def matches_password(self, password_hash: str) -> bool:
        return hmac.compare_digest(self.password_binding, _password_binding(password_hash))


def issue_challenge(
    secret: str,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    password_hash: str,
    now: datetime | None = None,
    ttl: timedelta = CHALLENGE_TTL,
) -> tuple[str, Challenge]:
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    challenge = Challenge(
        jti=uuid.uuid4(),
        user_id=user_id,
        tenant_id=tenant_id,
        expires_at=issued_at + ttl,
        password_binding=_password_binding(password_hash),
    )
    payload = {
        "sub": str(user_id),
        "tid": str(tenant_id),
        "jti": str(challenge.jti),
        "aud": CHALLENGE_AUDIENCE,
        "iat": int(issued_at.timestamp()),
        "exp": int(challenge.expires_at.timestamp()),
        "pwd": challenge.password_binding,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), challenge


def decode_challenge(secret: str, token: str) -> Challenge:
    """Verify an MFA challenge; :class:`InvalidToken` (client-safe message) otherwise."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=CHALLENGE_AUDIENCE,
            options={"require": _REQUIRED},
        )
        return Challenge(
            jti=uuid.UUID(str(payload["jti"])),
            user_id=uuid.UUID(str(payload["sub"])),
            tenant_id=uuid.UUID(str(payload["tid"])),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            password_binding=str(payload["pwd"]),
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the login took too long; log in again") from None
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
        raise InvalidToken("invalid MFA challenge; log in again") from None

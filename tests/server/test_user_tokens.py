"""The dashboard token format, attacked without a server: no I/O, literal tokens."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from guruconnect.server.auth import user_tokens
from guruconnect.server.auth.errors import InvalidToken

SECRET = "s" * 64  # long enough for HS512, so the refusal is about the algorithm
USER, TENANT = uuid.uuid4(), uuid.uuid4()


def _claims(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(USER),
        "tid": str(TENANT),
        "jti": str(uuid.uuid4()),
        "aud": "dashboard",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_issued_token_round_trips_with_every_claim() -> None:
    issued = user_tokens.issue(SECRET, user_id=USER, tenant_id=TENANT, ttl=timedelta(minutes=5))
    claims = user_tokens.decode(SECRET, issued.token)
    assert claims == issued.claims
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(payload) == {"sub", "tid", "jti", "aud", "iat", "exp"}
    assert payload["aud"] == "dashboard"
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    assert claims.expires_at - claims.issued_at == timedelta(minutes=5)


def test_each_token_has_its_own_jti() -> None:
    ttl = timedelta(minutes=5)
    first = user_tokens.issue(SECRET, user_id=USER, tenant_id=TENANT, ttl=ttl)
    second = user_tokens.issue(SECRET, user_id=USER, tenant_id=TENANT, ttl=ttl)
    assert first.claims.jti != second.claims.jti


def test_expired_token_is_refused() -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    issued = user_tokens.issue(
        SECRET, user_id=USER, tenant_id=TENANT, ttl=timedelta(hours=1), now=past
    )
    with pytest.raises(InvalidToken, match="expired"):
        user_tokens.decode(SECRET, issued.token)


@pytest.mark.parametrize("audience", ["viewer", "agent", "Dashboard", ""])
def test_token_of_another_audience_is_refused(audience: str) -> None:
    token = jwt.encode(_claims(aud=audience), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        user_tokens.decode(SECRET, token)


def test_alg_none_token_is_refused() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    with pytest.raises(InvalidToken):
        user_tokens.decode(SECRET, token)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused(algorithm: str) -> None:
    token = jwt.encode(_claims(), SECRET, algorithm=algorithm)
    with pytest.raises(InvalidToken):
        user_tokens.decode(SECRET, token)


def test_token_signed_with_another_secret_is_refused() -> None:
    token = jwt.encode(_claims(), "x" * 64, algorithm="HS256")
    with pytest.raises(InvalidToken):
        user_tokens.decode(SECRET, token)


def test_tampered_payload_is_refused() -> None:
    issued = user_tokens.issue(SECRET, user_id=USER, tenant_id=TENANT, ttl=timedelta(minutes=5))
    header, _payload, signature = issued.token.split(".")
    forged = f"{header}.{_b64(_claims(sub=str(uuid.uuid4())))}.{signature}"
    with pytest.raises(InvalidToken):
        user_tokens.decode(SECRET, forged)


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub", "tid", "aud"])
def test_every_claim_is_required(missing: str) -> None:
    token = jwt.encode(_claims(**{missing: None}), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        user_tokens.decode(SECRET, token)


@pytest.mark.parametrize(
    "claim",
    [{"sub": "not-a-uuid"}, {"tid": "42"}, {"jti": ["a"]}, {"iat": "yesterday"}],
)
def test_malformed_claims_are_refused(claim: dict[str, object]) -> None:
    token = jwt.encode(_claims(**claim), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        user_tokens.decode(SECRET, token)


@pytest.mark.parametrize("garbage", ["", "a.b.c", "not a token", "é" * 10, "a" * 10_000])
def test_garbage_is_an_invalid_token_not_a_crash(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        user_tokens.decode(SECRET, garbage)

"""Attacks on the second factor, over real HTTP (SQLite and PostgreSQL).

Each test breaks one rule: no usable token from the password alone, a TOTP code is taken
once, guesses at the code are limited and audited, a recovery code works once, a challenge
completes one login only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest

from guruconnect.server.auth import mfa
from guruconnect.server.auth.errors import InvalidToken
from tests.conftest import (
    PASSWORD,
    POSTGRES_URL,
    Database,
    LiveServer,
    make_settings,
    postgres_problem,
    require_service,
    run_sql,
)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per backend for the module (each test uses users of its own)."""
    if request.param == "sqlite":
        path = Path(tmp_path_factory.mktemp("mfa")) / "guruconnect.db"
        database = Database("sqlite", f"sqlite+aiosqlite:///{path}")
    else:
        require_service("PostgreSQL", postgres_problem())
        database = Database("postgres", POSTGRES_URL, f"t_{uuid.uuid4().hex[:16]}")
    live = LiveServer(make_settings(database), database).start()
    yield live
    live.stop()
    if database.schema:
        run_sql(POSTGRES_URL, f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE')


def user(server: LiveServer, **kw: Any) -> str:
    name = f"u{uuid.uuid4().hex[:10]}"
    server.create_user(name, **kw)
    return name


def rows(server: LiveServer, event_type: str, actor: str) -> list[Any]:
    return [e for e in server.events(event_type) if e.actor == actor]


@dataclass
class Enrolled:
    secret: str
    recovery_codes: list[str]
    #: The step of the code that confirmed the enrolment (it cannot be used again).
    step: int

    def code(self, step: int) -> str:
        return pyotp.TOTP(self.secret).generate_otp(step)

    def wrong_code(self) -> str:
        """A code valid for no step near now."""
        near = {self.code(self.step + k) for k in range(-3, 4)}
        return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)


def enrol(server: LiveServer, token: str) -> Enrolled:
    http = server.client(token=token)
    setup = http.post("/api/auth/mfa/setup", json={"password": PASSWORD})
    assert setup.status_code == 200, setup.text
    body = setup.json()
    assert body["qr_data_url"].startswith("data:image/svg+xml")
    secret = body["secret"]
    totp = pyotp.TOTP(secret)
    step = totp.timecode(datetime.now(UTC))
    enabled = http.post("/api/auth/mfa/enable", json={"code": totp.generate_otp(step)})
    assert enabled.status_code == 200, enabled.text
    codes = enabled.json()["recovery_codes"]
    assert len(codes) == mfa.RECOVERY_CODES
    return Enrolled(secret, codes, step)


def password_step(server: LiveServer, username: str) -> str:
    response = server.client().post(
        "/api/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True
    assert body["access_token"] is None
    token = body["mfa_token"]
    assert isinstance(token, str)
    return token


def second_step(server: LiveServer, challenge: str, code: str) -> tuple[int, dict[str, object]]:
    response = server.client().post(
        "/api/auth/login/mfa", json={"mfa_token": challenge, "code": code}
    )
    return response.status_code, response.json()


def test_password_alone_yields_no_usable_token(server: LiveServer) -> None:
    alice = user(server)
    first = server.login(alice)
    enrolled = enrol(server, first)

    challenge = password_step(server, alice)
    # The challenge is not an access token: as a Bearer header, as the session cookie.
    for path in ("/api/auth/me", "/api/machines", "/api/sessions", "/api/auth/account"):
        assert server.client(token=challenge).get(path).status_code == 401, path
    cookie = server.client()
    cookie.cookies.set("guruconnect_session", challenge)
    assert cookie.get("/api/auth/me").status_code == 401
    # The browser's password step sets no cookie and gives no CSRF token either.
    browser = server.client()
    answer = browser.post("/api/auth/session", json={"username": alice, "password": PASSWORD})
    assert answer.status_code == 200
    assert answer.json()["csrf_token"] is None
    assert answer.json()["mfa_required"] is True
    assert "guruconnect_session" not in answer.headers.get("set-cookie", "")
    assert browser.get("/api/auth/me").status_code == 401
    # An access token is no challenge either (audiences differ both ways).
    status, _ = second_step(server, first, "123456")
    assert status == 401

    status, body = second_step(server, challenge, enrolled.code(enrolled.step + 1))
    assert status == 200, body
    token = body["access_token"]
    assert isinstance(token, str)
    assert server.client(token=token).get("/api/auth/me").status_code == 200
    challenged = rows(server, "auth.mfa_challenged", alice)
    assert len(challenged) == 2  # the API's and the browser's password steps
    assert rows(server, "auth.login", alice)[-1].detail["mfa"] == "totp"


def test_a_totp_code_is_accepted_once(server: LiveServer) -> None:
    alice = user(server)
    enrolled = enrol(server, server.login(alice))
    # The code that confirmed the enrolment is spent already.
    status, _ = second_step(server, password_step(server, alice), enrolled.code(enrolled.step))
    assert status == 401
    code = enrolled.code(enrolled.step + 1)
    status, _ = second_step(server, password_step(server, alice), code)
    assert status == 200
    # Replayed in its window, with a fresh challenge: refused, and audited as a replay.
    status, body = second_step(server, password_step(server, alice), code)
    assert status == 401, body
    reasons = [e.detail["reason"] for e in rows(server, "auth.mfa_failed", alice)]
    assert reasons.count("replayed_code") == 2


def test_guessing_the_code_is_limited_and_audited(server: LiveServer) -> None:
    alice = user(server)
    enrolled = enrol(server, server.login(alice))
    challenge = password_step(server, alice)
    wrong = enrolled.wrong_code()
    for _ in range(5):
        status, _ = second_step(server, challenge, wrong)
        assert status == 401
    # Over the limit the right code is not even checked, with a fresh challenge too.
    response = server.client().post(
        "/api/auth/login/mfa",
        json={
            "mfa_token": password_step(server, alice),
            "code": enrolled.code(enrolled.step + 1),
        },
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert len(rows(server, "auth.mfa_failed", alice)) == 5
    [limited] = rows(server, "auth.mfa_rate_limited", alice)
    assert limited.detail["phase"] == "login"
    assert limited.actor == alice


def test_a_recovery_code_works_once(server: LiveServer) -> None:
    alice = user(server)
    enrolled = enrol(server, server.login(alice))
    code = enrolled.recovery_codes[0]
    status, body = second_step(server, password_step(server, alice), code.upper())
    assert status == 200, body
    status, _ = second_step(server, password_step(server, alice), code)
    assert status == 401
    [used] = rows(server, "auth.mfa_recovery_code_used", alice)
    assert used.detail["codes_left"] == mfa.RECOVERY_CODES - 1
    assert rows(server, "auth.mfa_failed", alice)[-1].detail["method"] == "recovery_code"


def test_a_challenge_completes_one_login_and_dies_with_the_password(server: LiveServer) -> None:
    alice = user(server)
    enrolled = enrol(server, server.login(alice))
    challenge = password_step(server, alice)
    assert second_step(server, challenge, enrolled.code(enrolled.step + 1))[0] == 200
    # The same challenge again, even with a valid code: refused.
    assert second_step(server, challenge, enrolled.recovery_codes[0])[0] == 401

    pending = password_step(server, alice)
    token = second_step(server, password_step(server, alice), enrolled.recovery_codes[1])[1]
    changed = server.client(token=str(token["access_token"])).post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long password"},
    )
    assert changed.status_code == 200, changed.text
    assert second_step(server, pending, enrolled.recovery_codes[2])[0] == 401


def test_tenant_policy_requires_mfa_before_anything_else(server: LiveServer) -> None:
    # A tenant of its own: the policy must not reach the other tests' users.
    tenant = f"t{uuid.uuid4().hex[:10]}"
    server.create_tenant(tenant)
    root, tech = user(server, is_admin=True, tenant=tenant), user(server, tenant=tenant)
    as_tech = server.client(token=server.login(tech))
    assert as_tech.put("/api/auth/policy", json={"mfa_required": True}).status_code == 403
    as_root = server.client(token=server.login(root))
    assert as_root.put("/api/auth/policy", json={"mfa_required": True}).status_code == 200
    login = server.client().post("/api/auth/login", json={"username": tech, "password": PASSWORD})
    assert login.json()["mfa_enrolment_required"] is True
    limited = server.client(token=login.json()["access_token"])
    refused = limited.get("/api/machines")
    assert refused.status_code == 403
    assert "two-factor" in refused.json()["detail"]
    assert limited.get("/api/auth/me").json()["mfa_enrolment_required"] is True
    enrol(server, login.json()["access_token"])
    assert limited.get("/api/machines").status_code == 200
    # Required: it cannot be turned off.
    off = limited.post("/api/auth/mfa/disable", json={"password": PASSWORD, "code": "000000"})
    assert off.status_code == 409


def test_challenge_tokens_are_checked_offline() -> None:
    token, _ = mfa.issue_challenge(
        "s" * 32,
        user_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        password_hash="hash-1",
        now=datetime.now(UTC) - timedelta(minutes=10),
    )
    with pytest.raises(InvalidToken, match="too long"):
        mfa.decode_challenge("s" * 32, token)
    token, _ = mfa.issue_challenge(
        "s" * 32, user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), password_hash="hash-1"
    )
    with pytest.raises(InvalidToken):
        mfa.decode_challenge("t" * 32, token)
    decoded = mfa.decode_challenge("s" * 32, token)
    assert decoded.matches_password("hash-1")
    assert not decoded.matches_password("hash-2")
    assert mfa.totp_step("JBSWY3DPEHPK3PXP", "12345") is None
    assert mfa.normalise_recovery_code(" AbCde-fGhij ") == "abcdefghij"

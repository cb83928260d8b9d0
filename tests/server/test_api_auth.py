"""Login, logout, revocation and token checks over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi import HTTPException

from guruconnect.server.auth import user_tokens
from tests.conftest import JWT_SECRET, PASSWORD, Database, LiveServer, make_settings

ME = "/api/auth/me"


def _reforge(token: str, secret: str = JWT_SECRET, **changes: Any) -> str:
    """The same claims as ``token``, changed and signed again with ``secret``."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, secret, algorithm="HS256")


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _status(server: LiveServer, token: str, path: str = ME) -> int:
    return server.client(token=token).get(path).status_code


def test_login_returns_a_bearer_token_that_works(server: LiveServer) -> None:
    user_id = server.create_user("alice")
    response = server.client().post(
        "/api/auth/login", json={"username": "Alice", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    expires_at = datetime.fromisoformat(body["expires_at"])
    expected = datetime.now(UTC) + timedelta(seconds=server.settings.access_token_ttl_seconds)
    assert abs((expires_at - expected).total_seconds()) < 30
    me = server.client(token=body["access_token"]).get(ME)
    assert me.status_code == 200
    assert me.json()["id"] == str(user_id)
    assert me.json()["username"] == "alice"
    assert me.json()["role"] == "technician"
    assert "sessions.control" in me.json()["permissions"]
    assert "agent_keys.manage" not in me.json()["permissions"]
    [event] = server.events("auth.login")
    assert event.source_address == "127.0.0.1"


def test_unknown_user_and_wrong_password_get_the_same_answer(server: LiveServer) -> None:
    server.create_user("alice")
    client = server.client()
    wrong = client.post("/api/auth/login", json={"username": "alice", "password": "nope" * 4})
    unknown = client.post("/api/auth/login", json={"username": "mallory", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid username or password"}
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"
    failures = server.events("auth.login_failed")
    assert [(e.actor, e.source_address) for e in failures] == [
        ("alice", "127.0.0.1"),
        ("mallory", "127.0.0.1"),
    ]
    reasons = [
        e.detail["reason"] if isinstance(e.detail, dict) else json.loads(e.detail)["reason"]
        for e in failures
    ]
    assert reasons == ["bad_password", "unknown_user"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic YWxpY2U6cHc=", "Token abc", "Bearer a.b.c", "Bearer  x"],
)
def test_requests_without_a_usable_token_get_401(server: LiveServer, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = server.client().get(ME, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_logout_revokes_the_token_everywhere(server: LiveServer) -> None:
    server.create_user("root", is_admin=True)
    token = server.login("root")
    other = server.login("root")
    client = server.client(token=token)
    assert client.get("/api/users").status_code == 200
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get(ME).status_code == 401
    assert client.get("/api/users").status_code == 401
    assert client.post("/api/auth/logout").status_code == 401
    # Only that token: the same user's other session lives on.
    assert _status(server, other) == 200
    [event] = server.events("auth.logout")
    assert event.actor == "root"
    assert event.source_address == "127.0.0.1"


def test_revocation_survives_a_restart(
    server_factory: Callable[..., LiveServer], database: Database
) -> None:
    first = server_factory()
    first.create_user("alice")
    revoked, kept = first.login("alice"), first.login("alice")
    assert first.client(token=revoked).post("/api/auth/logout").status_code == 204
    first.stop()
    second = server_factory()
    assert _status(second, revoked) == 401
    assert _status(second, kept) == 200


def test_admin_revokes_every_token_of_a_user(server: LiveServer) -> None:
    server.create_user("root", is_admin=True)
    tech_id = server.create_user("tech")
    admin_token = server.login("root")
    tokens = [server.login("tech"), server.login("tech")]
    response = server.client(token=admin_token).post(f"/api/auth/revoke-user/{tech_id}")
    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    assert [_status(server, t) for t in tokens] == [401, 401]
    assert _status(server, admin_token) == 200
    # The user can still log in afresh: revocation ends sessions, it does not lock out.
    assert _status(server, server.login("tech")) == 200
    [event] = server.events("auth.tokens_revoked")
    assert event.actor == "root"
    assert event.user_id == tech_id
    assert event.source_address == "127.0.0.1"


def test_technician_cannot_revoke_anyone(server: LiveServer) -> None:
    admin_id = server.create_user("root", is_admin=True)
    server.create_user("tech")
    admin_token = server.login("root")
    tech = server.client(token=server.login("tech"))
    assert tech.post(f"/api/auth/revoke-user/{admin_id}").status_code == 403
    assert _status(server, admin_token) == 200


def test_revoke_user_of_another_tenant_is_not_found(server: LiveServer) -> None:
    server.create_user("root", is_admin=True)
    server.create_tenant("acme")
    victim = server.create_user("acme-tech", tenant="acme")
    victim_token = server.login("acme-tech")
    response = server.client(token=server.login("root")).post(f"/api/auth/revoke-user/{victim}")
    assert response.status_code == 404
    assert _status(server, victim_token) == 200


def test_expired_token_is_refused(server: LiveServer) -> None:
    user_id = server.create_user("alice")
    token = server.login("alice")
    claims = jwt.decode(token, options={"verify_signature": False})
    expired = user_tokens.issue(
        JWT_SECRET,
        user_id=user_id,
        tenant_id=uuid.UUID(claims["tid"]),
        ttl=timedelta(minutes=1),
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    response = server.client(token=expired.token).get(ME)
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired"


def test_resigned_token_is_accepted_only_when_nothing_changed(server: LiveServer) -> None:
    """Re-signing the same claims with the server's own secret works (the control), so the
    refusals below are about the claim that changed, not about re-signing."""
    server.create_user("alice")
    token = server.login("alice")
    assert _status(server, _reforge(token)) == 200
    assert _status(server, _reforge(token, aud="viewer")) == 401
    assert _status(server, _reforge(token, aud="agent")) == 401
    assert _status(server, _reforge(token, secret="z" * 48)) == 401
    # A jti this server never issued is refused even with a valid signature.
    assert _status(server, _reforge(token, jti=str(uuid.uuid4()))) == 401


def test_alg_none_token_is_refused(server: LiveServer) -> None:
    server.create_user("alice")
    token = server.login("alice")
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert _status(server, unsigned) == 401


def test_token_moved_to_another_tenant_is_refused(server: LiveServer) -> None:
    server.create_user("root", is_admin=True)
    acme = server.create_tenant("acme")
    token = server.login("root")
    assert _status(server, _reforge(token, tid=str(acme)), "/api/users") == 401


def test_token_of_another_user_id_is_refused(server: LiveServer) -> None:
    server.create_user("alice")
    root_id = server.create_user("root", is_admin=True)
    token = server.login("alice")
    assert _status(server, _reforge(token, sub=str(root_id)), "/api/users") == 401


def test_login_rehashes_when_parameters_change(
    server_factory: Callable[..., LiveServer], database: Database
) -> None:
    weak = server_factory()
    weak.create_user("alice")
    [(before,)] = database.sql("SELECT password_hash FROM users WHERE username = 'alice'")
    assert "t=1" in before
    weak.stop()
    strong = server_factory(argon2_time_cost=2)
    strong.login("alice")
    [(after,)] = database.sql("SELECT password_hash FROM users WHERE username = 'alice'")
    assert after != before
    assert after.startswith("$argon2id$")
    assert "t=2" in after
    assert _status(strong, strong.login("alice")) == 200  # the new hash verifies


def test_security_headers_on_every_kind_of_response(database: Database) -> None:
    live = LiveServer(make_settings(database), database)

    @live.app.get("/api/test-boom")
    async def boom() -> None:
        raise RuntimeError("boom: internal detail that must not leak")

    @live.app.get("/api/test-http-error")
    async def http_error() -> None:
        raise HTTPException(418, "teapot")

    live.start()
    try:
        client = live.client()
        responses = {
            "ok": client.get("/health"),
            "unauthorized": client.get(ME),
            "not found": client.get("/nope"),
            "method": client.put("/health"),
            "invalid": client.post("/api/auth/login", json={"username": 5}),
            "http error": client.get("/api/test-http-error"),
            "crash": client.get("/api/test-boom"),
            "openapi": client.get("/openapi.json"),
        }
        assert [r.status_code for r in responses.values()] == [
            200,
            401,
            404,
            405,
            422,
            418,
            500,
            200,
        ]
        for name, response in responses.items():
            csp = response.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in csp, name
            assert "default-src 'self'" in csp, name
            assert response.headers.get("x-content-type-options") == "nosniff", name
            assert response.headers.get("referrer-policy") == "no-referrer", name
            assert response.headers.get("x-frame-options") == "DENY", name
        crash = responses["crash"]
        assert crash.json() == {"detail": "internal server error"}
        assert "boom" not in crash.text
        assert "Traceback" not in crash.text
        assert responses["unauthorized"].headers["cache-control"] == "no-store"
        # The server is still serving after the crash.
        assert client.get("/health").status_code == 200
    finally:
        live.stop()


def test_forwarded_headers_are_ignored_unless_the_proxy_is_trusted(
    server_factory: Callable[..., LiveServer],
) -> None:
    spoof = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
    untrusting = server_factory()
    untrusting.client().post(
        "/api/auth/login", json={"username": "ghost", "password": "x" * 12}, headers=spoof
    )
    [event] = untrusting.events("auth.login_failed")
    assert event.source_address == "127.0.0.1"
    untrusting.stop()

    trusting = server_factory(trusted_proxies=["127.0.0.1"])
    trusting.client().post(
        "/api/auth/login", json={"username": "ghost2", "password": "x" * 12}, headers=spoof
    )
    addresses = {e.actor: e.source_address for e in trusting.events("auth.login_failed")}
    assert addresses["ghost2"] == "203.0.113.9"


def test_openapi_document_is_served(server: LiveServer) -> None:
    spec = server.client().get("/openapi.json").json()
    assert {"/health", "/api/auth/login", "/api/auth/logout", "/api/users"} <= set(spec["paths"])
    # No interactive docs: they would load scripts from a CDN the CSP forbids.
    assert server.client().get("/docs").status_code == 404


# -- your own password ------------------------------------------------------------------------

NEW_PASSWORD = "a different long password"


def test_password_change_needs_the_current_password(server: LiveServer) -> None:
    server.create_user("alice")
    http = server.client(token=server.login("alice"))
    missing = http.post("/api/auth/password", json={"new_password": NEW_PASSWORD})
    assert missing.status_code == 422
    wrong = http.post(
        "/api/auth/password",
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "the current password is wrong"
    [failed] = server.events("auth.password_change_failed")
    assert failed.detail["reason"] == "bad_password"
    short = http.post(
        "/api/auth/password", json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert short.status_code == 422
    # Nothing changed: the old password still logs in, the new one does not.
    server.login("alice")
    refused = server.client().post(
        "/api/auth/login", json={"username": "alice", "password": NEW_PASSWORD}
    )
    assert refused.status_code == 401


def test_password_change_ends_the_other_sessions_only(server: LiveServer) -> None:
    server.create_user("alice")
    mine, other, browser = server.login("alice"), server.login("alice"), server.client()
    assert (
        browser.post(
            "/api/auth/session", json={"username": "alice", "password": PASSWORD}
        ).status_code
        == 200
    )
    changed = server.client(token=mine).post(
        "/api/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["revoked_sessions"] == 2
    assert _status(server, mine) == 200
    assert _status(server, other) == 401
    assert browser.get(ME).status_code == 401
    [event] = server.events("auth.password_changed")
    assert event.detail["revoked"] == 2
    server.login("alice", NEW_PASSWORD)
    old = server.client().post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert old.status_code == 401

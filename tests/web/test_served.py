"""What the server hands the browser, checked over HTTP (no browser): the pages, the
keyboard table (the agent's own), and the wire bundle, which must match the proto."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from guruconnect.protocol.keys import browser_table
from guruconnect.server.auth import browser_sessions
from guruconnect.server.web.routes import DASHBOARD_PATHS, WIRE_BUNDLE
from tests.conftest import IN_CI, PASSWORD, LiveServer

REPO = Path(__file__).resolve().parents[2]
PROTO = REPO / "proto" / "guruconnect.proto"


def test_every_dashboard_path_serves_the_shell_and_the_viewer_its_page(
    web_server: LiveServer,
) -> None:
    client = web_server.client()
    for path in DASHBOARD_PATHS:
        response = client.get(path)
        assert response.status_code == 200
        assert '<script type="module" src="/static/js/dashboard.js">' in response.text
        assert "<script>" not in response.text  # no inline script anywhere
    viewer = client.get(f"/viewer/{uuid.uuid4()}")
    assert viewer.status_code == 200
    assert "/static/js/viewer/main.js" in viewer.text
    assert client.get("/viewer/not-a-session").status_code == 422
    assert client.get("/", follow_redirects=False).headers["location"] == "/machines"
    assert client.get("/static/../pyproject.toml").status_code == 404


def test_the_keyboard_table_is_the_agents(web_server: LiveServer) -> None:
    served = web_server.client().get("/web/keys.json").json()
    assert served == browser_table()
    assert served["KeyA"] == [0x1E, False]
    assert served["ArrowUp"] == [0x48, True]


def test_the_wire_bundle_matches_the_proto(web_server: LiveServer) -> None:
    """A stale bundle (built before the proto changed) fails here: every field of every
    message must be in it, under protobufjs's camelCase name."""
    response = web_server.client().get("/static/build/wire.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    bundle = response.text
    assert bundle == WIRE_BUNDLE.read_text()
    fields = re.findall(r"^\s+(?:repeated\s+)?\w+\s+(\w+)\s*=\s*\d+;", PROTO.read_text(), re.M)
    assert len(fields) > 50
    camel = {re.sub(r"_(\w)", lambda m: m.group(1).upper(), name) for name in fields}
    missing = sorted(name for name in camel if name not in bundle)
    assert not missing, f"rebuild the bundle (make setup): {missing}"
    # No runtime code generation: the CSP forbids eval and new Function.
    assert "new Function" not in bundle
    assert not re.search(r"\beval\(", bundle)


def test_the_committed_bundle_is_what_the_sources_build(tmp_path: Path) -> None:
    """The bundle is committed (``make run`` and the wheel need no Node): rebuilding it from
    the proto and the npm lock file must give the same bytes."""
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / ".bin" / "pbjs").exists():
        if IN_CI:
            pytest.fail("node and node_modules (npm ci) are needed to check the bundle")
        pytest.skip("node or node_modules missing (make setup runs npm ci)")
    subprocess.run(
        [node, str(REPO / "scripts" / "build-web.mjs")],
        env={**os.environ, "GURUCONNECT_WEB_OUT": str(tmp_path)},
        check=True,
        timeout=120,
    )
    rebuilt = (tmp_path / "wire.js").read_bytes()
    assert rebuilt == WIRE_BUNDLE.read_bytes(), "the committed bundle is stale: run npm run build"


def test_csrf_token_is_bound_to_one_token_and_one_secret() -> None:
    secret = "s" * 40
    jti = uuid.uuid4()
    token = browser_sessions.csrf_token(secret, jti)
    assert browser_sessions.csrf_valid(secret, jti, token)
    assert not browser_sessions.csrf_valid(secret, uuid.uuid4(), token)
    assert not browser_sessions.csrf_valid("t" * 40, jti, token)
    assert not browser_sessions.csrf_valid(secret, jti, None)
    assert not browser_sessions.csrf_valid(secret, jti, "")
    assert not browser_sessions.csrf_valid(secret, jti, token[:-1])
    assert len(token) >= 43  # 256 bits


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_unsafe_method_needs_the_csrf_token(web_server: LiveServer, method: str) -> None:
    client = web_server.client()
    session = client.post("/api/auth/session", json={"username": "root", "password": PASSWORD})
    users = client.get("/api/users").json()
    tech = next(u for u in users if u["username"] == "tech")
    path = {
        "PUT": f"/api/users/{tech['id']}/permissions",
        "PATCH": f"/api/users/{tech['id']}",
        "DELETE": f"/api/users/{tech['id']}",
    }[method]
    body = {"PUT": {"permissions": []}, "PATCH": {"display_name": "x"}, "DELETE": None}[method]
    response = client.request(method, path, json=body)
    assert response.status_code == 403
    assert response.json() == {"detail": "missing or invalid CSRF token"}
    assert session.status_code == 200
    assert any(u["username"] == "tech" for u in client.get("/api/users").json())

"""Host validation (DNS rebinding) and the public URL's Origin check, attacked on both planes.

A rebinding page on ``evil.test`` that resolves to the server makes the browser send
``Host: evil.test`` and ``Origin: http://evil.test``: the Origin matches the Host, so only
the Host check stands between it and the server. Refused: 400 on HTTP, no upgrade on
WebSockets, and an audit row either way.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from typing import Any

import pytest

from guruconnect.client import AgentClient, Refused, ViewerClient
from guruconnect.protocol import CloseCode
from guruconnect.server.config import load_settings
from guruconnect.server.hosts import host_matches, host_name
from tests.conftest import JWT_SECRET, LiveServer
from tests.timing import async_wait_until, scaled

EVIL = "evil.test"


def address(server: LiveServer) -> tuple[str, int]:
    host, port = server.url.split("://")[1].split(":")
    return host, int(port)


async def raw_request(server: LiveServer, path: str, host: str, **headers: str) -> bytes:
    """One request with exactly these headers; returns the status line."""
    ip, port = address(server)
    reader, writer = await asyncio.open_connection(ip, port)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        async with asyncio.timeout(scaled(10)):
            return await reader.readuntil(b"\r\n")
    finally:
        writer.close()


def upgrade(origin: str | None = None) -> dict[str, str]:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    if origin is not None:
        headers["Origin"] = origin
    return headers


def status(line: bytes) -> int:
    return int(line.split()[1])


async def refusals(server: LiveServer, count: int) -> list[Any]:
    """The host refusals in the audit trail, once there are ``count`` (written after the
    answer went out)."""

    async def rows() -> list[Any] | None:
        found = await asyncio.to_thread(server.events, "request.host_refused")
        return found if len(found) >= count else None

    return await async_wait_until(rows, 10, f"{count} host refusals audited")


# -- HTTP -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rebinding_host_gets_400_on_http(server: LiveServer) -> None:
    _, port = address(server)
    for path in ("/health", "/login", "/api/auth/me"):
        assert status(await raw_request(server, path, f"{EVIL}:{port}")) == 400, path
    assert status(await raw_request(server, "/health", EVIL)) == 400
    assert status(await raw_request(server, "/health", "127.0.0.1.evil.test")) == 400
    rows = await refusals(server, 5)
    assert {row.detail["host"] for row in rows} == {f"{EVIL}:{port}", EVIL, "127.0.0.1.evil.test"}
    assert {row.detail["plane"] for row in rows} == {"http"}
    assert {row.source_address for row in rows} == {"127.0.0.1"}

    # The names a local install is reached by still work.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        assert status(await raw_request(server, "/health", host)) == 200, host


@pytest.mark.asyncio
async def test_public_url_names_the_host(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(
        public_url="https://support.example", allowed_hosts=["alt.example", "*.lan.example"]
    )
    _, port = address(server)
    accepted = ("support.example", "support.example:443", "alt.example", "pc.lan.example")
    for host in (*accepted, f"127.0.0.1:{port}"):
        assert status(await raw_request(server, "/health", host)) == 200, host
    # With a public URL, names are only the configured ones (localhost is a name too).
    for host in (EVIL, f"localhost:{port}", "lan.example", "support.example.evil.test"):
        assert status(await raw_request(server, "/health", host)) == 400, host


# -- WebSocket ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("plane", ["agent", "viewer"])
async def test_rebinding_host_gets_no_upgrade(server: LiveServer, plane: str) -> None:
    _, port = address(server)
    rebound = f"{EVIL}:{port}"
    # The page's Origin matches its Host: the Origin check alone would let it through.
    line = await raw_request(server, f"/ws/{plane}", rebound, **upgrade(f"http://{rebound}"))
    assert status(line) in (400, 403), line
    rows = await refusals(server, 1)
    assert [row.detail["plane"] for row in rows] == ["websocket"]
    assert rows[0].detail["path"] == f"/ws/{plane}"

    own = f"127.0.0.1:{port}"
    line = await raw_request(server, f"/ws/{plane}", own, **upgrade(f"http://{own}"))
    assert status(line) == 101, line


@pytest.mark.asyncio
async def test_public_url_is_the_origin_whatever_the_proxy_sends_as_host(
    server_factory: Callable[..., LiveServer],
) -> None:
    """nginx's default ``Host $proxy_host`` is the upstream's address: with a public URL
    the browser's origin is compared with that URL, not with the Host header."""
    from tests.relay.conftest import Relay

    public = "https://support.example"
    server = server_factory(public_url=public)
    admin_id = await asyncio.to_thread(server.create_user, "root", is_admin=True)
    relay = Relay(server, str(admin_id), "")
    api = await relay.api()
    try:
        key = (await api.issue_agent_key("pc"))["key"]
        assert (await api.issue_agent_key("pc2"))["server_url"] == public
        agent = await AgentClient.connect(server.url, key=key, origin=public)
        try:
            await agent.send_status()
            session_id = await relay.active_session(api, agent, agent.auth.machine_id)
            viewer = await relay.viewer(api, session_id, origin=public)
            assert viewer.state.session_id == session_id
            await viewer.close()
            # The request's own Host is no longer an origin of the server's.
            for origin in (server.url, "http://evil.test", "https://support.example.evil"):
                ticket = await api.viewer_ticket(session_id)
                conn = ViewerClient.connect(server.url, session_id, ticket, origin=origin)
                with pytest.raises(Refused) as caught:
                    await conn
                assert caught.value.code == CloseCode.FORBIDDEN_ORIGIN, origin
        finally:
            await agent.close()
    finally:
        await api.aclose()


# -- cookies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "secure"),
    [(None, False), ("https://support.example", True), ("http://intranet.example", False)],
)
def test_cookie_secure_follows_the_public_url(
    server_factory: Callable[..., LiveServer], public_url: str | None, secure: bool
) -> None:
    server = server_factory(public_url=public_url)
    server.create_user("root", is_admin=True)
    response = server.client().post(
        "/api/auth/session", json={"username": "root", "password": "correct horse battery staple"}
    )
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].lower()
    assert ("; secure" in cookie) is secure, cookie


# -- units ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Example.COM:8443", "example.com"),
        ("example.com", "example.com"),
        ("[::1]:3002", "[::1]"),
        ("[::1]", "[::1]"),
        ("127.0.0.1:1", "127.0.0.1"),
    ],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_wildcards_match_subdomains_only() -> None:
    assert host_matches("a.example.com", ["*.example.com"])
    assert host_matches("a.b.example.com", ["*.example.com"])
    assert not host_matches("example.com", ["*.example.com"])
    assert not host_matches("evilexample.com", ["*.example.com"])


def settings(**values: Any) -> Any:
    return load_settings(jwt_secret=JWT_SECRET, **values)


def test_trusted_hosts_from_settings() -> None:
    local = settings(host="0.0.0.0")  # noqa: S104
    assert {"localhost", "127.0.0.1", "[::1]"} <= set(local.trusted_hosts)
    assert "0.0.0.0" not in local.trusted_hosts  # noqa: S104
    public = settings(public_url="https://Support.Example:8443/", host="192.0.2.7")
    assert public.public_url == "https://support.example:8443"
    assert set(public.trusted_hosts) == {"support.example", "127.0.0.1", "[::1]", "192.0.2.7"}
    named = settings(host="relay.lan")
    assert "relay.lan" in named.trusted_hosts

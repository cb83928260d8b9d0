"""Forwarded-address headers are believed only from the configured proxies.

The server trusts 127.0.0.2. From 127.0.0.3, ``X-Forwarded-For`` and ``X-Real-IP`` change
neither the rate-limit key nor any logged address (audit rows, the access log, the relay's
refusals); from 127.0.0.2, ``X-Forwarded-For`` is the client's address for both.
``X-Real-IP`` likewise, when the trusted proxy sends it without ``X-Forwarded-For``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.asyncio.client import connect

from guruconnect.client.peers import ws_base
from tests.conftest import LiveServer

LOGIN = "/api/auth/login"
PROXY, STRANGER = "127.0.0.2", "127.0.0.3"


class AccessLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.clients: list[str | None] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "guruconnect.access" and isinstance(record.msg, dict):
            self.clients.append(record.msg.get("client"))


@pytest.fixture
def access_log() -> Iterator[AccessLines]:
    handler = AccessLines()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def behind_proxy(server_factory: Callable[..., LiveServer]) -> LiveServer:
    return server_factory(trusted_proxies=[PROXY], login_rate_limit="3/minute")


def _fail(server: LiveServer, source: str, username: str, **headers: str) -> int:
    client = server.client(source=source)
    body = {"username": username, "password": "wrong password!"}
    return client.post(LOGIN, json=body, headers=headers).status_code


def test_forwarded_headers_from_a_stranger_change_nothing(
    behind_proxy: LiveServer, access_log: AccessLines
) -> None:
    server = behind_proxy
    # Each attempt claims another address; the limit counts the real one all the same.
    codes = [
        _fail(
            server,
            STRANGER,
            f"user{i}",
            **{"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"203.0.113.{i}"},
        )
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    failed = server.events("auth.login_failed")
    assert [e.source_address for e in failed] == [STRANGER] * 3
    limited = server.events("auth.login_rate_limited")
    assert [e.source_address for e in limited] == [STRANGER]
    assert set(access_log.clients) == {STRANGER}

    # The relay's refusals log the real address too.
    async def agent_with_forged_address() -> None:
        async with connect(
            ws_base(server.url) + "/ws/agent",
            additional_headers={
                "Authorization": "Bearer cak_" + "x" * 43,
                "X-Forwarded-For": "198.51.100.77",
                "X-Real-IP": "203.0.113.77",
            },
            local_addr=(STRANGER, 0),
            proxy=None,
        ) as ws:
            await ws.wait_closed()

    asyncio.run(agent_with_forged_address())
    # The refusal is audited just after the close: wait for the row.
    deadline = time.monotonic() + 5
    while not (refused := server.events("agent.auth_failed")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.source_address for e in refused] == [STRANGER]


def test_forwarded_for_from_the_trusted_proxy_is_the_client(
    behind_proxy: LiveServer, access_log: AccessLines
) -> None:
    server = behind_proxy
    client_a, client_b = "198.51.100.10", "198.51.100.11"
    for i in range(3):
        assert _fail(server, PROXY, f"a{i}", **{"X-Forwarded-For": client_a}) == 401
    assert _fail(server, PROXY, "a-last", **{"X-Forwarded-For": client_a}) == 429
    # Another client behind the same proxy has its own count.
    assert _fail(server, PROXY, "b", **{"X-Forwarded-For": client_b}) == 401
    failed = server.events("auth.login_failed")
    assert [e.source_address for e in failed] == [client_a] * 3 + [client_b]
    assert {client_a, client_b} <= set(access_log.clients)
    # X-Real-IP from the proxy (nginx's default header) names the client too; garbage in
    # it is ignored.
    assert _fail(server, PROXY, "c", **{"X-Real-IP": "203.0.113.5"}) == 401
    assert server.events("auth.login_failed")[-1].source_address == "203.0.113.5"
    assert _fail(server, PROXY, "d", **{"X-Real-IP": "not-an-address"}) == 401
    assert server.events("auth.login_failed")[-1].source_address == PROXY


def test_access_log_records_are_structured(access_log: AccessLines) -> None:
    """The access-log handler above reads structlog's event dicts; if that changed, the
    tests above would pass vacuously."""
    from guruconnect.server.middleware import log

    log.info("request", client="x")
    assert access_log.clients == ["x"], json.dumps(access_log.clients)

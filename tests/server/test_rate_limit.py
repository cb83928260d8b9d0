"""Failed logins are limited per source address (10 a minute); a username attacked from
many addresses is slowed down, not locked (see tests/security/test_issue15_http.py).

Clients bind to different loopback addresses (127.0.0.x) to be different sources.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import PASSWORD, LiveServer

LOGIN = "/api/auth/login"
BAD = "wrong password!"


def _fail(client: httpx.Client, username: str, **headers: str) -> int:
    response = client.post(LOGIN, json={"username": username, "password": BAD}, headers=headers)
    return response.status_code


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limited_server(
    request: pytest.FixtureRequest, server_factory: Callable[..., LiveServer]
) -> LiveServer:
    if request.param == "memory":
        return server_factory()
    redis_url = request.getfixturevalue("redis_url")
    return server_factory(redis_url=redis_url, redis_prefix=f"gc-test-{uuid.uuid4().hex}")


def test_eleventh_failure_in_a_minute_gets_429(limited_server: LiveServer) -> None:
    server = limited_server
    server.create_user("alice")
    client = server.client(source="127.0.0.2")
    assert [_fail(client, "alice") for _ in range(10)] == [401] * 10
    response = client.post(LOGIN, json={"username": "alice", "password": BAD})
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    # Once limited, even the right password is refused: that is the point.
    right = client.post(LOGIN, json={"username": "alice", "password": PASSWORD})
    assert right.status_code == 429
    events = server.events("auth.login_rate_limited")
    assert len(events) == 2
    assert {e.source_address for e in events} == {"127.0.0.2"}


def test_failures_from_other_addresses_do_not_lock_a_username(limited_server: LiveServer) -> None:
    server = limited_server
    server.create_user("alice")
    server.create_user("bob")
    for octet in range(2, 13):  # eleven sources, one failure each: each within its limit
        assert _fail(server.client(source=f"127.0.0.{octet}"), "alice") == 401
    fresh = server.client(source="127.0.0.20")
    assert fresh.post(LOGIN, json={"username": "alice", "password": PASSWORD}).status_code == 200
    assert fresh.post(LOGIN, json={"username": "bob", "password": PASSWORD}).status_code == 200


def test_address_is_limited_across_usernames(limited_server: LiveServer) -> None:
    server = limited_server
    server.create_user("carol")
    attacker = server.client(source="127.0.0.30")
    assert [_fail(attacker, f"user{i}") for i in range(10)] == [401] * 10
    blocked = attacker.post(LOGIN, json={"username": "carol", "password": PASSWORD})
    assert blocked.status_code == 429
    # carol herself, from elsewhere, still gets in.
    other = server.client(source="127.0.0.31")
    assert other.post(LOGIN, json={"username": "carol", "password": PASSWORD}).status_code == 200


def test_successful_logins_are_not_counted(limited_server: LiveServer) -> None:
    server = limited_server
    server.create_user("dave")
    client = server.client(source="127.0.0.40")
    codes = [
        client.post(LOGIN, json={"username": "dave", "password": PASSWORD}).status_code
        for _ in range(12)
    ]
    assert codes == [200] * 12


def test_username_case_does_not_reset_the_count(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(login_user_rate_limit="10/hour")
    spellings = ["eve", "EVE", "Eve", " eve "]
    for i in range(10):
        assert _fail(server.client(source=f"127.0.1.{i + 1}"), spellings[i % 4]) == 401
    # Ten failures for one username however spelt: the next guesses are slowed down
    # (eight from one address stay within that address's own limit of ten).
    again = server.client(source="127.0.1.1")
    assert 429 in [_fail(again, "eVe") for _ in range(8)]


def test_spoofed_forwarded_for_does_not_reset_the_address_count(
    limited_server: LiveServer,
) -> None:
    server = limited_server
    client = server.client(source="127.0.0.50")
    for i in range(10):
        assert _fail(client, f"spoof{i}", **{"X-Forwarded-For": f"198.51.100.{i}"}) == 401
    assert _fail(client, "spoof-last", **{"X-Forwarded-For": "198.51.100.200"}) == 429


@pytest.mark.redis
def test_redis_shares_the_count_between_nodes(
    server_factory: Callable[..., LiveServer], redis_url: str
) -> None:
    prefix = f"gc-test-{uuid.uuid4().hex}"
    node_a = server_factory(redis_url=redis_url, redis_prefix=prefix)
    node_b = server_factory(redis_url=redis_url, redis_prefix=prefix)
    node_a.create_user("frank")
    a, b = node_a.client(source="127.0.0.60"), node_b.client(source="127.0.0.60")
    assert [_fail(a, "frank") for _ in range(5)] == [401] * 5
    assert [_fail(b, "frank") for _ in range(5)] == [401] * 5
    assert _fail(a, "frank") == 429
    assert _fail(b, "frank") == 429

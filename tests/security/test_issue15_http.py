"""Issue 15, the HTTP side: each test sends the attack an outside run found to work.

- parallel login guesses were all checked against the password (the limit counted after);
- unbounded parallel Argon2 checks (64 MiB each) took the server to gigabytes;
- any address could keep a user out (the per-username limit was a lockout);
- request bodies and request heads had no size limit;
- the SQLite database and its WAL files were world-readable under umask 022.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from guruconnect.server.state import AppState
from tests.conftest import PASSWORD, Database, LiveServer, make_settings
from tests.security.conftest import ServerErrors
from tests.timing import scaled

LOGIN = "/api/auth/login"
BAD = "wrong password!"
#: Argon2 slow enough (tens of ms) for parallel guesses to overlap, small enough for CI.
SLOW_ARGON2 = {"argon2_time_cost": 2, "argon2_memory_cost_kib": 8192, "argon2_parallelism": 1}


def _state(server: LiveServer) -> AppState:
    state = server.app.state.guruconnect
    assert isinstance(state, AppState)
    return state


async def _burst(
    url: str, attempts: list[tuple[str | None, dict[str, str]]], body: dict[str, str]
) -> list[httpx.Response]:
    """Send one login per (source address, headers) all at once, each on its own socket."""
    clients = [
        httpx.AsyncClient(
            base_url=url,
            transport=httpx.AsyncHTTPTransport(local_address=source) if source else None,
            timeout=scaled(30),
        )
        for source, _ in attempts
    ]
    try:
        # Connect first, so that the logins themselves leave together.
        await asyncio.gather(*(client.get("/health") for client in clients))
        return await asyncio.gather(
            *(
                client.post(LOGIN, json=body, headers=headers)
                for client, (_, headers) in zip(clients, attempts, strict=True)
            )
        )
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


# -- 1. the login limit against parallel guesses, and bounded password checks ----------------


def test_parallel_guesses_are_counted_before_the_password_is_checked(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(**SLOW_ARGON2)
    server.create_user("alice")
    responses = asyncio.run(
        _burst(server.url, [("127.0.0.2", {})] * 30, {"username": "alice", "password": BAD})
    )
    codes = [r.status_code for r in responses]
    checked = server.events("auth.login_failed")
    # Ten a minute from one address: at most ten reached Argon2, whatever the timing.
    assert codes.count(401) <= 10, codes
    assert len(checked) == codes.count(401)
    assert codes.count(429) == 30 - codes.count(401), codes
    assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in responses if r.status_code == 429)
    # The limit is the attacker's address's: the owner, elsewhere, logs in.
    owner = server.client(source="127.0.0.3")
    assert owner.post(LOGIN, json={"username": "alice", "password": PASSWORD}).status_code == 200


def test_password_checks_are_bounded_and_the_excess_is_refused_at_once(
    server_factory: Callable[..., LiveServer],
) -> None:
    # 16 MiB for checks of 8 MiB each: two at once.
    server = server_factory(**SLOW_ARGON2, password_check_memory_mib=16)
    server.create_user("bob")
    checks = _state(server).password_checks
    assert checks.slots == 2
    attempts: list[tuple[str | None, dict[str, str]]] = [(f"127.0.1.{i}", {}) for i in range(1, 31)]
    responses = asyncio.run(_burst(server.url, attempts, {"username": "bob", "password": BAD}))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {401, 503}, codes
    assert checks.peak <= 2, checks.peak
    assert len(server.events("auth.login_failed")) == codes.count(401)
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)


def test_a_login_finding_no_free_check_is_answered_503_not_queued(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(password_check_memory_mib=1)  # 1 MiB checks: one at a time
    server.create_user("carol")
    checks = _state(server).password_checks
    assert checks.slots == 1
    assert checks.try_acquire()  # a check that takes for ever
    try:
        client = server.client(source="127.0.0.4")
        client.timeout = httpx.Timeout(scaled(10))  # a queued login would hang until here
        for _ in range(12):  # more than the ten a minute: refused logins are not counted
            busy = client.post(LOGIN, json={"username": "carol", "password": PASSWORD})
            assert busy.status_code == 503, busy.text
            assert busy.headers["retry-after"] == "1"
    finally:
        checks.release()
    right = client.post(LOGIN, json={"username": "carol", "password": PASSWORD})
    assert right.status_code == 200, right.text


# -- 6. nobody can lock a user out ----------------------------------------------------------


def test_an_attacker_at_one_address_does_not_lock_the_user_out(
    server_factory: Callable[..., LiveServer],
) -> None:
    # Behind a trusted proxy, as deployed: the proxy's X-Forwarded-For is the address.
    server = server_factory(trusted_proxies="127.0.0.1")
    server.create_user("admin1", is_admin=True)
    proxy = server.client(source="127.0.0.1")
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    user = {"X-Forwarded-For": "198.51.100.7"}
    body = {"username": "admin1", "password": BAD}
    assert [proxy.post(LOGIN, json=body, headers=attacker).status_code for _ in range(10)] == [
        401
    ] * 10
    assert proxy.post(LOGIN, json=body, headers=attacker).status_code == 429
    right = {"username": "admin1", "password": PASSWORD}
    assert proxy.post(LOGIN, json=right, headers=attacker).status_code == 429
    # The real user, from elsewhere, is not affected.
    assert proxy.post(LOGIN, json=right, headers=user).status_code == 200
    limited = server.events("auth.login_rate_limited")
    assert {e.source_address for e in limited} == {"203.0.113.66"}


def test_guesses_from_many_addresses_are_slowed_down_and_audited_not_a_lockout(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(trusted_proxies="127.0.0.1", login_user_rate_limit="20/hour")
    server.create_user("admin2", is_admin=True)
    proxy = server.client(source="127.0.0.1")
    body = {"username": "admin2", "password": BAD}

    def guess(address: str) -> httpx.Response:
        return proxy.post(LOGIN, json=body, headers={"X-Forwarded-For": address})

    # A botnet: 20 addresses, one guess each, puts the username over its hourly limit.
    assert {guess(f"203.0.113.{i}").status_code for i in range(1, 21)} == {401}
    # From now on every address trying it waits 1, 2, 4, ... seconds between guesses:
    # the next guesses from one address are soon refused, and the wait grows.
    codes, waits = [], []
    for _ in range(8):
        response = guess("203.0.113.1")
        codes.append(response.status_code)
        if response.status_code == 429:
            waits.append(int(response.headers["retry-after"]))
    assert 429 in codes, codes
    assert codes.count(401) < 8
    throttled = server.events("auth.login_throttled")
    assert throttled
    assert throttled[0].detail["pattern"] == "many_failures_for_user"
    assert throttled[0].actor == "admin2"
    # ...but the owner, from an address that has not failed, gets in at once.
    right = {"username": "admin2", "password": PASSWORD}
    owner = proxy.post(LOGIN, json=right, headers={"X-Forwarded-For": "198.51.100.8"})
    assert owner.status_code == 200, owner.text


# -- 3. request bodies and heads are bounded -----------------------------------------------


@pytest.fixture
def lone_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server on SQLite (what is tested here does not touch storage)."""
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'gc.db'}")
    server = LiveServer(make_settings(database, max_body_bytes=64 * 1024), database).start()
    yield server
    server.stop()


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=scaled(10))


def _answer(sock: socket.socket) -> bytes:
    """Read the answer until the server closes the connection."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass  # closed with our unread bytes in its buffer: what came before still counts
    return b"".join(chunks)


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(
    lone_server: LiveServer,
) -> None:
    with _connect(lone_server) as sock:
        head = (
            "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {24 * 1024 * 1024}\r\n\r\n"
        )
        # Only the head and the body's first bytes: the answer comes without the rest.
        sock.sendall(head.encode() + b'{"username":"a","password":"b","x":[')
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"request body too large (limit 65536 bytes)" in answer


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    lone_server: LiveServer, server_errors: ServerErrors
) -> None:
    with _connect(lone_server) as sock:
        sock.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"{}," * 5000  # 15 000 bytes a chunk
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        sent = 0
        answer = b""
        sock.settimeout(scaled(0.05))
        # Stream the body slowly; the server must answer once it has passed 64 KiB,
        # long before the 24 MiB this client would send.
        while sent < 24 * 1024 * 1024:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: stop sending
                break
            sent += len(piece)
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if answer:
                break
        sock.settimeout(scaled(10))
        answer += _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < 1024 * 1024, sent
    assert not server_errors.lines()  # a refusal, not an error


def test_a_body_under_the_limit_still_works(lone_server: LiveServer) -> None:
    client = lone_server.client()
    response = client.post(LOGIN, json={"username": "nobody", "password": "x" * 1000})
    assert response.status_code == 401


def test_a_request_head_of_1_mib_gets_431(lone_server: LiveServer) -> None:
    with _connect(lone_server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        try:
            for _ in range(16):  # 1 MiB of one header, in pieces
                sock.sendall(b"a" * 65536)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # answered and closed before all of it was sent
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    # A normal request on a new connection is served.
    assert lone_server.client().get("/health").status_code == 200


# -- 4. the SQLite files are private ---------------------------------------------------------


def test_sqlite_database_and_wal_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "data"
    database = Database("sqlite", f"sqlite+aiosqlite:///{data / 'guruconnect.db'}")
    previous = os.umask(0o022)
    try:
        server = LiveServer(make_settings(database), database).start()
        try:
            server.create_user("dave")
            server.login("dave")  # writes: the WAL and its index exist
            files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
        finally:
            server.stop()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {"guruconnect.db", "guruconnect.db-wal", "guruconnect.db-shm"} <= set(files)
    assert all(mode == 0o600 for mode in files.values()), {k: oct(v) for k, v in files.items()}


def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    old = tmp_path / "old.db"
    old.touch()
    old.chmod(0o644)
    server = LiveServer(make_settings(database), database).start()
    server.stop()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600

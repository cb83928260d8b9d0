"""The agent plane (``/ws/agent``), attacked over real WebSockets on the live server.

Each test is an attack (or a misuse) that would succeed if the rule it names were removed:
another plane's credential as an agent key, a forged or revoked key, a key in the URL, a
silent or misbehaving agent, an agent reaching for a machine that is not its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from guruconnect.client import AgentClient, ApiClient, Connection, Refused
from guruconnect.client.peers import ws_base
from guruconnect.protocol import (
    AgentHello,
    AgentStatus,
    ConsentResponse,
    Heartbeat,
    KeyEvent,
    MouseButton,
    MouseEvent,
    SessionResponse,
    VideoFrame,
    payload,
)
from guruconnect.server.db.schema import agent_keys as agent_keys_table
from guruconnect.server.db.schema import machines as machines_table
from tests.relay.conftest import Relay, events_of, eventually
from tests.timing import scaled

pytestmark = pytest.mark.asyncio

KEY = re.compile(r"cak_[A-Za-z0-9_-]{43}")
GURUCONNECT = str(Path(sys.executable).parent / "guruconnect")
#: Bound on every single wait for the relay in this file (seconds).
WAIT = 5.0


# -- helpers ---------------------------------------------------------------------------------


@pytest_asyncio.fixture(autouse=True)
async def _closes_its_clients(
    server_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    """Close every client socket a test opened, also when it failed half-way (a socket left
    for the garbage collector fails a later test with a ResourceWarning). Torn down before
    the server (it depends on ``server_factory``)."""
    opened: list[Connection] = []
    original = Connection.__init__

    def tracked(self: Connection, *args: Any, **kw: Any) -> None:
        original(self, *args, **kw)
        opened.append(self)

    monkeypatch.setattr(Connection, "__init__", tracked)
    yield
    for conn in opened:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await conn.close()


@asynccontextmanager
async def rest(relay: Relay, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A raw REST client, for status codes the reference ApiClient turns into exceptions."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=relay.url, headers=headers, timeout=WAIT) as client:
        yield client


def unknown_key() -> str:
    """Well-formed (``cak_`` + 43 url-safe characters) but never issued."""
    return "cak_" + secrets.token_urlsafe(32)


async def refused_agent(relay: Relay, key: str | None, **connect: Any) -> Refused:
    """Connect an agent that must be refused; return the refusal."""
    try:
        async with asyncio.timeout(WAIT):
            agent = await AgentClient.connect(relay.url, key=key, **connect)
    except Refused as refusal:
        return refusal
    await agent.close()
    pytest.fail(f"the relay let an agent in with {key!r}: {agent.auth}")


async def raw_agent_socket(
    relay: Relay, *, query: str = "", headers: dict[str, str] | None = None
) -> Connection:
    ws = await Connection.open(ws_base(relay.url) + "/ws/agent" + query, headers=headers)
    return Connection(ws)


async def auth_failures(relay: Relay, reason: str, count: int = 1) -> list[Any]:
    """Wait for exactly ``count`` ``agent.auth_failed`` rows with this reason."""

    async def rows() -> list[Any]:
        found = await events_of(relay.server, "agent.auth_failed")
        return [row for row in found if row.detail.get("reason") == reason]

    found = await eventually(lambda: _at_least(rows, count), timeout=WAIT)
    assert len(found) == count, found
    for row in found:
        assert row.detail["close_code"] == 4001
        assert row.source_address == "127.0.0.1"
    return found


async def _at_least(rows: Any, count: int) -> list[Any]:
    found: list[Any] = await rows()
    return found if len(found) >= count else []


async def audit_rows(relay: Relay, event_type: str, **match: Any) -> list[Any]:
    """Wait for at least one row of ``event_type`` whose detail has all of ``match``."""

    async def rows() -> list[Any]:
        found = await events_of(relay.server, event_type)
        return [r for r in found if all(r.detail.get(k) == v for k, v in match.items())]

    result: list[Any] = await eventually(rows, timeout=WAIT)
    return result


async def db(relay: Relay, statement: Any) -> list[Any]:
    return await asyncio.to_thread(relay.server.database.sql, statement)


async def machine_count(relay: Relay) -> int:
    [(count,)] = await db(relay, select(func.count()).select_from(machines_table))
    return int(count)


async def machine_online(relay: Relay, api: ApiClient, machine_id: str) -> bool | None:
    """The machine's ``online`` as ``GET /api/machines`` shows it (None: not listed)."""
    async with rest(relay, api.token) as http:
        response = await http.get("/api/machines")
    assert response.status_code == 200, response.text
    for machine in response.json():
        if machine["id"] == machine_id:
            return bool(machine["online"])
    return None


async def received(conn: Connection, seconds: float) -> list[str]:
    """The kinds of message the relay sends ``conn`` during ``seconds`` (its heartbeats are
    answered, not listed); raises :class:`Refused` if the relay closes it meanwhile.

    Bounded by a deadline of its own: ``Connection.expect(kind, timeout)`` never times out
    while heartbeats arrive more often than ``timeout`` (see
    test_reference_client_expect_honours_its_timeout_under_heartbeats).
    """
    kinds: list[str] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(remaining):
                envelope = await conn.recv()
        except TimeoutError:
            break
        kinds.append(payload(envelope)[0])
    return kinds


async def stays_open(conn: Connection, seconds: float) -> None:
    """The relay keeps ``conn`` open (answering its heartbeats) for ``seconds``."""
    await received(conn, seconds)
    assert conn.close_code is None


async def round_trip(agent: AgentClient) -> None:
    """Everything the agent sent before this has been handled by the relay."""
    answering = agent.answer_heartbeats
    agent.answer_heartbeats = False
    try:
        marker = secrets.randbelow(2**40) + 1
        await agent.send(Heartbeat(sent_at_ms=marker))
        async with asyncio.timeout(WAIT):
            while True:
                beat = await agent.expect("heartbeat", timeout=WAIT)
                if beat.reply and beat.sent_at_ms == marker:
                    return
    finally:
        agent.answer_heartbeats = answering


def assert_not_leaked(secret: str, row: Any) -> None:
    """An audit row never carries the credential that was presented."""
    text = json.dumps(row.detail) + str(row.actor or "")
    assert secret not in text


# -- another plane's credential, or none ----------------------------------------------------


async def test_user_jwt_is_not_an_agent_key(relay: Relay, admin_api: ApiClient) -> None:
    """The v1 flaw: v1 accepted a dashboard user's JWT as an agent key, so anyone holding
    a user token could register as an agent. A JWT on the agent plane, in the Authorization
    header or in AgentHello.agent_key, is refused (4001) and audited as a user token on the
    agent plane, with the source address."""
    token = admin_api.token
    assert token.startswith("eyJ")

    for in_header in (True, False):
        refusal = await refused_agent(relay, token, key_in_header=in_header)
        assert refusal.code == 4001, refusal
        assert "user token" in refusal.reason

    rows = await auth_failures(relay, "user_token_on_agent_plane", count=2)
    for row in rows:
        assert_not_leaked(token, row)
    assert await machine_count(relay) == 0
    # The token itself is untouched: still good on its own plane.
    async with rest(relay, token) as http:
        assert (await http.get("/api/machines")).status_code == 200


async def test_viewer_ticket_is_not_an_agent_credential(relay: Relay, admin_api: ApiClient) -> None:
    agent, machine_id, _ = await relay.online_agent(admin_api)
    session_id = await relay.active_session(admin_api, agent, machine_id)
    ticket = await admin_api.viewer_ticket(session_id)
    assert ticket.startswith("cvt_")

    for in_header in (True, False):
        refusal = await refused_agent(relay, ticket, key_in_header=in_header)
        assert refusal.code == 4001, refusal
        assert "viewer ticket" in refusal.reason

    for row in await auth_failures(relay, "viewer_ticket_on_agent_plane", count=2):
        assert_not_leaked(ticket, row)
    assert await machine_count(relay) == 1
    await stays_open(agent, 0.2)  # the real agent of that machine is not disturbed
    await agent.close()


async def test_unknown_and_malformed_keys_are_refused(relay: Relay, admin_api: ApiClient) -> None:
    issued = await admin_api.issue_agent_key("real")
    forged = unknown_key()
    # Same lookup prefix as a real key, wrong secret: the hash decides, not the prefix.
    lookalike = issued["key"][:16] + secrets.token_urlsafe(32)[:31]
    assert KEY.fullmatch(forged)
    assert KEY.fullmatch(lookalike)
    for key in (forged, lookalike):
        for in_header in (True, False):
            refusal = await refused_agent(relay, key, key_in_header=in_header)
            assert refusal.code == 4001, refusal
            assert "unknown agent key" in refusal.reason
    for row in await auth_failures(relay, "unknown_key", count=4):
        assert_not_leaked(forged, row)
        assert_not_leaked(lookalike, row)

    malformed = ["cak_short", issued["key"] + "x", "cak_" + "!" * 43, "not-a-key-at-all"]
    for key in malformed:
        refusal = await refused_agent(relay, key, key_in_header=False)
        assert refusal.code == 4001, refusal
    await auth_failures(relay, "malformed_key", count=len(malformed))
    assert await machine_count(relay) == 0


async def test_no_credential_times_out(relay_factory: Any) -> None:
    relay = await asyncio.to_thread(relay_factory, auth_timeout_seconds=0.5)
    silent = await raw_agent_socket(relay)  # no header, and it never says a word
    started = time.monotonic()
    code, reason = await silent.wait_closed(timeout=WAIT)
    elapsed = time.monotonic() - started
    assert code == 4001, (code, reason)
    assert 0.3 < elapsed < scaled(2.0), elapsed
    await auth_failures(relay, "auth_timeout")

    # A hello that carries no credential at all is refused as well, at once.
    empty = await raw_agent_socket(relay)
    await empty.send(AgentHello(hostname="no-key", agent_version="0.1.0"))
    code, reason = await empty.wait_closed(timeout=WAIT)
    assert code == 4001, (code, reason)
    await auth_failures(relay, "missing_credential")
    assert await machine_count(relay) == 0


async def test_first_message_must_be_agent_hello(relay: Relay) -> None:
    # Messages an authenticated agent may send, but not in place of proving who it is.
    for first in (
        AgentStatus(hostname="pc", os="Linux"),
        VideoFrame(keyframe=True, data=b"\x00" * 64),
    ):
        conn = await raw_agent_socket(relay)
        await conn.send(first)
        code, reason = await conn.wait_closed(timeout=WAIT)
        assert code == 4001, (code, reason)
        assert "AgentHello" in reason
    await auth_failures(relay, "no_hello", count=2)
    assert await machine_count(relay) == 0


async def test_key_in_query_string_is_refused(relay: Relay, admin_api: ApiClient) -> None:
    """Query strings end up in proxy logs: a key there is refused, even a valid one, and
    even when the same key is also presented properly."""
    key = (await admin_api.issue_agent_key("pc"))["key"]

    started = time.monotonic()
    in_url = await raw_agent_socket(relay, query=f"?key={key}")
    code, reason = await in_url.wait_closed(timeout=WAIT)
    assert code == 4001, (code, reason)
    assert "URL" in reason
    assert time.monotonic() - started < 2.0  # refused at once, not by the auth timeout

    both = await raw_agent_socket(
        relay, query=f"?key={key}", headers={"Authorization": f"Bearer {key}"}
    )
    code, reason = await both.wait_closed(timeout=WAIT)
    assert code == 4001, (code, reason)

    for row in await auth_failures(relay, "credential_in_url", count=2):
        assert_not_leaked(key, row)
    assert await machine_count(relay) == 0
    # The same key, presented properly, works.
    agent = await AgentClient.connect(relay.url, key=key)
    assert agent.auth.ok
    await agent.close()


# -- issuing, listing, permissions ----------------------------------------------------------


async def test_issued_key_is_shown_once_and_stored_hashed(
    relay: Relay, admin_api: ApiClient
) -> None:
    async with rest(relay, admin_api.token) as http:
        response = await http.post("/api/agent-keys", json={"label": "front desk"})
        assert response.status_code == 201, response.text
        issued = response.json()
        key = issued["key"]
        assert KEY.fullmatch(key), key
        assert len(base64.urlsafe_b64decode(key.removeprefix("cak_") + "=")) >= 32
        assert key.startswith(issued["prefix"])
        assert len(issued["prefix"]) < len(key) // 2
        second = (await http.post("/api/agent-keys", json={"label": "other"})).json()
        assert second["key"] != key
        assert second["prefix"] != issued["prefix"]

        listed = await http.get("/api/agent-keys")
        assert listed.status_code == 200
    [stored] = await db(
        relay,
        select(agent_keys_table.c.key_hash).where(agent_keys_table.c.id == uuid.UUID(issued["id"])),
    )
    key_hash = stored.key_hash
    assert key_hash != key
    assert key not in key_hash
    assert key.removeprefix("cak_")[12:] not in key_hash

    assert key not in listed.text
    assert second["key"] not in listed.text
    assert key_hash not in listed.text
    assert hashlib.sha256(key.encode()).hexdigest() not in listed.text
    [entry] = [k for k in listed.json() if k["id"] == issued["id"]]
    assert entry["prefix"] == issued["prefix"]
    assert not {"key", "key_hash", "hash"} & set(entry)

    [row] = await audit_rows(relay, "agent_key.issued", key_id=issued["id"])
    assert_not_leaked(key, row)
    assert row.actor == "root"


async def test_agent_keys_need_the_manage_permission(relay: Relay, admin_api: ApiClient) -> None:
    admins_key = await admin_api.issue_agent_key("admin's")
    async with await relay.api("tech") as tech:
        token = tech.token
    async with rest(relay, token) as http:
        assert (await http.post("/api/agent-keys", json={"label": "x"})).status_code == 403
        assert (await http.get("/api/agent-keys")).status_code == 403
        assert (await http.delete(f"/api/agent-keys/{admins_key['id']}")).status_code == 403
    # The refused revocation changed nothing.
    agent = await AgentClient.connect(relay.url, key=admins_key["key"])
    await agent.close()

    async with rest(relay, admin_api.token) as http:
        granted = await http.put(
            f"/api/users/{relay.tech_id}/permissions", json={"permissions": ["agent_keys.manage"]}
        )
        assert granted.status_code == 200, granted.text

    async with rest(relay, token) as http:
        created = await http.post("/api/agent-keys", json={"label": "tech's"})
        assert created.status_code == 201, created.text
        listed = await http.get("/api/agent-keys")
        assert listed.status_code == 200
        assert {created.json()["id"], admins_key["id"]} <= {k["id"] for k in listed.json()}
        revoked = await http.delete(f"/api/agent-keys/{created.json()['id']}")
        assert revoked.status_code == 204


async def test_other_tenants_admin_cannot_revoke(relay: Relay, admin_api: ApiClient) -> None:
    agent, machine_id, key = await relay.online_agent(admin_api)
    await asyncio.to_thread(relay.server.create_tenant, "acme")
    await asyncio.to_thread(relay.server.create_user, "acme-root", is_admin=True, tenant="acme")
    async with await relay.api("acme-root") as other:
        token = other.token
    async with rest(relay, token) as http:
        assert (await http.delete(f"/api/agent-keys/{key['id']}")).status_code == 404
        # Indistinguishable from a key that does not exist.
        assert (await http.delete(f"/api/agent-keys/{uuid.uuid4()}")).status_code == 404
        listed = await http.get("/api/agent-keys")
        assert listed.status_code == 200
        assert key["id"] not in listed.text
        assert key["prefix"] not in listed.text
        assert machine_id not in (await http.get("/api/machines")).text
    await stays_open(agent, 0.3)
    [row] = await db(
        relay,
        select(agent_keys_table.c.revoked_at).where(agent_keys_table.c.id == uuid.UUID(key["id"])),
    )
    assert row.revoked_at is None
    assert await events_of(relay.server, "agent_key.revoked") == []
    await agent.close()


# -- revocation, replacement, reattach -------------------------------------------------------


async def test_revoking_a_key_closes_its_agent_at_once(relay: Relay, admin_api: ApiClient) -> None:
    agent, machine_id, key = await relay.online_agent(admin_api, label="victim")
    bystander, _, _ = await relay.online_agent(admin_api, label="bystander")

    async with rest(relay, admin_api.token) as http:
        started = time.monotonic()
        response = await http.delete(f"/api/agent-keys/{key['id']}")
        code, reason = await agent.wait_closed(timeout=WAIT)
        elapsed = time.monotonic() - started
    assert response.status_code == 204
    assert code == 4010, (code, reason)
    assert elapsed < scaled(2.0), elapsed  # at once: no heartbeat period (15 s) involved

    [row] = await audit_rows(relay, "agent_key.revoked", key_id=key["id"])
    assert row.detail["closed_socket"] is True
    assert row.actor == "root"
    assert str(row.machine_id) == machine_id

    for in_header in (True, False):
        refusal = await refused_agent(relay, key["key"], key_in_header=in_header)
        assert refusal.code == 4001, refusal
        assert "revoked" in refusal.reason
    await auth_failures(relay, "revoked_key", count=2)

    async def offline() -> bool:
        return await machine_online(relay, admin_api, machine_id) is False

    await eventually(offline, timeout=WAIT)
    await stays_open(bystander, 0.2)  # only that key's agent was closed
    await bystander.close()


async def test_newer_socket_with_the_same_key_replaces_the_older(
    relay: Relay, admin_api: ApiClient
) -> None:
    first, machine_id, key = await relay.online_agent(admin_api)
    second = await AgentClient.connect(relay.url, key=key["key"], hostname="elsewhere")
    assert second.auth.machine_id == machine_id

    code, reason = await first.wait_closed(timeout=WAIT)
    assert code == 4009, (code, reason)
    assert await audit_rows(relay, "agent.replaced")
    # Once the relay has handled the older socket's end, the machine is still online,
    # in the hub and in the database, and the older socket's end is logged as a
    # replacement rather than a disconnection.
    [gone] = await audit_rows(relay, "agent.disconnected", close_code=4009)
    [db_row] = await db(relay, select(machines_table.c.online))
    seen = {
        "api_online": await machine_online(relay, admin_api, machine_id),
        "db_online": db_row.online,
        "audited_as_replaced": gone.detail["replaced"],
        "machines": await machine_count(relay),
    }
    expected = {"api_online": True, "db_online": True, "audited_as_replaced": True, "machines": 1}
    assert seen == expected

    # The newer socket is the one the relay talks to.
    session = await admin_api.request_session(machine_id)
    request = await second.expect("session_request", timeout=WAIT)
    assert request.session_id == session["id"]
    await second.close()


async def test_replacement_keeps_the_machines_pending_session(
    relay: Relay, admin_api: ApiClient
) -> None:
    """An agent that reconnects (same key, newer socket) while a session waits for its
    user's consent gets that session offered again: a replacement is not a departure."""
    first, machine_id, key = await relay.online_agent(admin_api)
    session = await admin_api.request_session(machine_id)
    await first.expect("session_request", timeout=WAIT)
    await first.expect("consent_request", timeout=WAIT)

    second = await AgentClient.connect(relay.url, key=key["key"])
    code, reason = await first.wait_closed(timeout=WAIT)
    assert code == 4009, (code, reason)
    kinds = await received(second, 1.0)
    async with rest(relay, admin_api.token) as http:
        state = (await http.get(f"/api/sessions/{session['id']}")).json()
    assert (state["state"], state["end_reason"], kinds[:2]) == (
        "awaiting_consent",
        None,
        ["session_request", "consent_request"],
    )
    await second.answer_consent(session["id"], True)
    await second.expect("keyframe_request", timeout=WAIT)
    await second.close()


async def test_reattach_is_bound_to_the_key(relay: Relay, admin_api: ApiClient) -> None:
    key_a = (await admin_api.issue_agent_key())["key"]
    key_b = (await admin_api.issue_agent_key())["key"]

    agent = await AgentClient.connect(relay.url, key=key_a, hostname="alpha")
    machine_a = agent.auth.machine_id
    uuid.UUID(machine_a)
    await agent.close()
    # Back with the same key, claiming another hostname, by header or by hello.
    for hostname, in_header in (("beta", True), ("gamma", False)):
        agent = await AgentClient.connect(
            relay.url, key=key_a, hostname=hostname, key_in_header=in_header
        )
        assert agent.auth.machine_id == machine_a
        await agent.close()

    # Another key claiming the first machine's hostname gets a machine of its own.
    other = await AgentClient.connect(relay.url, key=key_b, hostname="alpha")
    assert other.auth.machine_id != machine_a
    await other.close()
    assert await machine_count(relay) == 2


async def test_an_agent_cannot_reach_another_machines_session(
    relay: Relay, admin_api: ApiClient
) -> None:
    """There is no field by which an agent picks a machine; nor can it answer, refuse or
    feed a session of a machine that is not its key's by naming the session id."""
    agent_a, machine_a, _ = await relay.online_agent(admin_api, label="a")
    agent_b, machine_b, _ = await relay.online_agent(admin_api, label="b")
    assert machine_a != machine_b

    session = await admin_api.request_session(machine_a)
    session_id = session["id"]
    await agent_a.expect("session_request", timeout=WAIT)
    await agent_a.expect("consent_request", timeout=WAIT)

    # B grants consent for A's session, then refuses it: neither counts.
    await agent_b.send(ConsentResponse(session_id=session_id, granted=True))
    await agent_b.send(SessionResponse(session_id=session_id, accepted=False))
    await round_trip(agent_b)
    async with rest(relay, admin_api.token) as http:
        state = (await http.get(f"/api/sessions/{session_id}")).json()["state"]
    assert state == "awaiting_consent"
    assert "session_request" not in await received(agent_b, 0.3)

    await agent_a.answer_consent(session_id, True)
    await agent_a.expect("keyframe_request", timeout=WAIT)
    viewer = await relay.viewer(admin_api, session_id)
    await agent_a.expect("keyframe_request", timeout=WAIT)

    # B's frame, labelled with A's session, goes nowhere; A's does.
    await agent_b.send(VideoFrame(session_id=session_id, keyframe=True, data=b"forged"))
    await round_trip(agent_b)
    await agent_a.send(VideoFrame(session_id=session_id, keyframe=True, data=b"genuine"))
    frame = await viewer.expect("video_frame", timeout=WAIT)
    assert frame.data == b"genuine"

    for conn in (viewer, agent_a, agent_b):
        await conn.close()


async def test_machine_online_follows_the_agent_socket(relay: Relay, admin_api: ApiClient) -> None:
    key = (await admin_api.issue_agent_key("desk"))["key"]
    agent = await AgentClient.connect(relay.url, key=key)
    machine_id = agent.auth.machine_id

    async def online() -> bool:
        return await machine_online(relay, admin_api, machine_id) is True

    async def offline() -> bool:
        return await machine_online(relay, admin_api, machine_id) is False

    await eventually(online, timeout=WAIT)
    await agent.close()
    await eventually(offline, timeout=WAIT)
    agent = await AgentClient.connect(relay.url, key=key)
    await eventually(online, timeout=WAIT)
    await agent.close()
    await eventually(offline, timeout=WAIT)


# -- the CLI ------------------------------------------------------------------------------------


def cli_env(relay: Relay) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"JWT_SECRET", "JWT_SECRET_FILE", "DATABASE_URL"}
        and not name.startswith("GURUCONNECT_")
    }
    database = relay.server.database
    env["DATABASE_URL"] = database.url
    if database.schema:
        env["GURUCONNECT_DATABASE_SCHEMA"] = database.schema
    return env


async def test_cli_issued_key_authenticates(
    relay: Relay, admin_api: ApiClient, tmp_path: Path
) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [GURUCONNECT, "admin", "issue-agent-key", "--machine", "kiosk-7"],
        env=cli_env(relay),
        cwd=tmp_path,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    key = lines[0]
    assert result.stdout == key + "\n"
    assert KEY.fullmatch(key), key
    assert key not in result.stderr

    agent = await AgentClient.connect(relay.url, key=key)
    async with rest(relay, admin_api.token) as http:
        machines = (await http.get("/api/machines")).json()
    [machine] = [m for m in machines if m["id"] == agent.auth.machine_id]
    assert machine["name"] == "kiosk-7"
    [row] = await events_of(relay.server, "agent_key.issued")
    assert row.actor == "cli"
    assert_not_leaked(key, row)
    await agent.close()


# -- liveness and protocol discipline -------------------------------------------------------


async def test_silent_agent_is_closed_by_heartbeat_timeout(relay_factory: Any) -> None:
    relay = await asyncio.to_thread(relay_factory, heartbeat_interval_seconds=0.3)
    stop = asyncio.Event()

    async def answering(conn: Connection) -> None:
        while not stop.is_set():
            await received(conn, 0.05)

    async with await relay.api() as api:
        talker, _, _ = await relay.online_agent(api, label="talker")
        # The talker answers from now on: setting up the second agent can take longer than
        # two periods on a loaded machine.
        talking = asyncio.create_task(answering(talker))
        silent, silent_machine, _ = await relay.online_agent(api, label="silent")
    silent.answer_heartbeats = False
    started = time.monotonic()

    code, reason = await silent.wait_closed(timeout=WAIT)
    elapsed = time.monotonic() - started
    stop.set()
    await talking
    assert code == 4408, (code, reason)
    assert 0.3 < elapsed < scaled(1.1), elapsed  # two heartbeat periods, plus slack
    await stays_open(talker, 1.2)  # the agent that answers outlives four more periods

    [row] = await audit_rows(relay, "agent.disconnected", close_code=4408)
    assert str(row.machine_id) == silent_machine
    await talker.close()


async def test_reference_client_expect_honours_its_timeout_under_heartbeats(
    relay_factory: Any,
) -> None:
    """``Connection.expect(kind, timeout)`` must give up after ``timeout`` even while the
    relay's heartbeats keep arriving (the agent answers them inside ``recv``)."""
    relay = await asyncio.to_thread(relay_factory, heartbeat_interval_seconds=0.15)
    async with await relay.api() as api:
        agent, _, _ = await relay.online_agent(api)
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # ours (the outer bound) or expect's own
        async with asyncio.timeout(scaled(2.0)):
            await agent.expect("session_request", timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < scaled(1.2), f"expect(timeout=0.5) was still waiting after {elapsed:.1f} s"
    await agent.close()


async def test_agent_may_not_send_input_or_garbage(relay: Relay, admin_api: ApiClient) -> None:
    key_event, _, key_a = await relay.online_agent(admin_api, label="k")
    mouse_event, _, _ = await relay.online_agent(admin_api, label="m")
    garbage, _, _ = await relay.online_agent(admin_api, label="g")

    await key_event.send(KeyEvent(scan_code=0x1D, down=True))
    await mouse_event.send(MouseEvent(x=10, y=10, button=MouseButton.MOUSE_BUTTON_LEFT, down=True))
    await garbage.send_raw(b"\xff\xff\xff")
    closed = [await conn.wait_closed(timeout=WAIT) for conn in (key_event, mouse_event, garbage)]
    assert [code for code, _ in closed] == [4403, 4403, 4400], closed

    rows = await eventually(
        lambda: _at_least(lambda: events_of(relay.server, "limit.protocol_error"), 3),
        timeout=WAIT,
    )
    assert sorted(row.detail["close_code"] for row in rows) == [4400, 4403, 4403]
    assert {row.detail["plane"] for row in rows} == {"agent"}
    assert all(row.source_address == "127.0.0.1" for row in rows)

    # The relay keeps serving, the offender's key included (a close is not a revocation).
    again = await AgentClient.connect(relay.url, key=key_a["key"])
    fresh, _, _ = await relay.online_agent(admin_api, label="fresh")
    await stays_open(fresh, 0.2)
    for conn in (again, fresh):
        await conn.close()

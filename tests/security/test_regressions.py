"""Bugs the fuzzers found, each pinned by the input that found it.

NUL characters: PostgreSQL refuses them in text and JSON columns, so a NUL in a hostname
or a consent reason turned an agent's status update into a 1011 close and lost the audit
row of a consent decision. SQLite accepted them; the bug lived on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from guruconnect.client import AgentClient, ApiClient
from guruconnect.client.connection import Connection, Refused
from guruconnect.client.peers import ws_base
from guruconnect.protocol import AgentStatus, ConsentResponse
from guruconnect.server.db.schema import machines
from tests.relay.conftest import Relay, events_of, eventually

pytestmark = pytest.mark.asyncio


async def test_nul_in_agent_status_is_stored_without_it(relay: Relay, admin_api: ApiClient) -> None:
    key = await admin_api.issue_agent_key("nul")
    agent = await AgentClient.connect(
        relay.url, key=key["key"], key_in_header=False, hostname="host\x00name"
    )
    try:
        await agent.send(AgentStatus(hostname="a\x00b", os="Lin\x00ux", agent_version="1\x00"))
        # The heartbeat round trip proves the status was handled and the socket lives.
        await agent.send_status(hostname="after")
        rows = await eventually(lambda: _machine(relay, agent.auth.machine_id, "after"), timeout=5)
        assert rows[0].os == "Linux"
        assert agent.close_code is None
    finally:
        await agent.close()


async def _machine(relay: Relay, machine_id: str, hostname: str) -> list[Any]:
    found = await asyncio.to_thread(
        relay.server.database.sql,
        select(machines).where(machines.c.id == uuid.UUID(machine_id)),
    )
    return found if found and found[0].hostname == hostname else []


async def test_nul_in_consent_reason_keeps_the_audit_row(
    relay: Relay, admin_api: ApiClient
) -> None:
    key = await admin_api.issue_agent_key("nul-consent")
    agent = await AgentClient.connect(relay.url, key=key["key"])
    try:
        await agent.send_status()
        session = await admin_api.request_session(agent.auth.machine_id, "control")
        await agent.expect("consent_request")
        await agent.send(
            ConsentResponse(session_id=str(session["id"]), granted=False, reason="no\x00pe")
        )
        denied = await eventually(lambda: events_of(relay.server, "consent.denied"))
        assert denied[0].detail["reason"] == "nope"
    finally:
        await agent.close()


# -- found by schemathesis -----------------------------------------------------------------


async def test_route_checks_answer_422_in_the_documented_shape(
    relay: Relay, admin_api: ApiClient
) -> None:
    """PATCH with an explicit null answered ``{"detail": "..."}``, not the validation-error
    list the OpenAPI document promises for 422."""
    async with httpx.AsyncClient(base_url=relay.url, timeout=15) as http:
        auth = {"Authorization": f"Bearer {admin_api.token}"}
        response = await http.patch(
            f"/api/users/{relay.tech_id}", json={"role": None}, headers=auth
        )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail[0]["loc"] == ["body", "role"]
    rows = await eventually(lambda: events_of(relay.server, "request.invalid"))
    assert rows[-1].detail["fields"] == ["body.role"]


async def test_nul_in_login_is_refused_not_a_server_error(relay: Relay) -> None:
    """PostgreSQL refuses NUL in a query parameter: a login with one was a 500."""
    async with httpx.AsyncClient(base_url=relay.url, timeout=15) as http:
        response = await http.post(
            "/api/auth/login", json={"username": "ro\x00ot", "password": "x" * 12}
        )
    # SQLite looks the name up and finds nobody; PostgreSQL refuses the value.
    assert response.status_code in (401, 422), response.text
    if response.status_code == 422:
        assert isinstance(response.json()["detail"], list)
        assert await eventually(lambda: events_of(relay.server, "request.invalid"))


# -- found by the route-variant hunt -------------------------------------------------------


async def test_encoded_slash_reaches_no_route(relay: Relay, admin_api: ApiClient) -> None:
    """``/api/auth%2Flogout`` was decoded before routing and logged the caller out: a
    proxy rule on the path prefix would not have seen it coming."""
    auth = {"Authorization": f"Bearer {admin_api.token}"}
    async with httpx.AsyncClient(base_url=relay.url, timeout=15) as http:
        for path in ("/api/auth%2Flogout", "/api/auth%2flogout", "/api%5Cauth/logout"):
            response = await http.post(path, headers=auth)
            assert response.status_code == 404, path
            assert response.headers["x-frame-options"] == "DENY"
        assert (await http.get("/api/auth/me", headers=auth)).status_code == 200
        # The query string is not the path: an encoded slash there is just data.
        assert (await http.get("/health?x=%2F")).status_code == 200
    # Nor does a WebSocket upgrade, even with a valid key.
    key = (await admin_api.issue_agent_key("slash"))["key"]
    with pytest.raises(Refused):
        await Connection.open(
            ws_base(relay.url) + "/ws%2Fagent", headers={"Authorization": f"Bearer {key}"}
        )


# -- found by the database-outage test and the load run --------------------------------------


async def test_repeated_agent_status_is_not_a_write_each(
    relay: Relay, admin_api: ApiClient
) -> None:
    """Every AgentStatus was an UPDATE of the machine row: an agent could turn its socket
    into a database write loop (and a database outage into a 1011 for the agent)."""
    from sqlalchemy import event

    engine = relay.server.app.state.guruconnect.engine.sync_engine
    updates: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE MACHINES"):
            updates.append(statement)

    key = await admin_api.issue_agent_key("chatty")
    agent = await AgentClient.connect(relay.url, key=key["key"])
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(50):
            await agent.send(AgentStatus(hostname="same", os="Linux", agent_version="1"))
        await agent.send(AgentStatus(hostname="changed", os="Linux", agent_version="1"))
        await eventually(lambda: _machine(relay, agent.auth.machine_id, "changed"))
        assert len(updates) == 2, updates  # the first status, and the change
    finally:
        event.remove(engine, "before_cursor_execute", count)
        await agent.close()


# -- found by make fuzz-long -----------------------------------------------------------------


@pytest.mark.parametrize("where", ["query", "header"])
async def test_oversized_upgrade_is_answered_not_left_hanging(relay: Relay, where: str) -> None:
    """A WebSocket upgrade with a request line (or a header) over websockets' 8 KiB limit
    got no answer at all: the parser queued a 414/431 that uvicorn never sent, and the
    connection hung for ever."""
    url = ws_base(relay.url) + "/ws/viewer?session_id=1"
    headers = {}
    if where == "query":
        url += "&ticket=" + "x" * 9000
    else:
        headers["Authorization"] = "Bearer " + "x" * 9000
    started = time.monotonic()
    with pytest.raises(Refused) as refused:
        await Connection.open(url, headers=headers, open_timeout=5)
    assert refused.value.code in (414, 431)
    assert time.monotonic() - started < 2

"""Issue 15, the relay side: racing a fresh agent key, revoking it, and the technician who
made a support code opening its session (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from guruconnect.client import AgentClient, ApiClient, Refused
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.server.db.schema import machines
from guruconnect.server.relay.hub import Hub
from guruconnect.server.relay.peers import AgentPeer, Peer
from tests.relay.conftest import Relay
from tests.timing import scaled

pytestmark = pytest.mark.asyncio
WAIT = scaled(10)


def _http(relay: Relay, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=relay.url, headers={"Authorization": f"Bearer {token}"}, timeout=WAIT
    )


# -- 2. a fresh key raced from several sockets -------------------------------------------


async def test_racing_a_fresh_key_binds_one_machine_and_revoking_it_closes_every_socket(
    relay: Relay, admin_api: ApiClient
) -> None:
    key = await admin_api.issue_agent_key("raced")
    results = await asyncio.gather(
        *(
            AgentClient.connect(relay.url, key=key["key"], key_in_header=False, hostname=f"h{i}")
            for i in range(8)
        ),
        return_exceptions=True,
    )
    agents = [r for r in results if isinstance(r, AgentClient)]
    try:
        # A socket replaced (by a later one on the same machine) before it read its
        # AuthResult sees the replacement instead; nothing else may go wrong.
        refused = [r for r in results if not isinstance(r, AgentClient)]
        assert all(isinstance(r, Refused) and r.code == CloseCode.REPLACED for r in refused)
        assert agents
        assert all(agent.auth.ok for agent in agents)
        # One key, one machine: the losers of the bind use the winner's machine.
        assert len({agent.auth.machine_id for agent in agents}) == 1
        [(count,)] = await asyncio.to_thread(
            relay.server.database.sql, select(func.count()).select_from(machines)
        )
        assert count == 1  # and left no machine of their own behind

        async with _http(relay, admin_api.token) as http:
            response = await http.delete(f"/api/agent-keys/{key['id']}")
            assert response.status_code == 204
            closed = await asyncio.gather(*(a.wait_closed(timeout=WAIT) for a in agents))
            # The last to bind was revoked; the others had been replaced by it.
            codes = {code for code, _ in closed}
            assert codes <= {CloseCode.REVOKED, CloseCode.REPLACED}, closed
            assert CloseCode.REVOKED in codes
            ids = [str(r.id) for r in await asyncio.to_thread(_machine_ids, relay)]
            for machine_id in ids:
                session = await http.post(
                    f"/api/machines/{machine_id}/sessions", json={"scope": "control"}
                )
                assert session.status_code != 201, session.text
    finally:
        for agent in agents:
            await agent.close()


def _machine_ids(relay: Relay) -> list[Any]:
    return relay.server.database.sql(select(machines.c.id))


async def test_revoking_a_key_closes_every_socket_it_holds(relay: Relay) -> None:
    """However a key came to hold several sockets, revocation closes all of them (it used
    to stop at the first)."""
    state = relay.server.app.state.guruconnect
    hub = Hub(state.settings, state.engine, state.audit, state.hub.metrics)
    key_id = uuid.uuid4()
    peers = []
    for _ in range(3):
        peer = Peer(None, source="127.0.0.1", video_limit=1)  # type: ignore[arg-type]
        agent = AgentPeer(
            peer=peer,
            machine_id=uuid.uuid4(),
            tenant_id=uuid.uuid4(),
            machine_name="m",
            key_id=key_id,
        )
        hub.agents[agent.machine_id] = agent
        peers.append(peer)
    assert hub.revoke_agent_key(key_id) == 3
    assert [p.close_code for p in peers] == [CloseCode.REVOKED] * 3


# -- 7. the technician who made a support code opens its session -------------------------------


async def test_the_technician_who_made_a_support_code_controls_its_session(
    relay: Relay, admin_api: ApiClient
) -> None:
    await asyncio.to_thread(relay.server.create_user, "tech2")
    tech = await relay.api("tech")
    other = await relay.api("tech2")
    agent = viewer = None
    try:
        code = (await tech.create_support_code())["code"]
        agent = await AgentClient.connect(relay.url, code=code, hostname="customer-pc")
        session_id = agent.auth.session_id
        await agent.expect("consent_request", timeout=WAIT)
        await agent.answer_consent(session_id, True)
        await agent.expect("keyframe_request", timeout=WAIT)

        async with _http(relay, tech.token) as http:
            shown = await http.get(f"/api/sessions/{session_id}")
            assert shown.status_code == 200, shown.text
            assert shown.json()["kind"] == "support_code"
        viewer = await relay.viewer(tech, session_id, "control")
        assert viewer.state.controller == "tech"

        # Another technician, without access to that machine, does not even see it.
        async with _http(relay, other.token) as http:
            assert (await http.get(f"/api/sessions/{session_id}")).status_code == 404
            ticket = await http.post(
                f"/api/sessions/{session_id}/viewer-token", json={"scope": "view"}
            )
            assert ticket.status_code == 404
            assert (await http.delete(f"/api/sessions/{session_id}")).status_code == 404

        # The technician can end it, too.
        async with _http(relay, tech.token) as http:
            assert (await http.delete(f"/api/sessions/{session_id}")).status_code == 204
        await viewer.wait_closed(timeout=WAIT)
    finally:
        for conn in (viewer, agent):
            if conn is not None:
                await conn.close()
        await tech.aclose()
        await other.aclose()

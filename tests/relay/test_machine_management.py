"""Re-keying and forgetting a machine while its agent is connected, on both databases: the
old key's agent is cut off at once, the new key brings the same machine back, and a
forgotten machine's agent can never come back, while its sessions and audit rows stay."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from guruconnect.client import AgentClient, ApiClient, Refused
from guruconnect.protocol import Codec
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.server.db.schema import session_events, sessions
from tests.relay.conftest import Relay, events_of
from tests.timing import scaled

pytestmark = pytest.mark.asyncio

WAIT = scaled(10)
REVOKED = CloseCode.REVOKED


async def count(relay: Relay, table: Any, *where: Any) -> int:
    rows = await asyncio.to_thread(
        relay.server.database.sql,
        select(func.count()).select_from(table).where(*where),
    )
    return int(rows[0][0])


async def test_rekey_then_forget_a_connected_machine(relay: Relay, admin_api: ApiClient) -> None:
    agent, machine_id, old_key = await relay.online_agent(
        admin_api, label="desk", policy="unattended"
    )
    first_session = await relay.active_session(admin_api, agent, machine_id)
    headers = {"Authorization": f"Bearer {admin_api.token}"}
    async with httpx.AsyncClient(base_url=relay.url, headers=headers, timeout=WAIT) as http:
        # Re-key: the old key's agent is closed now, the new key is the same machine.
        response = await http.post(f"/api/machines/{machine_id}/rekey", json={"label": "desk v2"})
        assert response.status_code == 201, response.text
        new_key = response.json()
        code, _ = await agent.wait_closed(timeout=WAIT)
        assert code == REVOKED
        with pytest.raises(Refused, match="revoked"):
            await AgentClient.connect(relay.url, key=old_key["key"])
        agent = await AgentClient.connect(relay.url, key=new_key["key"])
        assert agent.auth.machine_id == machine_id
        await agent.send_status(encoders=[Codec.CODEC_RAW_ZSTD])
        second_session = await relay.active_session(admin_api, agent, machine_id)

        # Forget: the live session ends, the agent is cut off, its key is dead for good.
        response = await http.delete(f"/api/machines/{machine_id}")
        assert response.status_code == 204, response.text
        code, _ = await agent.wait_closed(timeout=WAIT)
        assert code == REVOKED
        with pytest.raises(Refused, match="revoked"):
            await AgentClient.connect(relay.url, key=new_key["key"])
        assert (await http.get(f"/api/machines/{machine_id}")).status_code == 404

    machine = uuid.UUID(machine_id)
    [ended] = [
        e
        for e in await events_of(relay.server, "session.ended")
        if str(e.session_id) == second_session
    ]
    assert ended.detail["reason"] == "machine_deleted"
    [deleted] = await events_of(relay.server, "machine.deleted")
    assert deleted.detail["revoked_keys"] == [new_key["prefix"]]
    assert deleted.detail["ended_session"] == second_session
    # The history stays: its sessions (the reconnected agent may have resumed the first),
    # and every audit row that names the machine.
    expected = len({first_session, second_session})
    assert await count(relay, sessions, sessions.c.machine_id == machine) == expected
    assert (
        await count(relay, session_events, session_events.c.session_id == uuid.UUID(first_session))
        > 0
    )
    assert await count(relay, session_events, session_events.c.machine_id == machine) > 5

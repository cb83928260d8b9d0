"""Chat and clipboard transfers are audited (length and SHA-256, not the text), and a
key-based agent's ``agent.connected`` row names its version and hostname (issue 16)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from guruconnect.client import AgentClient, ApiClient
from guruconnect.protocol import ChatMessage, ClipboardText
from tests.relay.conftest import Relay, events_of, eventually
from tests.timing import scaled

pytestmark = pytest.mark.asyncio
WAIT = scaled(5.0)


@pytest_asyncio.fixture
async def api(relay: Relay) -> AsyncIterator[ApiClient]:
    client = await relay.api()
    yield client
    await client.aclose()


async def rows(relay: Relay, event_type: str, count: int) -> list[Any]:
    async def enough() -> list[Any]:
        found = await events_of(relay.server, event_type)
        return found if len(found) >= count else []

    return await eventually(enough, timeout=WAIT)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_transfers_and_agent_identity_are_audited(relay: Relay, api: ApiClient) -> None:
    key = await api.issue_agent_key("desk")
    # The key travels in the upgrade header: no hello carries the version or hostname.
    agent = await AgentClient.connect(relay.url, key=key["key"])
    try:
        await agent.send_status(hostname="front-desk", agent_version="9.8.7")
        [connected] = await rows(relay, "agent.connected", 1)
        assert connected.detail["hostname"] == "front-desk"
        assert connected.detail["agent_version"] == "9.8.7"

        machine_id = agent.auth.machine_id
        session_id = await relay.active_session(api, agent, machine_id)
        viewer = await relay.viewer(api, session_id, "control")
        try:
            await viewer.send(ChatMessage(session_id=session_id, text="my secret plan"))
            await agent.expect("chat", timeout=WAIT)
            await viewer.send(ClipboardText(text="pasted secret"))
            await agent.expect("clipboard", timeout=WAIT)
            await agent.send(ChatMessage(session_id=session_id, text="the reply"))
            await agent.send(ClipboardText(text="copied at the desk"))

            chats = await rows(relay, "chat.message", 2)
            clips = await rows(relay, "clipboard.sent", 2)
        finally:
            await viewer.close()
    finally:
        await agent.close()

    by_direction = {r.detail["direction"]: r for r in chats}
    sent = by_direction["to_agent"]
    assert (sent.detail["length"], sent.detail["sha256"]) == (14, sha("my secret plan"))
    assert sent.actor == "root"
    assert str(sent.session_id) == session_id
    assert by_direction["from_agent"].detail["sha256"] == sha("the reply")
    assert {r.detail["sha256"] for r in clips} == {sha("pasted secret"), sha("copied at the desk")}
    for row in [*chats, *clips]:
        assert "content" not in row.detail
        assert "secret" not in str(row.detail)
    # The export carries the same rows.
    async with httpx.AsyncClient(base_url=relay.url) as http:
        export = await http.get(
            "/api/events/export",
            params={"format": "jsonl", "session_id": session_id},
            headers={"Authorization": f"Bearer {api.token}"},
        )
    assert export.status_code == 200
    assert "chat.message" in export.text
    assert "my secret plan" not in export.text

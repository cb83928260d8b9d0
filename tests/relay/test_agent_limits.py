"""The relay's half of the defence against a hostile agent (issue 15, item 8): chat beyond a
token bucket is dropped and audited once per burst; a display list or cursor shape over its
cap closes the agent with 4400 and a reason naming the cap. (The viewer's half, which does
not rely on this, is tests/web/test_hostile_agent.py.)"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from guruconnect.client import AgentClient, ApiClient, ViewerClient
from guruconnect.protocol import (
    AgentStatus,
    ChatMessage,
    ClipboardText,
    CursorShape,
    Display,
    DisplayList,
    Heartbeat,
    decode,
)
from tests.relay.conftest import Relay, events_of, eventually
from tests.timing import scaled

pytestmark = pytest.mark.asyncio
WAIT = scaled(10)


async def _rows(relay: Relay, event_type: str, count: int = 1) -> list[Any]:
    async def rows() -> list[Any]:
        found = await events_of(relay.server, event_type)
        return found if len(found) >= count else []

    result: list[Any] = await eventually(rows, timeout=WAIT)
    return result


async def test_agent_chat_beyond_the_rate_is_dropped_and_audited_once(
    relay_factory: Any,
) -> None:
    relay = await asyncio.to_thread(relay_factory, agent_chat_per_second=5)  # bursts of 10
    api = await relay.api()
    agent, machine_id, _ = await relay.online_agent(api)
    session_id = await relay.active_session(api, agent, machine_id)
    viewer: ViewerClient = await relay.viewer(api, session_id)

    started = time.monotonic()
    for n in range(200):
        await agent.send(ChatMessage(session_id=session_id, text=f"spam {n}"))
    elapsed = time.monotonic() - started
    # The clipboard travels in the same (ordered) queue: everything before it has arrived.
    await agent.send(ClipboardText(text="marker"))
    chats = 0
    while True:
        envelope = await viewer.recv(timeout=WAIT)
        kind = envelope.WhichOneof("payload")
        if kind == "clipboard":
            break
        chats += kind == "chat"
    allowed = 10 + math.ceil(5 * (time.monotonic() - started + elapsed))
    assert 1 <= chats <= allowed, (chats, allowed)

    [row] = await _rows(relay, "limit.chat_throttled")
    assert row.detail["plane"] == "agent"
    assert row.detail["dropped"] >= 1
    assert str(row.machine_id) == machine_id
    # One event per burst, not one per dropped message; the agent stays connected.
    assert len(await events_of(relay.server, "limit.chat_throttled")) == 1
    await _still_open(agent)
    await viewer.close()
    await agent.close()
    await api.aclose()


async def _still_open(agent: AgentClient) -> None:
    """A heartbeat round trip: the relay read everything sent before it and kept the agent."""
    await agent.send(Heartbeat(sent_at_ms=4242))
    while True:
        envelope = decode(await agent.recv_raw(timeout=WAIT))
        if envelope.HasField("heartbeat") and envelope.heartbeat.reply:
            return


async def _closed(agent: AgentClient) -> tuple[int, str]:
    code, reason = await agent.wait_closed(timeout=WAIT)
    return code, reason


async def test_display_lists_over_the_caps_close_the_agent(
    relay: Relay, admin_api: ApiClient
) -> None:
    fine, _, _ = await relay.online_agent(admin_api, label="fine")
    many, _, _ = await relay.online_agent(admin_api, label="many")
    huge, _, _ = await relay.online_agent(admin_api, label="huge")
    named, _, _ = await relay.online_agent(admin_api, label="named")

    await fine.send(
        DisplayList(displays=[Display(id=n, width=1920, height=1080) for n in range(1, 17)])
    )
    await many.send(
        DisplayList(displays=[Display(id=n, width=64, height=64) for n in range(1, 100_001)])
    )
    await huge.send(AgentStatus(displays=[Display(id=1, width=12288, height=12288)]))
    await named.send(DisplayList(displays=[Display(id=1, width=64, height=64, name="x" * 101)]))

    assert await _closed(many) == (4400, "100000 displays; at most 16 are allowed")
    assert await _closed(huge) == (4400, "a 12288x12288 display; at most 8192 a side")
    code, reason = await _closed(named)
    assert code == 4400
    assert "display name" in reason
    rows = await _rows(relay, "limit.agent_over_limit", 3)
    assert sorted(row.detail["close_code"] for row in rows) == [4400] * 3
    await _still_open(fine)  # within the caps
    await fine.close()


async def test_cursor_shapes_over_the_cap_close_the_agent(
    relay: Relay, admin_api: ApiClient
) -> None:
    fine, _, _ = await relay.online_agent(admin_api, label="fine")
    big, _, _ = await relay.online_agent(admin_api, label="big")
    lying, _, _ = await relay.online_agent(admin_api, label="lying")

    await fine.send(CursorShape(id=1, width=256, height=256, bgra=bytes(256 * 256 * 4)))
    await big.send(CursorShape(id=1, width=257, height=1, bgra=bytes(257 * 4)))
    await lying.send(CursorShape(id=1, width=64, height=64, bgra=bytes(16)))

    assert await _closed(big) == (4400, "a 257x1 cursor; at most 256 a side")
    assert await _closed(lying) == (4400, "a cursor shape whose pixels do not match its size")
    rows = await _rows(relay, "limit.agent_over_limit", 2)
    assert {row.detail["plane"] for row in rows} == {"agent"}
    await _still_open(fine)
    await fine.close()

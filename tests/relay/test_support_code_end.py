"""A support code buys one session: when it ends, the relay disconnects that agent too, so
an agent that ignores the end (an old or modified one) is not left online for another."""

from __future__ import annotations

import pytest

from guruconnect.client import AgentClient, ApiClient, Refused
from guruconnect.protocol import CloseCode, SessionState
from tests.relay.conftest import Relay
from tests.timing import scaled


async def until_closed(agent: AgentClient) -> None:
    while True:
        envelope = await agent.recv(scaled(10))
        if envelope.HasField("session_state"):
            assert envelope.session_state.state == SessionState.STATE_ENDED


@pytest.mark.asyncio
async def test_the_relay_disconnects_a_support_code_agent_when_its_session_ends(
    relay: Relay, admin_api: ApiClient
) -> None:
    code = (await admin_api.create_support_code())["code"]
    agent = await AgentClient.connect(relay.url, code=code, hostname="customer-pc")
    try:
        await agent.expect("consent_request", timeout=scaled(10))
        await admin_api.end_session(agent.auth.session_id)
        with pytest.raises(Refused) as closed:
            await until_closed(agent)
        assert closed.value.code == CloseCode.SESSION_ENDED
    finally:
        await agent.close()
    machines = await admin_api._call("GET", "/api/machines")
    items = machines["items"] if isinstance(machines, dict) else machines
    assert not any(m["online"] for m in items)

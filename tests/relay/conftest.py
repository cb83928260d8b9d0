"""Relay fixtures: a live server with an admin and a technician, and helpers that bring an
agent online and a session up through the same API and protocol a real deployment uses.

Relay tests are async (the clients are asyncio); the server runs in its own thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from guruconnect.client import AgentClient, ApiClient, ViewerClient
from guruconnect.protocol import Codec
from tests.conftest import PASSWORD, LiveServer

T = TypeVar("T")
#: One scaled unit for waits in relay tests (seconds).
UNIT = 1.0


@dataclass
class Relay:
    server: LiveServer
    admin_id: str
    tech_id: str

    @property
    def url(self) -> str:
        return self.server.url

    async def api(self, username: str = "root", password: str = PASSWORD) -> ApiClient:
        client = ApiClient(self.url)
        await client.login(username, password)
        return client

    async def online_agent(
        self, api: ApiClient, *, label: str = "pc", policy: str = "ask", **connect: Any
    ) -> tuple[AgentClient, str, dict[str, Any]]:
        """A persistent agent with a fresh key, connected and reporting its status."""
        key = await api.issue_agent_key(label)
        agent = await AgentClient.connect(self.url, key=key["key"], **connect)
        await agent.send_status(encoders=[Codec.CODEC_RAW_ZSTD])
        machine_id = agent.auth.machine_id
        if policy != "ask":
            await api.set_consent_policy(machine_id, policy)
        return agent, machine_id, key

    async def active_session(
        self, api: ApiClient, agent: AgentClient, machine_id: str, *, scope: str = "control"
    ) -> str:
        """Request a session and have the agent's local user allow it."""
        session = await api.request_session(machine_id, scope)
        request = await agent.expect("session_request")
        if request.consent_required:
            await agent.expect("consent_request")
            await agent.answer_consent(session["id"], True)
        await agent.expect("keyframe_request")
        return str(session["id"])

    async def viewer(
        self, api: ApiClient, session_id: str, scope: str = "control", **kw: Any
    ) -> ViewerClient:
        ticket = await api.viewer_ticket(session_id, scope)
        return await ViewerClient.connect(self.url, session_id, ticket, **kw)


@pytest.fixture
def relay_factory(server_factory: Callable[..., LiveServer]) -> Callable[..., Relay]:
    def make(**settings: Any) -> Relay:
        server = server_factory(**settings)
        admin_id = server.create_user("root", is_admin=True)
        tech_id = server.create_user("tech")
        return Relay(server, str(admin_id), str(tech_id))

    return make


@pytest.fixture
def relay(relay_factory: Callable[..., Relay]) -> Relay:
    return relay_factory()


@pytest_asyncio.fixture
async def admin_api(relay: Relay) -> AsyncIterator[ApiClient]:
    api = await relay.api()
    yield api
    await api.aclose()


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 5 * UNIT, interval: float = 0.02
) -> T:
    """Poll ``check`` until it returns something truthy; its last value otherwise raises."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        await asyncio.sleep(interval)


async def events_of(server: LiveServer, event_type: str) -> list[Any]:
    """Audit rows of a type, read off the event loop (the helper is synchronous)."""
    return await asyncio.to_thread(server.events, event_type)

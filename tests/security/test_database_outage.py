"""PostgreSQL goes away for a few seconds (a TCP proxy between the server and the database
is cut; the shared database server itself is never touched).

While it is away: REST requests fail cleanly with 503 and ``Retry-After`` (never a 500 or
a hang), the relay keeps the live session streaming, and an agent's status update (which
writes to the database) does not cost it its socket. When it is back, requests succeed
again without a restart; the recovery time is printed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from guruconnect.protocol import AgentStatus, Codec
from tests.conftest import POSTGRES_URL
from tests.relay.conftest import Relay
from tests.security.tcp_proxy import CuttableProxy
from tests.security.test_socket_abuse import Healthy

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.parametrize("database", ["postgres"], indirect=True),
]
OUTAGE_SECONDS = 3.0


@pytest.fixture
def proxy() -> Iterator[CuttableProxy]:
    target = urlsplit(POSTGRES_URL.replace("+asyncpg", ""))
    running = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    yield running
    running.stop()


@pytest_asyncio.fixture
async def relay_via_proxy(relay_factory: Callable[..., Relay], proxy: CuttableProxy) -> Relay:
    url = POSTGRES_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    assert str(proxy.port) in url
    return await asyncio.to_thread(relay_factory, database_url=url)


async def test_requests_fail_cleanly_and_the_relay_streams_on(
    relay_via_proxy: Relay, proxy: CuttableProxy
) -> None:
    relay = relay_via_proxy
    api = await relay.api()
    agent, machine_id, _ = await relay.online_agent(api, policy="unattended")
    session_id = await relay.active_session(api, agent, machine_id)
    viewer = await relay.viewer(api, session_id, "view")
    healthy = Healthy(agent, viewer, session_id)
    healthy.start()
    auth = {"Authorization": f"Bearer {api.token}"}
    try:
        async with httpx.AsyncClient(base_url=relay.url, timeout=10) as http:
            assert (await http.get("/api/machines", headers=auth)).status_code == 200
            proxy.cut()
            started = time.monotonic()
            statuses = []
            while time.monotonic() - started < OUTAGE_SECONDS:
                asked = time.monotonic()
                response = await http.get("/api/machines", headers=auth)
                assert time.monotonic() - asked < 5  # an answer, not a hang
                statuses.append(response.status_code)
                if response.status_code == 503:
                    assert response.headers["retry-after"]
                    assert response.json() == {"detail": "service temporarily unavailable"}
                login = await http.post(
                    "/api/auth/login", json={"username": "root", "password": "whatever"}
                )
                assert login.status_code == 503, login.text
                # A status update from the agent needs the database; it must not cost the
                # agent its socket.
                await agent.send(
                    AgentStatus(hostname="during-outage", encoders=[Codec.CODEC_RAW_ZSTD])
                )
                await asyncio.sleep(0.3)
            assert set(statuses) == {503}, statuses
            await healthy.assert_flowing(started)
            assert agent.close_code is None

            proxy.restore()
            restored = time.monotonic()
            while (await http.get("/api/machines", headers=auth)).status_code != 200:
                assert time.monotonic() - restored < 15, "no recovery without a restart"
                await asyncio.sleep(0.1)
            recovery = time.monotonic() - restored
            print(f"\ndatabase outage: REST back {recovery:.2f} s after the database")
            await healthy.assert_flowing(started)
            # The relay's own writes work again too: the agent's next status is stored.
            await agent.send_status(hostname="after-outage")
            machine = None
            for _ in range(50):
                machine = (await http.get(f"/api/machines/{machine_id}", headers=auth)).json()
                if machine["hostname"] == "after-outage":
                    break
                await asyncio.sleep(0.1)
            assert machine is not None
            assert machine["hostname"] == "after-outage"
    finally:
        await healthy.stop()
        await api.aclose()

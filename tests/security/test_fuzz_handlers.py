"""Fuzz every handler that takes bytes from the network, through the live relay.

A hostile agent (after authenticating, and in its first message) and a hostile viewer in
an active session send envelopes of every type with hostile contents, mutated envelopes
and garbage. After each message a heartbeat is the barrier: either the relay answers it
(the message was handled, the socket lives on) or it has closed the socket with one of
the protocol's refusal codes. A 1011 close, or any error logged by the server (a handler
that raised, an audit row that could not be written), is a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given

from guruconnect.client import AgentClient, ApiClient, Connection, ViewerClient
from guruconnect.client.connection import ClientError, Refused
from guruconnect.protocol import ControlRequest, Heartbeat, decode, encode
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.protocol.planes import Plane
from tests.relay.conftest import Relay
from tests.security.conftest import ServerErrors
from tests.security.strategies import budget, plane_messages

#: Closes a hostile message may earn; anything else (1011 above all) is a bug.
REFUSALS = {
    CloseCode.NORMAL,  # it sent Disconnect
    CloseCode.MESSAGE_TOO_BIG,
    CloseCode.PROTOCOL_ERROR,
    CloseCode.NOT_ALLOWED,
}
FUZZ_SETTINGS = {
    "ws_connect_rate_limit": "100000/minute",
    "support_code_rate_limit": "100000/minute",
}


async def barrier(conn: Connection, marker: int) -> int | None:
    """Send a heartbeat and read until its reply (None) or the close (its code)."""
    try:
        await conn.send_raw(encode(Heartbeat(sent_at_ms=marker)))
        async with asyncio.timeout(10):
            while True:
                envelope = decode(await conn.recv_raw())
                if envelope.HasField("heartbeat"):
                    beat = envelope.heartbeat
                    if beat.reply and beat.sent_at_ms == marker:
                        return None
                    if not beat.reply:
                        await conn.send_raw(
                            encode(Heartbeat(sent_at_ms=beat.sent_at_ms, reply=True))
                        )
    except Refused as exc:
        return exc.code
    except ClientError:
        return conn.close_code


async def drain(conn: Connection) -> None:
    """Read and answer heartbeats until closed: the other side must not look stalled."""
    with contextlib.suppress(ClientError, TimeoutError, Exception):
        while True:
            await conn.recv()


class Session:
    """An agent and a controlling viewer in an active session, reopened when closed."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.key = ""
        self.session_id = ""
        self.api: ApiClient | None = None
        self.agent: AgentClient | None = None
        self.viewer: ViewerClient | None = None
        self._drains: list[asyncio.Task[None]] = []
        self._opened: list[Connection] = []
        self.marker = 0

    async def open(self) -> None:
        self.api = await self.relay.api()
        key = await self.api.issue_agent_key("fuzz")
        self.key = key["key"]
        self.agent = await AgentClient.connect(self.relay.url, key=self.key)
        self._opened.append(self.agent)
        await self.agent.send_status()
        machine_id = self.agent.auth.machine_id
        await self.api.set_consent_policy(machine_id, "unattended")
        session = await self.api.request_session(machine_id, "control")
        self.session_id = str(session["id"])
        await self.agent.expect("keyframe_request")

    async def agent_socket(self) -> AgentClient:
        if self.agent is None or self.agent.close_code is not None:
            self.agent = await AgentClient.connect(self.relay.url, key=self.key)
            self._opened.append(self.agent)
        return self.agent

    async def viewer_socket(self) -> ViewerClient:
        if self.viewer is None or self.viewer.close_code is not None:
            assert self.api is not None
            ticket = await self.api.viewer_ticket(self.session_id, "control")
            self.viewer = await ViewerClient.connect(self.relay.url, self.session_id, ticket)
            self._opened.append(self.viewer)
            await self.viewer.send(ControlRequest(take=True))
        return self.viewer

    def drain(self, conn: Connection) -> None:
        self._drains.append(asyncio.create_task(drain(conn)))

    async def close(self) -> None:
        for task in self._drains:
            task.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
        for conn in self._opened:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await conn.close()
            conn.ws.transport.abort()
        if self.api is not None:
            await self.api.aclose()


def run_fuzz(
    relay: Relay, errors: ServerErrors, plane: Plane, examples: int
) -> dict[int | None, int]:
    """Feed one plane's hostile messages through a live session; count the outcomes."""
    outcomes: dict[int | None, int] = {}
    with asyncio.Runner() as runner:
        session = Session(relay)
        runner.run(session.open())

        async def one(data: bytes) -> None:
            if plane is Plane.AGENT:
                conn: Connection = await session.agent_socket()
                other = session.viewer
                if other is None or other.close_code is not None:
                    session.drain(await session.viewer_socket())
            else:
                conn = await session.viewer_socket()
                if session.agent is None or session.agent.close_code is not None:
                    session.drain(await session.agent_socket())
            with contextlib.suppress(Refused):
                await conn.send_raw(data)
            session.marker += 1
            code = await barrier(conn, session.marker)
            outcomes[code] = outcomes.get(code, 0) + 1
            assert code is None or code in REFUSALS, (code, conn.close_reason, data[:80])
            assert not errors.records, errors.lines()

        @budget(examples)
        @given(data=plane_messages(plane))
        def check(data: bytes) -> None:
            runner.run(one(data))

        async def other_side() -> None:
            if plane is Plane.AGENT:
                session.drain(await session.viewer_socket())
            else:
                session.drain(await session.agent_socket())

        try:
            runner.run(other_side())
            check()
        finally:
            runner.run(session.close())
    return outcomes


# The server runs in this process, and its libraries use `random`; the long (random) run's
# check that strategies leave `random` alone would otherwise blame the fuzz strategies.
NOT_OUR_RANDOM = pytest.mark.filterwarnings("ignore:Do not use the `random` module")


@NOT_OUR_RANDOM
def test_agent_plane_handlers(
    relay_factory: Callable[..., Relay], server_errors: ServerErrors
) -> None:
    relay = relay_factory(**FUZZ_SETTINGS)
    outcomes = run_fuzz(relay, server_errors, Plane.AGENT, 100)
    # The fuzzer reached both sides of the handlers: accepted and refused messages.
    assert outcomes.get(None, 0) > 0
    assert any(code in outcomes for code in REFUSALS)


@NOT_OUR_RANDOM
def test_viewer_plane_handlers(
    relay_factory: Callable[..., Relay], server_errors: ServerErrors
) -> None:
    relay = relay_factory(**FUZZ_SETTINGS)
    outcomes = run_fuzz(relay, server_errors, Plane.VIEWER, 100)
    assert outcomes.get(None, 0) > 0
    assert any(code in outcomes for code in REFUSALS)

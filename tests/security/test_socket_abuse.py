"""Abuse on the sockets, each bounded, while a healthy session keeps streaming.

Every test runs a healthy session (an agent sending ~30 frames a second, a viewer counting
them) next to one abuser: half-open upgrades (slowloris), many idle sockets from one
source, a viewer that never reads, an agent that sends garbage after authenticating, and
clients that send fragments for ever. Each abuser must be cut off within its limit, and
the healthy viewer's frames must keep flowing all along.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from guruconnect.client import AgentClient, ViewerClient
from guruconnect.client.peers import ws_base
from guruconnect.protocol import Heartbeat, VideoFrame, ViewerHello, encode
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.server.transport_limits import ABORT_AFTER_SECONDS
from tests.relay.conftest import Relay, events_of, eventually
from tests.timing import scaled

pytestmark = [
    pytest.mark.asyncio,
    # Timing and transport behaviour, not storage: one database is enough.
    pytest.mark.parametrize("database", ["sqlite"], indirect=True),
]

#: Short limits so each abuse is cut off within seconds.
LIMITS = {
    "heartbeat_interval_seconds": 1.0,
    "header_timeout_seconds": 1.0,
    "auth_timeout_seconds": 1.0,
    "ws_connect_rate_limit": "20/minute",
}
FPS = 30
#: The healthy viewer must see at least this share of the frames sent in any window.
HEALTHY_SHARE = 0.6
#: Nor may it go longer than this without a frame (the server shares two busy cores with
#: the test's clients, so a hiccup of a few hundred milliseconds is not a failure).
MAX_GAP = 2.0


@dataclass
class Healthy:
    """A live session: the agent streams, the viewer counts what arrives."""

    agent: AgentClient
    viewer: ViewerClient
    session_id: str
    received: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _stream(self) -> None:
        frame = encode(VideoFrame(session_id=self.session_id, keyframe=False, data=b"\x01" * 32768))
        while True:
            await self.agent.send_raw(frame)
            self.sent.append(time.monotonic())
            await asyncio.sleep(1 / FPS)

    async def _count(self) -> None:
        while True:
            envelope = await self.viewer.recv()
            if envelope.HasField("video_frame"):
                self.received.append(time.monotonic())

    async def _agent_reads(self) -> None:
        while True:
            await self.agent.recv()  # answers heartbeats, takes keyframe requests

    def start(self) -> None:
        for job in (self._stream(), self._count(), self._agent_reads()):
            self.tasks.append(asyncio.create_task(job))

    async def assert_flowing(self, since: float) -> None:
        """Frames kept arriving from ``since`` until now (a second at least)."""
        await asyncio.sleep(max(0.0, since + 1.2 - time.monotonic()))
        for task in self.tasks:
            if task.done():
                raise AssertionError(f"the healthy session broke: {task.exception()!r}")
        now = time.monotonic()
        sent = [t for t in self.sent if since <= t <= now - 0.2]
        got = [t for t in self.received if since <= t <= now]
        assert len(sent) > FPS // 2, "the healthy agent did not stream"
        assert len(got) >= HEALTHY_SHARE * len(sent), (len(got), len(sent))
        gaps = [b - a for a, b in zip([since, *got], got, strict=False)]
        assert max(gaps) < MAX_GAP, f"frames stalled for {max(gaps):.2f} s"

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for conn in (self.viewer, self.agent):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await conn.close()


@pytest_asyncio.fixture
async def abuse_relay(relay_factory: Callable[..., Relay]) -> Relay:
    return await asyncio.to_thread(relay_factory, **LIMITS)


@pytest_asyncio.fixture
async def healthy(abuse_relay: Relay) -> AsyncIterator[Healthy]:
    relay = abuse_relay
    api = await relay.api()
    agent, machine_id, _ = await relay.online_agent(api, policy="unattended")
    session_id = await relay.active_session(api, agent, machine_id)
    viewer = await relay.viewer(api, session_id, "view")
    await api.aclose()
    session = Healthy(agent, viewer, session_id)
    session.start()
    await asyncio.sleep(0.3)
    yield session
    await session.stop()


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Read what is left (a response already sent) until the server closes."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    return True


async def test_half_open_upgrades_are_cut_off(abuse_relay: Relay, healthy: Healthy) -> None:
    host, port = abuse_relay.url.removeprefix("http://").split(":")
    started = time.monotonic()
    streams = []
    for i in range(120):
        reader, writer = await asyncio.open_connection(host, int(port))
        if i % 3:  # two in three send part of an upgrade; the rest send nothing at all
            writer.write(b"GET /ws/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            await writer.drain()
        streams.append((reader, writer))
    # Between them, a keep-alive client starts a second request and stalls in it.
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    assert b"200" in await reader.readuntil(b"\r\n")
    writer.write(b"GET /health HTTP/1.1\r\n")
    streams.append((reader, writer))

    async with asyncio.timeout(LIMITS["header_timeout_seconds"] + 3):
        closed = await asyncio.gather(*(_closed_by_server(r) for r, _ in streams))
    assert all(closed), [i for i, c in enumerate(closed) if not c]
    elapsed = time.monotonic() - started
    assert elapsed >= LIMITS["header_timeout_seconds"] * 0.9  # a deadline, not a refusal
    await healthy.assert_flowing(started)
    for _, writer in streams:
        writer.close()


async def _ws(url: str, source: str = "127.0.0.1", **kw: Any) -> ClientConnection:
    return await connect(
        url, local_addr=(source, 0), proxy=None, ping_interval=None, compression=None, **kw
    )


async def test_idle_sockets_from_one_source_are_bounded(
    abuse_relay: Relay, healthy: Healthy
) -> None:
    url = ws_base(abuse_relay.url) + "/ws/agent"
    started = time.monotonic()
    sockets = [await _ws(url, "127.0.0.9") for _ in range(30)]  # none says who it is

    async def closed(ws: ClientConnection) -> int | None:
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()
        return ws.close_code

    async with asyncio.timeout(LIMITS["auth_timeout_seconds"] + 3):
        codes = await asyncio.gather(*(closed(ws) for ws in sockets))
    # The per-source rate limit refuses the surplus at once; the rest time out unheard.
    assert codes.count(CloseCode.RATE_LIMITED) == 10, codes
    assert codes.count(CloseCode.UNAUTHORIZED) == 20, codes
    timeouts = await events_of(abuse_relay.server, "agent.auth_failed")
    assert {r.source_address for r in timeouts} == {"127.0.0.9"}
    await healthy.assert_flowing(started)
    # Another source is not affected by that one's limit.
    other = await _ws(url, "127.0.0.10")
    await other.close()


async def test_viewer_that_never_reads_is_dropped(abuse_relay: Relay, healthy: Healthy) -> None:
    relay = abuse_relay
    api = await relay.api()
    ticket = await api.viewer_ticket(healthy.session_id, "view")
    await api.aclose()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(_addr(relay.url))
    url = f"{ws_base(relay.url)}/ws/viewer?session_id={healthy.session_id}&ticket={ticket}"
    stalled = await connect(url, sock=sock, proxy=None, ping_interval=None, max_queue=1)
    await stalled.send(encode(ViewerHello()))
    started = time.monotonic()

    async def seem_alive() -> None:
        # It keeps talking, so the heartbeat alone would never drop it.
        with contextlib.suppress(ConnectionClosed):
            while True:
                await stalled.send(encode(Heartbeat(sent_at_ms=1, reply=True)))
                await asyncio.sleep(0.2)

    talker = asyncio.create_task(seem_alive())
    # It never reads: video for it is dropped, its writer stops moving, it is closed as
    # too slow, and a close it cannot read does not hold the relay (or the socket) up.
    row = await eventually(lambda: _left(relay), timeout=20, interval=0.25)
    assert row.detail["close_code"] == CloseCode.RATE_LIMITED
    gone = time.monotonic() - started
    await healthy.assert_flowing(started)
    # The server dropped the TCP connection though its close frame could not be sent.
    async with asyncio.timeout(ABORT_AFTER_SECONDS + 3):
        await talker
    assert gone < 15
    stalled.transport.abort()


def _addr(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def _left(relay: Relay) -> Any:
    rows = await events_of(relay.server, "viewer.left")
    return next((r for r in rows if r.detail.get("close_code") != CloseCode.NORMAL), None)


async def test_agent_sending_garbage_after_auth_is_closed(
    abuse_relay: Relay, healthy: Healthy
) -> None:
    api = await abuse_relay.api()
    key = await api.issue_agent_key("garbage")
    await api.aclose()
    started = time.monotonic()
    for garbage in (b"\xff" * 64, b"\x00", "text, not protobuf"):
        agent = await AgentClient.connect(abuse_relay.url, key=key["key"])
        await agent.ws.send(garbage)
        code, _ = await agent.wait_closed(timeout=5)
        assert code == CloseCode.PROTOCOL_ERROR
    rows = await events_of(abuse_relay.server, "limit.protocol_error")
    assert len(rows) >= 2  # the binary garbage is audited (the text close is a 4400 too)
    await healthy.assert_flowing(started)


async def _fragments(size: int, pause: float) -> AsyncIterator[bytes]:
    while True:
        yield b"\x00" * size
        await asyncio.sleep(pause)


@pytest.mark.parametrize(("plane", "size"), [("agent", 0), ("agent", 4096), ("viewer", 1024)])
async def test_fragments_for_ever_are_cut_off(
    abuse_relay: Relay, healthy: Healthy, plane: str, size: int
) -> None:
    """A message that never ends: empty fragments are cut off by the heartbeat (no
    message ever arrives), growing ones by the plane's message limit."""
    api = await abuse_relay.api()
    if plane == "agent":
        key = await api.issue_agent_key("fragments")
        conn: AgentClient | ViewerClient = await AgentClient.connect(
            abuse_relay.url, key=key["key"]
        )
    else:
        ticket = await api.viewer_ticket(healthy.session_id, "view")
        conn = await ViewerClient.connect(abuse_relay.url, healthy.session_id, ticket)
    await api.aclose()
    started = time.monotonic()
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(10):
            await conn.ws.send(_fragments(size, 0.005))
    code, _ = await conn.wait_closed(timeout=5)
    elapsed = time.monotonic() - started
    expected = {
        ("agent", 0): CloseCode.HEARTBEAT_TIMEOUT,
        ("agent", 4096): CloseCode.HEARTBEAT_TIMEOUT,  # 8 MiB would take far longer
        ("viewer", 1024): CloseCode.MESSAGE_TOO_BIG,  # 64 KiB passes in well under a second
    }[(plane, size)]
    assert code == expected, (code, elapsed)
    assert elapsed < scaled(5)
    await healthy.assert_flowing(started)

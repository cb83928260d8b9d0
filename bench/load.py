"""Load on one node: many idle agents, a few streaming sessions, and abusers alongside.

The server runs as its own process (``guruconnect server``, configured through the
environment), so its resident memory is its own. Steps:

1. agent keys for every agent are written straight to the database (fast);
2. the idle agents connect, report their status and then only answer heartbeats; the
   server's RSS before and after gives the memory per idle agent;
3. streaming sessions start (agent at ``--fps`` frames of ``--frame-kib``, one viewer
   each) while abusers run: half-open upgrades, a viewer that never reads, an agent that
   reconnects and sends garbage; the healthy viewers' frame rates are measured;
4. every idle agent must still be connected at the end.

    .venv/bin/python bench/load.py                            # full size: 500 agents, 10 sessions
    .venv/bin/python bench/load.py --agents 50 --sessions 2   # what CI runs (tests/security)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import socket
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from websockets.asyncio.client import connect

from guruconnect.client import AgentClient, ApiClient, ViewerClient
from guruconnect.client.connection import ClientError
from guruconnect.client.peers import ws_base
from guruconnect.protocol import Heartbeat, VideoFrame, encode
from guruconnect.server import admin
from guruconnect.server.auth import secrets_format
from guruconnect.server.background import ServerProcess
from guruconnect.server.config import DatabaseSettings
from guruconnect.server.db import agent_keys, tenants
from guruconnect.server.db.engine import create_engine

#: How long past the streaming window the viewer that never reads may take to be cut off:
#: two heartbeats without progress, the close's grace, then the transport's abort.
NEVER_READS_GRACE = 30.0
PASSWORD = "load test password 123"  # noqa: S105 - a throwaway server's user


@dataclass
class Report:
    agents: int
    agents_held: int
    sessions: int
    seconds: float
    rss_before_mib: float
    rss_idle_mib: float
    rss_streaming_mib: float
    kib_per_idle_agent: float
    connect_seconds: float
    fps_target: int
    fps_min: float
    fps_median: float
    frames_delivered_share: float
    abusers_cut_off: int
    abusers: int

    def table(self) -> str:
        rows = [
            ("idle agents held", f"{self.agents_held} / {self.agents}"),
            ("time to connect them", f"{self.connect_seconds:.1f} s"),
            ("server RSS before", f"{self.rss_before_mib:.1f} MiB"),
            ("server RSS with idle agents", f"{self.rss_idle_mib:.1f} MiB"),
            ("memory per idle agent", f"{self.kib_per_idle_agent:.1f} KiB"),
            ("server RSS while streaming", f"{self.rss_streaming_mib:.1f} MiB"),
            ("streaming sessions", f"{self.sessions} for {self.seconds:.0f} s"),
            ("healthy fps (min / median)", f"{self.fps_min:.1f} / {self.fps_median:.1f}"),
            ("fps target", str(self.fps_target)),
            ("frames delivered", f"{100 * self.frames_delivered_share:.1f} %"),
            ("abusers cut off", f"{self.abusers_cut_off} / {self.abusers}"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


async def _issue_keys(settings: DatabaseSettings, count: int) -> list[str]:
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    keys = []
    try:
        async with engine.begin() as conn:
            tenant = await tenants.by_name(conn, tenants.DEFAULT_TENANT)
            assert tenant is not None
            for i in range(count):
                new = secrets_format.new_agent_key()
                await agent_keys.create(
                    conn,
                    tenant_id=tenant.id,
                    prefix=new.lookup,
                    key_hash=new.key_hash,
                    label=f"load-{i}",
                    machine_id=None,
                    created_by=None,
                )
                keys.append(new.key)
    finally:
        await engine.dispose()
    return keys


async def _answer(conn: AgentClient | ViewerClient) -> None:
    """Read for ever: heartbeats get their answers, everything else is dropped."""
    with contextlib.suppress(ClientError, Exception):
        while True:
            await conn.recv()


async def _connect_idle(
    url: str, keys: list[str], batch: int = 50
) -> tuple[list[AgentClient], list[asyncio.Task[None]]]:
    """Connect, report status and start answering heartbeats at once, batch by batch (a
    connected agent that waited silently for the others would be dropped as dead)."""

    async def one(i: int, key: str) -> AgentClient:
        agent = await AgentClient.connect(url, key=key)
        await agent.send_status(hostname=f"idle-{i}")
        return agent

    agents: list[AgentClient] = []
    readers: list[asyncio.Task[None]] = []
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        connected = await asyncio.gather(*(one(start + i, k) for i, k in enumerate(chunk)))
        readers += [asyncio.create_task(_answer(a)) for a in connected]
        agents += connected
    return agents, readers


class Stream:
    def __init__(self, agent: AgentClient, viewer: ViewerClient, session_id: str) -> None:
        self.agent, self.viewer, self.session_id = agent, viewer, session_id
        self.sent = 0
        self.received = 0

    async def send(self, fps: int, frame_bytes: int, until: float) -> None:
        frame = encode(VideoFrame(session_id=self.session_id, data=b"\x05" * frame_bytes))
        period = 1 / fps
        next_at = time.monotonic()
        while time.monotonic() < until:
            await self.agent.send_raw(frame)
            self.sent += 1
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def count(self) -> None:
        with contextlib.suppress(ClientError, Exception):
            while True:
                envelope = await self.viewer.recv()
                if envelope.HasField("video_frame"):
                    self.received += 1


async def _abusers(
    url: str, api: ApiClient, session_id: str, key: str, stop: float, *, stalled_viewer: bool
) -> list[bool]:
    """Run the abusers until ``stop``; True for each one the server cut off."""
    host, port = url.removeprefix("http://").split(":")

    async def slowloris() -> bool:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /ws/agent HTTP/1.1\r\nHost: x\r\n")
        try:
            async with asyncio.timeout(max(1.0, stop - time.monotonic())):
                while await reader.read(4096):
                    pass
            return True
        except (TimeoutError, ConnectionError):
            return False
        finally:
            writer.transport.abort()

    async def never_reads() -> bool:
        ticket = await api.viewer_ticket(session_id, "view")
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ws = await connect(
            f"{ws_base(url)}/ws/viewer?session_id={session_id}&ticket={ticket}",
            sock=sock,
            proxy=None,
            ping_interval=None,
            max_queue=1,
        )
        try:
            # Until it is cut off: stalled, then closed, then its socket aborted.
            while time.monotonic() < stop + NEVER_READS_GRACE:
                # It talks (so the heartbeat would keep it) but never reads.
                await ws.send(encode(Heartbeat(sent_at_ms=1, reply=True)))
                await asyncio.sleep(0.2)
        except Exception:
            return True
        finally:
            ws.transport.abort()
        return False

    async def garbage_agent() -> bool:
        cut = 0
        while time.monotonic() < stop - 0.5:
            agent = await AgentClient.connect(url, key=key)
            await agent.ws.send(b"\xff" * 32)
            code, _ = await agent.wait_closed(timeout=5)
            cut += code == 4400
            await asyncio.sleep(0.2)
        return cut > 0

    jobs = [slowloris() for _ in range(20)] + [garbage_agent()]
    if stalled_viewer:
        jobs.append(never_reads())
    return list(await asyncio.gather(*jobs))


async def run(
    *,
    agents: int,
    sessions: int,
    seconds: float,
    fps: int = 30,
    frame_kib: int = 32,
    database_url: str | None = None,
    workdir: Path | None = None,
    stalled_viewer: bool = True,
) -> Report:
    with tempfile.TemporaryDirectory(prefix="guruconnect-load-") as tmp:
        work = workdir or Path(tmp)
        url_db = database_url or f"sqlite+aiosqlite:///{work / 'load.db'}"
        env = {
            "JWT_SECRET": secrets.token_urlsafe(48),
            "DATABASE_URL": url_db,
            "GURUCONNECT_WS_CONNECT_RATE_LIMIT": "1000000/minute",
            "GURUCONNECT_LOGIN_RATE_LIMIT": "1000/minute",
            "GURUCONNECT_HEADER_TIMEOUT_SECONDS": "2",
            "GURUCONNECT_HEARTBEAT_INTERVAL_SECONDS": "5",
            "GURUCONNECT_LOG_LEVEL": "WARNING",
            "GURUCONNECT_LOG_FORMAT": "json",
            "GURUCONNECT_ARGON2_TIME_COST": "1",
            "GURUCONNECT_ARGON2_MEMORY_COST_KIB": "1024",
            "GURUCONNECT_ARGON2_PARALLELISM": "1",
        }
        server = ServerProcess(env, work / "server.log", cwd=work)
        server.start()
        try:
            settings = DatabaseSettings(database_url=url_db)
            await admin.create_user(settings, "root", PASSWORD, admin=True)
            keys = await _issue_keys(settings, agents + sessions + 1)
            idle_keys, stream_keys, abuse_key = keys[:agents], keys[agents:-1], keys[-1]
            api = ApiClient(server.url)
            await api.login("root", PASSWORD)
            await asyncio.sleep(0.5)
            rss_before = server.rss_bytes()

            started = time.monotonic()
            idle, readers = await _connect_idle(server.url, idle_keys)
            connect_seconds = time.monotonic() - started
            await asyncio.sleep(1.0)
            rss_idle = server.rss_bytes()

            streams = []
            for key in stream_keys:
                agent = await AgentClient.connect(server.url, key=key)
                await agent.send_status()
                await api.set_consent_policy(agent.auth.machine_id, "unattended")
                session = await api.request_session(agent.auth.machine_id, "control")
                await agent.expect("keyframe_request")
                ticket = await api.viewer_ticket(str(session["id"]), "view")
                viewer = await ViewerClient.connect(server.url, str(session["id"]), ticket)
                streams.append(Stream(agent, viewer, str(session["id"])))
            counters = [asyncio.create_task(s.count()) for s in streams]
            agent_readers = [asyncio.create_task(_answer(s.agent)) for s in streams]
            until = time.monotonic() + seconds
            abuse = asyncio.create_task(
                _abusers(
                    server.url,
                    api,
                    streams[0].session_id,
                    abuse_key,
                    until,
                    stalled_viewer=stalled_viewer,
                )
            )
            await asyncio.gather(*(s.send(fps, frame_kib * 1024, until) for s in streams))
            rss_streaming = server.rss_bytes()
            await asyncio.sleep(0.5)  # the last frames in flight
            cut_off = await abuse
            rates = [s.received / seconds for s in streams]
            share = sum(s.received for s in streams) / max(1, sum(s.sent for s in streams))
            held = sum(1 for a in idle if a.close_code is None)

            for task in [*readers, *counters, *agent_readers]:
                task.cancel()
            for conn in [*idle, *(s.agent for s in streams), *(s.viewer for s in streams)]:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await conn.close()
            await api.aclose()
        finally:
            server.stop()
    mib = 1024 * 1024
    return Report(
        agents=agents,
        agents_held=held,
        sessions=sessions,
        seconds=seconds,
        rss_before_mib=rss_before / mib,
        rss_idle_mib=rss_idle / mib,
        rss_streaming_mib=rss_streaming / mib,
        kib_per_idle_agent=(rss_idle - rss_before) / max(1, agents) / 1024,
        connect_seconds=connect_seconds,
        fps_target=fps,
        fps_min=min(rates),
        fps_median=statistics.median(rates),
        frames_delivered_share=share,
        abusers_cut_off=sum(cut_off),
        abusers=len(cut_off),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frame-kib", type=int, default=32)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    report = asyncio.run(
        run(
            agents=args.agents,
            sessions=args.sessions,
            seconds=args.seconds,
            fps=args.fps,
            frame_kib=args.frame_kib,
            database_url=args.database_url,
        )
    )
    print(report.table())
    if args.json:
        print(json.dumps(asdict(report)))


if __name__ == "__main__":
    main()

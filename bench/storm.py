"""A reconnect storm: every agent comes back at once after the server restarts.

The server runs as its own process (``guruconnect server``); the agents are light fakes in
this process (a raw WebSocket client on asyncio streams: the upgrade, AuthResult, answers to
heartbeats, nothing else), so thousands fit beside the server on two cores. For each tree
(this one, and a baseline checkout of another commit, run in the SAME run) and database:

1. a fresh server; the agents' keys are written to its database; the agents connect (their
   first connect binds each key to a new machine) a few hundred at a time; the server's
   RSS before and after gives the memory per idle agent;
2. the server is killed (SIGKILL, as in a crash) and started again on the same port; every
   agent retries at once (a short random pause between refused attempts). Reported: time
   from the new server answering ``/health`` until every agent is back, and the server's
   CPU time per connect (between the first and the last agent back);
3. for three heartbeat intervals after that, the gaps between the heartbeats each agent
   receives (p50, p99, max, against the setting), and how many agents dropped meanwhile.

    .venv/bin/python bench/storm.py                          # 5,000 agents, SQLite
    .venv/bin/python bench/storm.py --agents 1000 --database sqlite postgresql
    .venv/bin/python bench/storm.py --baseline-tree /path/to/other/checkout

The baseline defaults to a ``git worktree`` of ``--baseline-ref`` (4f04c1f, before issue 14)
under /tmp/issue-14-relay/; its server runs with that tree's ``src`` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import secrets
import statistics
import struct
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from guruconnect.protocol import Heartbeat, decode, encode, peek_type
from guruconnect.server.auth import secrets_format
from guruconnect.server.background import ServerProcess
from guruconnect.server.db import agent_keys, tenants
from guruconnect.server.db.engine import create_engine

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "GURUCONNECT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
#: Scratch space (and the baseline checkout) for this branch's runs.
WORK = Path(tempfile.gettempdir()) / "issue-14-relay"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


# -- a fake agent --------------------------------------------------------------------------


def _frame(payload: bytes, opcode: int = 2) -> bytes:
    """A client frame: masked, as the protocol requires (an all-zero mask leaves the
    payload as it is, which saves the XOR)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(n)


@dataclass(eq=False)
class Agent:
    key: str
    online: bool = False
    connects: int = 0
    drops: int = 0
    beats: list[float] = field(default_factory=list)
    writer: asyncio.StreamWriter | None = None


class Fleet:
    def __init__(self, keys: list[str], port: int) -> None:
        self.agents = [Agent(k) for k in keys]
        self.port = port
        self.online = 0
        self.stopping = False
        self.on_online: list[asyncio.Future[None]] = []
        self.first_back: tuple[float, int] | None = None  # (time, server CPU ticks)
        self.last_back: tuple[float, int] | None = None
        self.server_pid = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._gate: asyncio.Semaphore | None = None

    def start(self, *, concurrency: int | None = None) -> None:
        self._gate = asyncio.Semaphore(concurrency) if concurrency else None
        self._tasks = [asyncio.create_task(self._run(a)) for a in self.agents]

    def lift_gate(self) -> None:
        self._gate = None

    async def wait_all(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.online < len(self.agents):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def _back(self, agent: Agent) -> None:
        agent.online = True
        agent.connects += 1
        self.online += 1
        mark = (time.monotonic(), server_cpu_ticks(self.server_pid))
        if self.first_back is None:
            self.first_back = mark
        if self.online == len(self.agents):
            self.last_back = mark

    async def _run(self, agent: Agent) -> None:
        while not self.stopping:
            gate = self._gate
            if gate is None:
                reader = await self._connect(agent)
            else:
                async with gate:
                    reader = await self._connect(agent)
            if reader is not None:
                self._back(agent)
                await self._serve(agent, reader)
                agent.online = False
                self.online -= 1
                agent.drops += 1
            self._drop(agent)
            if not self.stopping:
                await asyncio.sleep(random.uniform(0.05, 0.3))

    async def _connect(self, agent: Agent) -> asyncio.StreamReader | None:
        """Upgrade and authenticate; the reader once AuthResult has arrived."""
        try:
            reader, agent.writer = await asyncio.open_connection("127.0.0.1", self.port)
            nonce = base64.b64encode(secrets.token_bytes(16)).decode()
            agent.writer.write(
                (
                    "GET /ws/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    f"Sec-WebSocket-Key: {nonce}\r\nAuthorization: Bearer {agent.key}\r\n\r\n"
                ).encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                return None
            while True:
                opcode, payload = await _read_frame(reader)
                if opcode == 8:
                    return None
                if opcode == 2 and peek_type(payload) == "auth_result":
                    return reader
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return None

    async def _serve(self, agent: Agent, reader: asyncio.StreamReader) -> None:
        """Answer heartbeats (and protocol pings) until the socket ends."""
        writer = agent.writer
        assert writer is not None
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while not self.stopping:
                opcode, payload = await _read_frame(reader)
                if opcode == 8:  # close: answer it and go
                    writer.write(_frame(payload[:2], 8))
                    return
                if opcode == 9:  # a protocol ping (the baseline's uvicorn sends them)
                    writer.write(_frame(payload, 10))
                elif opcode == 2 and peek_type(payload) == "heartbeat":
                    beat = decode(payload).heartbeat
                    if not beat.reply:
                        agent.beats.append(time.monotonic())
                        reply = encode(Heartbeat(sent_at_ms=beat.sent_at_ms, reply=True))
                        writer.write(_frame(reply))

    @staticmethod
    def _drop(agent: Agent) -> None:
        if agent.writer is not None:
            agent.writer.close()
            agent.writer = None

    async def stop(self) -> None:
        self.stopping = True
        for agent in self.agents:
            self._drop(agent)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def server_cpu_ticks(pid: int) -> int:
    if not pid:
        return 0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


# -- one run -------------------------------------------------------------------------------


@dataclass
class Figures:
    tree: str
    database: str
    agents: int
    first_connect_s: float
    kib_per_agent: float
    load_memory: str
    storm_s: float
    cpu_ms_per_connect: float
    back: int
    load_storm: str
    gap_p50: float
    gap_p99: float
    gap_max: float
    late_beats: int
    beats: int
    drops: int
    load_beats: str


async def _issue_keys(url: str, schema: str | None, count: int) -> list[str]:
    engine = create_engine(url, schema=schema)
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
                    label=f"storm-{i}",
                    machine_id=None,
                    created_by=None,
                )
                keys.append(new.key)
    finally:
        await engine.dispose()
    return keys


async def _drop_schema(schema: str) -> None:
    from sqlalchemy import text

    engine = create_engine(POSTGRES_URL)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


async def one_run(
    tree: str,
    src: Path,
    database: str,
    agents: int,
    interval: float,
    work: Path,
    storm_timeout: float = 600,
) -> Figures:
    schema = None
    if database == "postgresql":
        url = POSTGRES_URL
        schema = f"storm_{uuid.uuid4().hex[:12]}"
    else:
        url = f"sqlite+aiosqlite:///{work / f'{tree}.db'}"
    env = {
        "PYTHONPATH": str(src),
        "JWT_SECRET": secrets.token_urlsafe(48),
        "DATABASE_URL": url,
        "GURUCONNECT_WS_CONNECT_RATE_LIMIT": "100000000/minute",
        "GURUCONNECT_HEADER_TIMEOUT_SECONDS": "30",
        "GURUCONNECT_AUTH_TIMEOUT_SECONDS": "60",
        "GURUCONNECT_HEARTBEAT_INTERVAL_SECONDS": str(interval),
        "GURUCONNECT_LOG_LEVEL": "WARNING",
        "GURUCONNECT_LOG_FORMAT": "json",
    }
    if schema:
        env["GURUCONNECT_DATABASE_SCHEMA"] = schema
    server = ServerProcess(env, work / f"{tree}-{database}.log", cwd=work)
    fleet: Fleet | None = None
    try:
        await asyncio.to_thread(server.start, 60)
        keys = await _issue_keys(url, schema, agents)
        await asyncio.sleep(1.0)
        rss_before = server.rss_bytes()
        fleet = Fleet(keys, server.port)
        fleet.server_pid = server.pid
        started = time.monotonic()
        fleet.start(concurrency=200)
        if not await fleet.wait_all(600):
            raise RuntimeError(f"only {fleet.online} of {agents} agents connected")
        first_connect = time.monotonic() - started
        fleet.lift_gate()
        await asyncio.sleep(interval + 1)
        rss_idle = server.rss_bytes()
        load_memory = load()

        # The restart: kill, start again on the same port, let every agent back at once.
        await asyncio.to_thread(server.kill)
        fleet.first_back = fleet.last_back = None
        await asyncio.to_thread(server.start, 60)
        fleet.server_pid = server.pid
        healthy = time.monotonic()
        all_back = await fleet.wait_all(storm_timeout)
        storm = time.monotonic() - healthy
        load_storm = load()
        back = fleet.online
        cpu_ms = 0.0
        if fleet.first_back and fleet.last_back and back > 1:
            ticks = fleet.last_back[1] - fleet.first_back[1]
            cpu_ms = 1000 * ticks / CLK_TCK / (back - 1)
        if not all_back:
            storm = float("nan")

        # Heartbeats once everyone is back.
        for agent in fleet.agents:
            agent.beats.clear()
        drops_before = sum(a.drops for a in fleet.agents)
        await asyncio.sleep(3 * interval + 0.5)
        load_beats = load()
        gaps = [
            b - a
            for agent in fleet.agents
            for a, b in zip(agent.beats, agent.beats[1:], strict=False)
        ]
        drops = sum(a.drops for a in fleet.agents) - drops_before
    finally:
        if fleet is not None:
            await fleet.stop()
        server.stop()
        if schema:
            await _drop_schema(schema)
    gaps.sort()
    return Figures(
        tree=tree,
        database=database,
        agents=agents,
        first_connect_s=first_connect,
        kib_per_agent=(rss_idle - rss_before) / agents / 1024,
        load_memory=load_memory,
        storm_s=storm,
        cpu_ms_per_connect=cpu_ms,
        back=back,
        load_storm=load_storm,
        gap_p50=statistics.median(gaps) if gaps else float("nan"),
        gap_p99=gaps[int(0.99 * (len(gaps) - 1))] if gaps else float("nan"),
        gap_max=gaps[-1] if gaps else float("nan"),
        late_beats=sum(1 for g in gaps if g > 1.1 * interval),
        beats=len(gaps),
        drops=drops,
        load_beats=load_beats,
    )


def baseline_tree(ref: str) -> Path:
    path = WORK / f"baseline-{ref}"
    if not (path / "src" / "guruconnect").is_dir():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref],
            check=True,
            capture_output=True,
        )
    return path


def table(rows: list[Figures], interval: float) -> str:
    out = []
    for db in dict.fromkeys(r.database for r in rows):
        mine = next((r for r in rows if r.database == db and r.tree == "this"), None)
        base = next((r for r in rows if r.database == db and r.tree == "baseline"), None)
        out.append(f"\n== {db}, {rows[0].agents} agents, heartbeat interval {interval:g} s ==")
        header = f"{'figure':<34}{'this tree':>14}{'baseline':>14}{'ratio':>8}   goal"
        out.append(header)

        def line(
            name: str,
            attr: str,
            unit: str,
            goal: str,
            fmt: str = ".1f",
            mine: Figures | None = mine,
            base: Figures | None = base,
        ) -> None:
            a = getattr(mine, attr) if mine else float("nan")
            b = getattr(base, attr) if base else float("nan")
            ratio = a / b if b else float("nan")
            out.append(
                f"{name:<34}{format(a, fmt) + unit:>14}{format(b, fmt) + unit:>14}"
                f"{ratio:>8.2f}   {goal}"
            )

        line("first connect, all agents", "first_connect_s", " s", "")
        line("server memory per idle agent", "kib_per_agent", " KiB", "<= 32 KiB")
        line("storm: healthy -> all back", "storm_s", " s", "5k in <= 30 s")
        line("server CPU per connect (storm)", "cpu_ms_per_connect", " ms", "<= 4 ms", ".2f")
        line("heartbeat gap p50", "gap_p50", " s", f"= {interval:g} s", ".2f")
        line("heartbeat gap p99", "gap_p99", " s", f"= {interval:g} s", ".2f")
        line("heartbeat gap max", "gap_max", " s", "", ".2f")
        line("beats > 1.1x interval", "late_beats", "", "0", ".0f")
        line("agents dropped after the storm", "drops", "", "0", ".0f")
        for r in (mine, base):
            if r is not None:
                out.append(
                    f"  {r.tree}: memory at {r.load_memory}; storm at {r.load_storm}; "
                    f"beats at {r.load_beats}; back {r.back}/{r.agents}; "
                    f"{r.beats} beat gaps"
                )
    return "\n".join(out)


async def run(args: argparse.Namespace) -> None:
    trees: list[tuple[str, Path]] = [("this", ROOT / "src")]
    if not args.no_baseline:
        base = args.baseline_tree or baseline_tree(args.baseline_ref)
        trees.append(("baseline", Path(base) / "src"))
    rows = []
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="storm-", dir=WORK) as tmp:
        for database in args.database:
            for tree, src in trees:
                print(f"running {tree} on {database} ({load()}) ...", flush=True)
                figures = await one_run(
                    tree, src, database, args.agents, args.interval, Path(tmp), args.storm_timeout
                )
                print(f"  {figures}", flush=True)
                rows.append(figures)
    print(table(rows, args.interval))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument(
        "--database", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--interval", type=float, default=5.0, help="heartbeat seconds")
    parser.add_argument("--baseline-ref", default="4f04c1f")
    parser.add_argument("--baseline-tree", type=Path, help="a checkout to compare against")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--storm-timeout", type=float, default=600, help="give up on the storm after this"
    )
    args = parser.parse_args()
    with contextlib.suppress(ValueError, OSError):
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

"""Relay throughput and latency against a bare forwarder on the same stack.

Both servers run as their own processes on loopback (so the clients in this process do not
share a GIL with them), both under uvicorn with the same WebSocket settings:

- **relay**: ``guruconnect server`` — auth, session routing, consent gating, per-viewer
  bounded queues; one agent streams ``VideoFrame`` envelopes to N viewers.
- **baseline**: a Starlette endpoint written here that forwards every message from the one
  source to every sink and back, with no auth, no parsing and no queues.

For each frame size and viewer count it prints MB/s and frames/s delivered to each viewer,
the share of frames delivered, and relay/baseline ratios; then round-trip latency of small
messages, and the rate of three viewers while a fourth has stopped reading.

With ``--baseline-ref`` (or ``--baseline-tree``) a third server runs too: the relay as it
was at that commit (a ``git worktree`` under /tmp/issue-14-relay/, its ``src`` first on
PYTHONPATH), measured in the same run, interleaved, against the same bare forwarder; so
"before" and "after" are ratios taken side by side. Every row carries the load average.

    .venv/bin/python bench/relay.py            # full run
    .venv/bin/python bench/relay.py --quick    # smaller, for a smoke check
    .venv/bin/python bench/relay.py --baseline-ref 4f04c1f --sizes 16 --viewers 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import websockets
from websockets.asyncio.client import ClientConnection

from guruconnect.client import AgentClient, ApiClient, ViewerClient
from guruconnect.protocol import ChatMessage, Codec, KeyEvent, VideoFrame, encode, peek_type

MAX_SIZE = 8 * 1024 * 1024
END = b"END"
PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway bench user


# -- the baseline server (run as a subprocess: `relay.py --serve-baseline PORT`) -----------


def serve_baseline(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    sinks: set[WebSocket] = set()
    sources: set[WebSocket] = set()

    async def source(ws: WebSocket) -> None:
        await ws.accept()
        sources.add(ws)
        try:
            while True:
                data = await ws.receive_bytes()
                for sink in list(sinks):
                    await sink.send_bytes(data)
        except WebSocketDisconnect:
            sources.discard(ws)

    async def sink(ws: WebSocket) -> None:
        await ws.accept()
        sinks.add(ws)
        try:
            while True:
                data = await ws.receive_bytes()
                for src in list(sources):
                    await src.send_bytes(data)
        except WebSocketDisconnect:
            sinks.discard(ws)

    app = Starlette(routes=[WebSocketRoute("/source", source), WebSocketRoute("/sink", sink)])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=MAX_SIZE,
        log_level="warning",
    )


# -- process management ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


@dataclass
class Servers:
    relay_url: str
    baseline_url: str
    #: The relay at the baseline commit, when asked for.
    old_url: str | None = None


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def baseline_tree(ref: str) -> Path:
    """A checkout of ``ref`` (made once, kept for later runs)."""
    path = Path(tempfile.gettempdir()) / "issue-14-relay" / f"baseline-{ref}"
    if not (path / "src" / "guruconnect").is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "git",
                "-C",
                str(Path(__file__).parent),
                "worktree",
                "add",
                "--detach",
                str(path),
                ref,
            ],
            check=True,
            capture_output=True,
        )
    return path


def _start_relay(workdir: Path, name: str, src: Path | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / f'{name}.db'}",
        "GURUCONNECT_LOG_LEVEL": "WARNING",
        "GURUCONNECT_LOGIN_RATE_LIMIT": "10000/minute",
        "GURUCONNECT_WS_CONNECT_RATE_LIMIT": "10000/minute",
        "GURUCONNECT_INPUT_EVENTS_PER_SECOND": "100000",
        "GURUCONNECT_HEARTBEAT_INTERVAL_SECONDS": "60",
    }
    if src is not None:
        env["PYTHONPATH"] = str(src)
    cli = [sys.executable, "-m", "guruconnect"]
    subprocess.run(
        [*cli, "admin", "create-user", "bench", "--admin"],
        input=PASSWORD.encode(),
        env=env,
        check=True,
        capture_output=True,
        cwd=workdir,
    )
    proc = subprocess.Popen(
        [*cli, "server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    return proc, port


@contextlib.contextmanager
def servers(workdir: Path, old_src: Path | None = None) -> Servers:  # type: ignore[misc]
    baseline_port = free_port()
    procs: list[tuple[subprocess.Popen[bytes], int]] = [_start_relay(workdir, "relay", None)]
    if old_src is not None:
        procs.append(_start_relay(workdir, "old", old_src))
    baseline = subprocess.Popen(
        [sys.executable, __file__, "--serve-baseline", str(baseline_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append((baseline, baseline_port))
    try:
        for proc, port in procs:
            wait_port(port, proc)
        urls = [f"http://127.0.0.1:{port}" for _, port in procs[:-1]]
        yield Servers(
            urls[0], f"ws://127.0.0.1:{baseline_port}", urls[1] if len(urls) > 1 else None
        )
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


# -- one measured run ---------------------------------------------------------------------
#
# Each viewer (or baseline sink) is its own process, as it would be its own machine: one
# Python process reading four sockets would measure its own scheduling, not the server.


@dataclass
class Result:
    seconds: float
    frames: list[int]  # delivered, per viewer
    sent: int
    size: int

    @property
    def mb_per_s(self) -> float:
        """Payload delivered per viewer per second (mean over viewers)."""
        return statistics.fmean(self.frames) * self.size / self.seconds / 1e6

    @property
    def frames_per_s(self) -> float:
        return statistics.fmean(self.frames) / self.seconds

    @property
    def delivered(self) -> float:
        return statistics.fmean(self.frames) / self.sent


async def read_until_end(argv: list[str]) -> None:
    """Reader process: connect, say ready, count frames until the end marker, report."""
    mode, url = argv[0], argv[1]
    frames, last = 0, time.time()
    if mode in {"relay", "stuck"}:
        viewer = await ViewerClient.connect(url, argv[2], argv[3])
        print("ready", flush=True)
        if mode == "stuck":
            await asyncio.to_thread(sys.stdin.read)  # never reads the socket; ends with stdin
            return
        # The end marker is a control message and may overtake queued frames: after it,
        # keep counting until the line goes quiet.
        ended = False
        while True:
            try:
                data = await viewer.recv_raw(0.5 if ended else 120)
            except TimeoutError:
                break
            kind = peek_type(data)
            if kind == "chat":
                ended = True
            elif kind == "video_frame":
                frames, last = frames + 1, time.time()
    else:
        sink = await open_baseline(url, "/sink")
        print("ready", flush=True)
        while (data := await sink.recv()) != END:
            frames, last = frames + 1, time.time()
    print(frames, last, flush=True)


class Readers:
    def __init__(self, procs: list[asyncio.subprocess.Process]) -> None:
        self.procs = procs

    @classmethod
    async def start(cls, argvs: list[list[str]]) -> Readers:
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--read",
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for argv in argvs
        ]
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if line.strip() != b"ready":
                raise RuntimeError(f"reader did not start: {line!r}")
        return cls(procs)

    async def results(self, readers: int) -> list[tuple[int, float]]:
        out = []
        for proc in self.procs[:readers]:
            assert proc.stdout is not None
            frames, last = (await asyncio.wait_for(proc.stdout.readline(), 120)).split()
            out.append((int(frames), float(last)))
        return out

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await proc.wait()


async def measure(
    send: Send, readers: Readers, reading: int, frame: bytes, end: bytes, count: int, size: int
) -> Result:
    started = time.time()
    for _ in range(count):
        await send(frame)
    await send(end)
    results = await readers.results(reading)
    seconds = max(last for _, last in results) - started
    return Result(seconds, [frames for frames, _ in results], count, size)


Send = Callable[[bytes], Awaitable[None]]


async def relay_session(
    url: str, api: ApiClient, viewers: int
) -> tuple[AgentClient, list[ViewerClient], str]:
    key = await api.issue_agent_key("bench")
    agent = await AgentClient.connect(url, key=key["key"])
    await agent.send_status(encoders=[Codec.CODEC_RAW_ZSTD])
    machine_id = agent.auth.machine_id
    await api.set_consent_policy(machine_id, "unattended")
    session = await api.request_session(machine_id)
    await agent.expect("session_request")
    clients = []
    for _ in range(viewers):
        ticket = await api.viewer_ticket(session["id"])
        clients.append(await ViewerClient.connect(url, session["id"], ticket))
    return agent, clients, session["id"]


async def drain(conn: ViewerClient | AgentClient, seconds: float = 0.2) -> None:
    with contextlib.suppress(TimeoutError):
        while True:
            await conn.recv_raw(seconds)


async def relay_run(
    url: str, api: ApiClient, size: int, count: int, viewers: int, stuck: int = 0
) -> Result:
    agent, _, session_id = await relay_session(url, api, 0)
    argvs = [
        ["stuck" if i >= viewers else "relay", url, session_id, await api.viewer_ticket(session_id)]
        for i in range(viewers + stuck)
    ]
    readers = await Readers.start(argvs)
    frame = encode(VideoFrame(session_id=session_id, data=os.urandom(size)))
    try:
        return await measure(
            agent.send_raw, readers, viewers, frame, encode(ChatMessage(text="END")), count, size
        )
    finally:
        await api.end_session(session_id)
        await agent.close()
        await readers.stop()


async def open_baseline(url: str, path: str) -> ClientConnection:
    return await websockets.connect(
        url + path, compression=None, max_size=MAX_SIZE, ping_interval=None, proxy=None
    )


async def baseline_run(url: str, size: int, count: int, viewers: int) -> Result:
    readers = await Readers.start([["base", url] for _ in range(viewers)])
    source = await open_baseline(url, "/source")
    try:
        return await measure(source.send, readers, viewers, os.urandom(size), END, count, size)
    finally:
        await source.close()
        await readers.stop()


# -- latency ------------------------------------------------------------------------------


async def relay_rtt(url: str, api: ApiClient, rounds: int) -> list[float]:
    """Agent -> relay -> viewer (a small frame), viewer -> relay -> agent (a key event)."""
    agent, [viewer], session_id = await relay_session(url, api, 1)
    await drain(viewer)
    await drain(agent)
    ping = encode(VideoFrame(session_id=session_id, data=b"p" * 64))
    pong = encode(KeyEvent(scan_code=30, down=True))
    samples = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            await agent.send_raw(ping)
            await viewer.recv_raw(10)
            await viewer.send_raw(pong)
            while peek_type(await agent.recv_raw(10)) != "key_event":
                pass
            samples.append((time.perf_counter() - started) * 1e6)
    finally:
        await api.end_session(session_id)
        await agent.close()
        await viewer.close()
    return samples


async def baseline_rtt(url: str, rounds: int) -> list[float]:
    sink = await open_baseline(url, "/sink")
    source = await open_baseline(url, "/source")
    samples = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            await source.send(b"p" * 64)
            await sink.recv()
            await sink.send(b"k" * 8)
            await source.recv()
            samples.append((time.perf_counter() - started) * 1e6)
    finally:
        await source.close()
        await sink.close()
    return samples


# -- a viewer that stops reading ----------------------------------------------------------


async def slow_viewer_run(url: str, api: ApiClient, size: int, count: int) -> tuple[Result, Result]:
    """Three reading viewers alone, then the same three with a fourth that never reads."""
    healthy = await relay_run(url, api, size, count, 3)
    with_stuck = await relay_run(url, api, size, count, 3, stuck=1)
    return healthy, with_stuck


# -- main -----------------------------------------------------------------------------------


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median_result(results: list[Result]) -> Result:
    return sorted(results, key=lambda r: r.mb_per_s)[len(results) // 2]


async def run(args: argparse.Namespace) -> None:
    quick: bool = args.quick
    repeat: int = 1 if quick else args.repeat
    total = (16 if quick else 64) * 1024 * 1024
    sizes = [k * 1024 for k in args.sizes]
    old_src = None
    if args.baseline_tree or args.baseline_ref:
        old_src = (args.baseline_tree or baseline_tree(args.baseline_ref)) / "src"
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp), old_src) as urls:
        async with contextlib.AsyncExitStack() as stack:
            api = await stack.enter_async_context(ApiClient(urls.relay_url))
            await api.login("bench", PASSWORD)
            old_api = None
            if urls.old_url is not None:
                old_api = await stack.enter_async_context(ApiClient(urls.old_url))
                await old_api.login("bench", PASSWORD)
            await run_with(args, urls, api, old_api, total, sizes, repeat)


async def run_with(
    args: argparse.Namespace,
    urls: Servers,
    api: ApiClient,
    old_api: ApiClient | None,
    total: int,
    sizes: list[int],
    repeat: int,
) -> None:
    quick: bool = args.quick
    old = old_api is not None and urls.old_url is not None
    print(
        f"relay vs bare forwarder, loopback, {total // 2**20} MiB per case, median of "
        f"{repeat}; the agent and each viewer in processes of their own"
        + (f"; 'old': the relay at {args.baseline_ref or args.baseline_tree}" if old else "")
    )
    header = (
        f"{'frame':>8} {'viewers':>7} | {'relay MB/s':>10} {'fr/s':>7} {'deliv':>6} | "
        f"{'base MB/s':>9} {'fr/s':>7} {'deliv':>6} | {'ratio':>5}"
        + (f" | {'old MB/s':>8} {'old ratio':>9}" if old else "")
        + " | load"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        count = max(8, total // size)
        for viewers in args.viewers:
            # Interleaved repeats, median by throughput: a 2-core machine running
            # six processes is noisy, and drift should hit both sides alike.
            bases, relays, olds = [], [], []
            for _ in range(repeat):
                bases.append(await baseline_run(urls.baseline_url, size, count, viewers))
                relays.append(await relay_run(urls.relay_url, api, size, count, viewers))
                if old_api is not None and urls.old_url is not None:
                    olds.append(await relay_run(urls.old_url, old_api, size, count, viewers))
            base = median_result(bases)
            relay = median_result(relays)
            line = (
                f"{size // 1024:>6}Ki {viewers:>7} | {relay.mb_per_s:>10.1f} "
                f"{relay.frames_per_s:>7.0f} {relay.delivered:>6.0%} | "
                f"{base.mb_per_s:>9.1f} {base.frames_per_s:>7.0f} "
                f"{base.delivered:>6.0%} | {relay.mb_per_s / base.mb_per_s:>5.2f}"
            )
            if olds:
                before = median_result(olds)
                line += f" | {before.mb_per_s:>8.1f} {before.mb_per_s / base.mb_per_s:>9.2f}"
            print(f"{line} | {load()}", flush=True)
    rounds = 200 if quick else 1000
    # In blocks, interleaved, so that a burst of load elsewhere hits every side alike.
    blocks = 5
    relay_lat: list[float] = []
    base_lat: list[float] = []
    old_lat: list[float] = []
    for _ in range(blocks):
        relay_lat += await relay_rtt(urls.relay_url, api, rounds // blocks)
        base_lat += await baseline_rtt(urls.baseline_url, rounds // blocks)
        if old_api is not None and urls.old_url is not None:
            old_lat += await relay_rtt(urls.old_url, old_api, rounds // blocks)
    print()
    print(f"round trip, 64-byte frame out + key event back, {rounds} rounds (µs); {load()}")
    print(f"{'':>10} {'p50':>8} {'p99':>8} {'p50/base':>9} {'+p50 µs':>8}")
    sides = [("relay", relay_lat), ("baseline", base_lat)]
    if old_lat:
        sides.append(("old relay", old_lat))
    for name, samples in sides:
        print(
            f"{name:>10} {pct(samples, 0.5):>8.0f} {pct(samples, 0.99):>8.0f} "
            f"{pct(samples, 0.5) / pct(base_lat, 0.5):>9.2f} "
            f"{pct(samples, 0.5) - pct(base_lat, 0.5):>8.0f}"
        )
    if args.no_slow_viewer:
        return
    size = 256 * 1024
    healthy, with_stuck = await slow_viewer_run(urls.relay_url, api, size, max(8, total // size))
    print()
    print("three reading viewers, 256 KiB frames, without and with a 4th that never reads")
    print(f"{'':>14} {'MB/s':>8} {'fr/s':>7} {'deliv':>6}")
    for name, result in (("3 viewers", healthy), ("3 + stuck", with_stuck)):
        print(
            f"{name:>14} {result.mb_per_s:>8.1f} {result.frames_per_s:>7.0f} "
            f"{result.delivered:>6.0%}"
        )
    print(f"{'ratio':>14} {with_stuck.mb_per_s / healthy.mb_per_s:>8.2f}  ({load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[16, 256, 2048], help="frame sizes, KiB"
    )
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--baseline-ref", help="also run the relay at this commit")
    parser.add_argument("--baseline-tree", type=Path, help="also run the relay in this checkout")
    parser.add_argument("--no-slow-viewer", action="store_true", help="skip that part")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--read", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    if args.read:
        asyncio.run(read_until_end(args.read))
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

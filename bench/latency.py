"""Latency the way a user sees it: glass to glass, and key press to X event, new vs baseline.

Everything is real and in processes of its own: Xvfb, the server (``guruconnect server`` on
SQLite), the agent (``guruconnect agent`` on that Xvfb), and small X clients written here
(``--x-client``) that draw on the display, animate part of it, and receive key presses.

- **Glass to glass**: an X client fills a square with a new colour; the time runs from just
  before its request until a viewer's *decoded* picture shows the colour at the square's
  centre: the Python reference viewer (``guruconnect.client``, decoding every frame), and
  Chromium's viewer page, polled on ``requestAnimationFrame`` (the visible canvas drawn onto
  a 1x1 canvas and read back, so it works whichever thread decodes). Raw tiles and H.264; an
  idle desktop, and with motion elsewhere on the screen (another X client animating a
  region at 60 fps). Samples are spaced by random gaps so they fall at every phase of the
  agent's capture.
- **Key press -> X event**: the viewer sends a key; the time runs until an X client on the
  agent's display (holding the keyboard focus) reads the KeyPress. Also while the viewer
  moves the pointer at 100 Hz: each move is injected too, and a key waits behind any move
  not yet handled.

Clocks: the X clients stamp ``CLOCK_MONOTONIC`` (shared by all processes); the page's
``performance.now()`` is tied to it by the round trip of least delay among a few probes.

Baseline in the same run: ``--baseline REV`` (default 4f04c1f) runs the server and the agent
of that revision from a temporary ``git worktree`` (``PYTHONPATH`` to its ``src``), each
revision on an X server of its own; the two are measured in alternating rounds so load
drift hits both alike. Each figure is printed with the 1-minute load average at the time.

    .venv/bin/python bench/latency.py                # full run (10+ minutes on 2 cores)
    .venv/bin/python bench/latency.py --quick        # a few minutes on a quiet machine
    .venv/bin/python bench/latency.py --baseline none --no-browser --idle-only

A viewer that falls seconds behind (Chromium decoding raw tiles under motion on a loaded
machine does) shows as large figures and "missed" samples; a case is given up after
three misses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway bench user
DEFAULT_BASELINE = "4f04c1f"
CHROMIUM = "/usr/bin/chromium"
DEFAULT_TMP = Path(tempfile.gettempdir()) / "issue-14-latency"

#: The probe square (drawn on), the key window, and the animated region.
PROBE = (64, 64, 64)  # x, y, side
KEYS = (200, 64, 32)
MOTION_SIDE = (480, 320)
MOTION_FPS = 60.0
#: Colours far apart in every pair, so a coarse first H.264 picture of the next one can
#: never pass for the previous one.
PALETTE = [
    (220, 30, 30),
    (30, 200, 30),
    (30, 30, 220),
    (230, 230, 40),
    (40, 220, 220),
    (220, 40, 220),
]
#: How far (per channel) a decoded H.264 pixel may be from the drawn colour.
H264_TOLERANCE = 40
#: A key on every layout (KeyA, set-1 scan code 0x1e).
KEY_SCAN_CODE = 0x1E
GOALS = {"raw": 10.0, "h264": 25.0}
#: Samples not seen within the timeout after which a case is given up.
MAX_MISSED = 3
KEY_GOALS = (3.0, 20.0)  # p50, p99


# -- the X clients (run as subprocesses: `latency.py --x-client MODE DISPLAY ...`) --------


def _x_window(display: Any, x: int, y: int, w: int, h: int, mask: int) -> Any:
    from Xlib import X

    screen = display.screen()
    window = screen.root.create_window(
        x,
        y,
        w,
        h,
        0,
        screen.root_depth,
        X.InputOutput,
        X.CopyFromParent,
        background_pixel=screen.black_pixel,
        override_redirect=True,
        event_mask=X.ExposureMask | mask,
    )
    window.map()
    while display.next_event().type != X.Expose:
        pass
    return window


def x_paint(name: str) -> None:
    """Fill the probe square with each colour read from stdin ("r g b"); answer with the
    monotonic time (ns) taken just before the request went out."""
    from Xlib import display as xdisplay

    display = xdisplay.Display(name)
    x, y, side = PROBE
    window = _x_window(display, x, y, side, side, 0)
    gc = window.create_gc(foreground=0)
    print("ready", flush=True)
    for line in sys.stdin:
        r, g, b = map(int, line.split())
        gc.change(foreground=(r << 16) | (g << 8) | b)
        started = time.monotonic_ns()
        window.fill_rectangle(gc, 0, 0, side, side)
        display.sync()
        print(started, flush=True)


def x_motion(name: str) -> None:
    """Animate a region (bottom right) at 60 fps: a changing background and a moving block,
    like a video playing somewhere else on the screen."""
    from Xlib import display as xdisplay

    display = xdisplay.Display(name)
    screen = display.screen()
    w, h = MOTION_SIDE
    window = _x_window(
        display, screen.width_in_pixels - w - 16, screen.height_in_pixels - h - 16, w, h, 0
    )
    gc = window.create_gc(foreground=0)
    print("ready", flush=True)
    frame = 0
    start = time.monotonic()
    while True:
        shade = (frame * 3) % 200
        gc.change(foreground=(shade << 16) | ((200 - shade) << 8) | 90)
        window.fill_rectangle(gc, 0, 0, w, h)
        gc.change(foreground=0xF0F0F0)
        bx = (frame * 7) % (w - 80)
        by = (frame * 5) % (h - 80)
        window.fill_rectangle(gc, bx, by, 80, 80)
        display.flush()
        frame += 1
        delay = start + frame / MOTION_FPS - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def x_keys(name: str) -> None:
    """Hold the keyboard focus; print "<keycode> <monotonic ns>" for every KeyPress."""
    from Xlib import X
    from Xlib import display as xdisplay

    display = xdisplay.Display(name)
    x, y, side = KEYS
    window = _x_window(display, x, y, side, side, X.KeyPressMask | X.KeyReleaseMask)
    window.set_input_focus(X.RevertToPointerRoot, X.CurrentTime)
    display.sync()
    print("ready", flush=True)
    while True:
        event = display.next_event()
        now = time.monotonic_ns()
        if event.type == X.KeyPress:
            print(event.detail, now, flush=True)


def x_client(mode: str, name: str, args: list[str]) -> None:
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        if mode == "paint":
            x_paint(name)
        elif mode == "motion":
            x_motion(name)
        elif mode == "keys":
            x_keys(name)


# -- processes ----------------------------------------------------------------------------


@dataclass
class Config:
    samples: int = 60
    key_samples: int = 200
    codecs: tuple[str, ...] = ("raw", "h264")
    motions: tuple[bool, ...] = (False, True)
    browser: bool = True
    #: Also time key presses while the viewer moves the mouse.
    mouse: bool = True
    #: The codecs measured in Chromium (None: the same as ``codecs``).
    browser_codecs: tuple[str, ...] | None = None
    baseline: str | None = DEFAULT_BASELINE
    rounds: int = 2
    fps: float | None = None
    screen: tuple[int, int] = (1280, 800)
    tmp: Path = DEFAULT_TMP
    #: A server already running for the revision under test: (url, admin user, password).
    #: None: one is started as a subprocess (the bench); tests pass their in-process one.
    server: tuple[str, str, str] | None = None
    #: Multiplies every timeout (tests pass their time unit).
    time_scale: float = 1.0
    warmup: int = 2
    #: Seconds a draw or a key may take to be seen before it counts as missed.
    sample_timeout: float = 10.0
    #: Glass-to-glass samples in Chromium (None: ``samples``).
    browser_samples: int | None = None
    seed: int = 14


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Procs:
    """Every process this run started, stopped in reverse order."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.aprocs: list[asyncio.subprocess.Process] = []

    def popen(self, args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kw)
        self.procs.append(proc)
        return proc

    async def stop(self) -> None:
        for aproc in reversed(self.aprocs):
            if aproc.stdin is not None:
                aproc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                aproc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(aproc.wait(), 10)
            if aproc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    aproc.kill()
                await aproc.wait()
            if aproc.stdin is not None:
                with contextlib.suppress(Exception):
                    await aproc.stdin.wait_closed()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.to_thread(proc.wait, 10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    await asyncio.to_thread(proc.wait)
        self.procs.clear()
        self.aprocs.clear()


def start_xvfb(procs: Procs, screen: tuple[int, int], log: Path) -> str:
    """Xvfb on a display number it picks itself (``-displayfd``); retried on a race."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("latency.py: Xvfb is not installed (make system installs it)")
    for _ in range(3):
        read_fd, write_fd = os.pipe()
        proc = procs.popen(
            [
                xvfb,
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{screen[0]}x{screen[1]}x24",
                "-nolisten",
                "tcp",
            ],
            log,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if number:
            return f":{number}"
        proc.wait(10)
    raise RuntimeError(f"Xvfb did not start; see {log}")


class XClient:
    """One of this file's X clients, spoken to over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(
        cls, procs: Procs, mode: str, display: str, *args: object, timeout: float = 20
    ) -> XClient:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--x-client",
            mode,
            display,
            *map(str, args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        procs.aprocs.append(proc)
        client = cls(proc)
        line = await client.line(timeout)
        if line != "ready":
            raise RuntimeError(f"the {mode} client did not start: {line!r}")
        return client

    async def line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        data = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not data:
            raise RuntimeError("an X client exited")
        return data.decode().strip()

    def drain(self) -> None:
        """Forget whatever was printed and not read yet."""
        assert self.proc.stdout is not None
        buffered = self.proc.stdout._buffer  # type: ignore[attr-defined]
        buffered.clear()

    async def paint(self, rgb: tuple[int, int, int], timeout: float) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(("{} {} {}\n".format(*rgb)).encode())
        await self.proc.stdin.drain()
        return int(await self.line(timeout))

    async def stop(self, procs: Procs) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        await self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
            with contextlib.suppress(Exception):
                await self.proc.stdin.wait_closed()
        procs.aprocs.remove(self.proc)


@dataclass
class Stack:
    """One revision: its X server, its server process, its agent, and the clients on it."""

    name: str
    url: str
    display: str
    api: Any  # guruconnect.client.ApiClient
    machine_id: str
    paint: XClient
    keys: XClient
    login: tuple[str, str]  # the admin the page logs in as


def _env(src: Path | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    else:
        env.pop("PYTHONPATH", None)
    return env


def _write_secret(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


async def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port} within {timeout:.0f} s; see {log}")


async def start_stack(
    name: str, tree: Path, src: Path | None, workdir: Path, procs: Procs, config: Config
) -> Stack:
    scale = config.time_scale
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    display = start_xvfb(procs, config.screen, workdir / "xvfb.log")
    # The X clients start while the server and the agent do.
    clients = asyncio.ensure_future(
        asyncio.gather(
            XClient.start(procs, "paint", display, timeout=20 * scale),
            XClient.start(procs, "keys", display, timeout=20 * scale),
        )
    )
    try:
        url, api, machine_id, login = await start_server_and_agent(
            name, tree, src, workdir, display, procs, config
        )
    except BaseException:
        clients.cancel()
        with contextlib.suppress(BaseException):
            await clients
        raise
    try:
        paint, keys = await clients
    except BaseException:
        await api.aclose()
        raise
    return Stack(name, url, display, api, machine_id, paint, keys, login)


async def start_server(
    tree: Path, src: Path | None, workdir: Path, procs: Procs, config: Config
) -> str:
    """``guruconnect server`` on a SQLite file of its own, with an admin ``bench``."""
    scale = config.time_scale
    port = free_port()
    env = _env(
        src,
        JWT_SECRET=secrets.token_urlsafe(48),
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'server.db'}",
        GURUCONNECT_LOG_LEVEL="WARNING",
        GURUCONNECT_LOGIN_RATE_LIMIT="10000/minute",
        GURUCONNECT_WS_CONNECT_RATE_LIMIT="10000/minute",
        GURUCONNECT_INPUT_EVENTS_PER_SECOND="100000",
    )
    guru = [sys.executable, "-m", "guruconnect"]
    created = await asyncio.to_thread(
        subprocess.run,
        [*guru, "admin", "create-user", "bench", "--admin"],
        input=PASSWORD.encode(),
        env=env,
        cwd=tree,
        capture_output=True,
        timeout=120 * scale,
    )
    if created.returncode != 0:
        raise RuntimeError(f"create-user failed: {created.stderr.decode()[-500:]}")
    server_log = workdir / "server.log"
    server = procs.popen([*guru, "server", "--port", str(port)], server_log, env=env, cwd=tree)
    await wait_port(port, server, 60 * scale, server_log)
    return f"http://127.0.0.1:{port}"


async def start_server_and_agent(
    name: str,
    tree: Path,
    src: Path | None,
    workdir: Path,
    display: str,
    procs: Procs,
    config: Config,
) -> tuple[str, Any, str, tuple[str, str]]:
    from guruconnect.client import ApiClient

    scale = config.time_scale
    guru = [sys.executable, "-m", "guruconnect"]
    if config.server is not None and src is None:
        url, username, password = config.server
    else:
        url = await start_server(tree, src, workdir, procs, config)
        username, password = "bench", PASSWORD
    api = ApiClient(url)
    try:
        await api.login(username, password)
        key = await api.issue_agent_key(f"latency {name}")
        key_file = workdir / "agent.key"
        await asyncio.to_thread(_write_secret, key_file, key["key"])
        agent_args = [*guru, "agent", "--server", url, "--display", display]
        agent_args += ["--key-file", str(key_file), "--unattended", "--no-windows"]
        agent_args += ["--log-level", "WARNING"]
        if config.fps is not None:
            agent_args += ["--fps", str(config.fps)]
        agent_env = _env(src, DISPLAY=display)
        agent_env.pop("GURUCONNECT_AGENT_KEY", None)
        procs.popen(agent_args, workdir / "agent.log", env=agent_env, cwd=tree)
        machine_id = await wait_online(api, 60 * scale, workdir / "agent.log")
        await api.set_consent_policy(machine_id, "unattended")
    except BaseException:
        await api.aclose()
        raise
    return url, api, machine_id, (username, password)


async def wait_online(api: Any, timeout: float, log: Path) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        machines = await api._call("GET", "/api/machines")
        items = machines["items"] if isinstance(machines, dict) else machines
        online = [m for m in items if m.get("online")]
        if online:
            return str(online[0]["id"])
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the agent did not come online within {timeout:.0f} s; see {log}")


@contextlib.contextmanager
def baseline_tree(rev: str, tmp: Path) -> Iterator[Path]:
    """A detached ``git worktree`` of ``rev``, removed afterwards."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"baseline-{rev[:12]}-", dir=tmp))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), rev],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(path, ignore_errors=True)


# -- what a Python viewer sees --------------------------------------------------------------


def _close(pixel: Any, rgb: tuple[int, int, int], tolerance: int) -> bool:
    return all(abs(int(pixel[2 - i]) - rgb[i]) <= tolerance for i in range(3))  # BGR(A)


class Watcher:
    """Reads the viewer's socket, decodes every frame, and notes when the probe's centre
    shows the colour it waits for."""

    def __init__(self, viewer: Any, codec: str) -> None:
        from guruconnect.client.h264 import H264Decoder
        from guruconnect.client.screen import TileDecoder
        from guruconnect.protocol import Codec

        self.viewer = viewer
        self.codec = Codec.CODEC_H264 if codec == "h264" else Codec.CODEC_RAW_ZSTD
        self.decoder: Any = H264Decoder() if codec == "h264" else TileDecoder()
        self.tolerance = H264_TOLERANCE if codec == "h264" else 0
        self.target: tuple[int, int, int] | None = None
        self.seen: asyncio.Future[int] | None = None
        self.pictures = asyncio.Event()

    def expect(self, rgb: tuple[int, int, int]) -> asyncio.Future[int]:
        self.target = rgb
        self.seen = asyncio.get_running_loop().create_future()
        return self.seen

    def _check(self) -> None:
        picture = self.decoder.picture
        x, y, side = PROBE
        if picture.shape[0] <= y + side or picture.shape[1] <= x + side:
            return
        self.pictures.set()
        if self.target is None or self.seen is None or self.seen.done():
            return
        if _close(picture[y + side // 2, x + side // 2], self.target, self.tolerance):
            self.seen.set_result(time.monotonic_ns())
            self.target = None

    async def run(self) -> None:
        import av

        while True:
            envelope = await self.viewer.recv()
            if not envelope.HasField("video_frame"):
                continue
            frame = envelope.video_frame
            if frame.codec != self.codec:
                continue  # sent before the relay told the agent what this viewer decodes
            try:
                self.decoder.apply(frame)
            except av.error.FFmpegError:
                continue  # a picture before the first keyframe
            self._check()


@dataclass
class Figure:
    """Samples (ms) of one measurement, and the load average when it ended."""

    samples: list[float] = field(default_factory=list)
    missed: int = 0
    load: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def add(self, other: Figure) -> None:
        self.samples += other.samples
        self.missed += other.missed
        self.load += other.load


@dataclass
class Report:
    """figures[(what, codec, motion, revision)] -> Figure; what: glass, browser or key."""

    figures: dict[tuple[str, str, bool, str], Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def figure(self, what: str, codec: str, motion: bool, rev: str) -> Figure:
        return self.figures.setdefault((what, codec, motion, rev), Figure())


async def glass_samples(
    stack: Stack,
    watcher_expect: Any,
    wait_seen: Any,
    count: int,
    rng: random.Random,
    config: Config,
    colour: list[int],
) -> Figure:
    """``count`` draws, each timed until the viewer shows it; random gaps between them."""
    figure = Figure()
    timeout = config.sample_timeout * config.time_scale
    for _ in range(count):
        colour[0] = (colour[0] + 1) % len(PALETTE)
        rgb = PALETTE[colour[0]]
        await watcher_expect(rgb)
        started = await stack.paint.paint(rgb, timeout)
        try:
            seen = await asyncio.wait_for(wait_seen(), timeout)
        except TimeoutError:
            figure.missed += 1
            if figure.missed >= MAX_MISSED:
                break  # a viewer this far behind gives no more figures worth the wait
            continue
        figure.samples.append((seen - started) / 1e6)
        await asyncio.sleep(rng.uniform(0.03, 0.13))
    figure.load.append(os.getloadavg()[0])
    return figure


async def key_samples(
    stack: Stack,
    viewer: Any,
    count: int,
    rng: random.Random,
    config: Config,
    *,
    mouse: bool = False,
) -> Figure:
    """``count`` key presses, each timed until the X client reads it; with ``mouse``, the
    viewer moves the pointer at 100 Hz meanwhile (a person typing while moving the mouse:
    every move is injected too, and a key waits behind any move not yet handled)."""
    from guruconnect.protocol import KeyEvent

    figure = Figure()
    timeout = config.sample_timeout * config.time_scale
    moving = asyncio.create_task(move_mouse(viewer)) if mouse else None
    try:
        for _ in range(count):
            stack.keys.drain()
            started = time.monotonic_ns()
            await viewer.send(KeyEvent(scan_code=KEY_SCAN_CODE, down=True))
            try:
                line = await stack.keys.line(timeout)
            except TimeoutError:
                figure.missed += 1
                if figure.missed >= MAX_MISSED:
                    break
            else:
                figure.samples.append((int(line.split()[1]) - started) / 1e6)
            await viewer.send(KeyEvent(scan_code=KEY_SCAN_CODE, down=False))
            await asyncio.sleep(rng.uniform(0.02, 0.06))
    finally:
        if moving is not None:
            moving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await moving
    figure.load.append(os.getloadavg()[0])
    return figure


async def move_mouse(viewer: Any) -> None:
    """Circles in an empty part of the screen, 100 moves a second."""
    import math

    from guruconnect.protocol import MouseEvent

    step = 0
    while True:
        angle = step * 0.1
        x, y = 450 + round(120 * math.cos(angle)), 350 + round(40 * math.sin(angle))
        await viewer.send(MouseEvent(x=x, y=y))
        step += 1
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def session(stack: Stack) -> AsyncIterator[str]:
    created = await stack.api.request_session(stack.machine_id)
    try:
        yield str(created["id"])
    finally:
        with contextlib.suppress(Exception):
            await stack.api.end_session(created["id"])


async def python_viewer(
    stack: Stack, codec: str, motion: bool, config: Config, rng: random.Random, report: Report
) -> None:
    from guruconnect.client import ViewerClient
    from guruconnect.protocol import Codec

    codecs = [Codec.CODEC_H264, Codec.CODEC_RAW_ZSTD] if codec == "h264" else None
    async with session(stack) as session_id:
        ticket = await stack.api.viewer_ticket(session_id)
        viewer = await ViewerClient.connect(stack.url, session_id, ticket, codecs=codecs)
        watcher = Watcher(viewer, codec)
        reading = asyncio.create_task(watcher.run())
        try:
            await asyncio.wait_for(watcher.pictures.wait(), 30 * config.time_scale)

            async def expect(rgb: tuple[int, int, int]) -> None:
                watcher.expect(rgb)

            async def seen() -> int:
                assert watcher.seen is not None
                return await watcher.seen

            colour = [rng.randrange(len(PALETTE))]
            await glass_samples(stack, expect, seen, config.warmup, rng, config, colour)
            glass = await glass_samples(stack, expect, seen, config.samples, rng, config, colour)
            report.figure("glass", codec, motion, stack.name).add(glass)
            keys = await key_samples(stack, viewer, config.key_samples, rng, config)
            report.figure("key", codec, motion, stack.name).add(keys)
            if config.mouse:
                keys = await key_samples(stack, viewer, config.key_samples, rng, config, mouse=True)
                report.figure("key+mouse", codec, motion, stack.name).add(keys)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            await viewer.close()


# -- what Chromium's viewer page shows -----------------------------------------------------

#: Installed through DevTools (the page's CSP allows no inline script): each animation
#: frame, the visible canvas's probe pixel is drawn onto a 1x1 canvas and read back; the
#: first frame that shows the awaited colour resolves ``window.latencyProbe.seen``.
POLLER = """([x, y]) => {
  const screen = document.getElementById("screen");
  const one = document.createElement("canvas");
  one.width = one.height = 1;
  const ctx = one.getContext("2d", { willReadFrequently: true });
  const probe = { target: null, tolerance: 0, resolve: null, seen: null, frames: 0 };
  probe.expect = (rgb, tolerance) => {
    probe.target = rgb;
    probe.tolerance = tolerance;
    probe.seen = new Promise((resolve) => { probe.resolve = resolve; });
  };
  const tick = () => {
    probe.frames += 1;
    if (probe.target && screen.width > x && screen.height > y) {
      ctx.drawImage(screen, x, y, 1, 1, 0, 0, 1, 1);
      const d = ctx.getImageData(0, 0, 1, 1).data;
      const t = probe.target;
      if (Math.max(Math.abs(d[0] - t[0]), Math.abs(d[1] - t[1]), Math.abs(d[2] - t[2]))
          <= probe.tolerance) {
        const now = performance.now();
        probe.target = null;
        probe.resolve(now);
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  window.latencyProbe = probe;
}"""


async def clock_offset_ms(page: Any) -> float:
    """page ``performance.now()`` minus this host's monotonic clock (ms), from the probe
    with the shortest round trip."""
    best: tuple[int, float] | None = None
    for _ in range(12):
        before = time.monotonic_ns()
        now = float(await page.evaluate("() => performance.now()"))
        after = time.monotonic_ns()
        offset = now - (before + after) / 2e6
        if best is None or after - before < best[0]:
            best = (after - before, offset)
    assert best is not None
    return best[1]


async def browser_viewer(
    stack: Stack,
    browser: Any,
    codec: str,
    motion: bool,
    config: Config,
    rng: random.Random,
    report: Report,
) -> None:
    w, h = config.screen
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, base_url=stack.url)
    try:
        if codec == "raw":
            # The page then announces raw tiles only (no WebCodecs).
            await context.add_init_script("delete window.VideoDecoder;")
        page = await context.new_page()
        timeout_ms = 30_000 * config.time_scale
        page.set_default_timeout(timeout_ms)
        await page.goto("/login")
        await page.fill("#username", stack.login[0])
        await page.fill("#password", stack.login[1])
        await page.click("form.login button[type=submit]")
        await page.wait_for_selector("#topbar:not([hidden])")
        async with session(stack) as session_id:
            await page.goto(f"/viewer/{session_id}")
            deadline = time.monotonic() + timeout_ms / 1000
            ready = "([w, h]) => { const c = document.getElementById('screen'); return " + (
                "c.width === w && c.height === h && document.getElementById('overlay').hidden; }"
            )
            while not await page.evaluate(ready, [w, h]):
                if time.monotonic() > deadline:
                    raise TimeoutError("the viewer page showed no picture")
                await asyncio.sleep(0.05)
            announced = await page.evaluate("() => document.body.dataset.codecs || ''")
            wanted = "2" if codec == "h264" else "1"
            if announced.split(",")[0] != wanted:
                report.notes.append(
                    f"browser {codec} ({stack.name}): the page decodes {announced!r}; skipped"
                )
                return
            x, y, side = PROBE
            await page.evaluate(POLLER, [x + side // 2, y + side // 2])
            offset = await clock_offset_ms(page)
            tolerance = H264_TOLERANCE if codec == "h264" else 0
            seen_ms: list[float] = []

            async def expect(rgb: tuple[int, int, int]) -> None:
                await page.evaluate(
                    "([rgb, t]) => window.latencyProbe.expect(rgb, t)", [list(rgb), tolerance]
                )

            async def seen() -> int:
                now = float(await page.evaluate("() => window.latencyProbe.seen"))
                seen_ms.append(now)
                return round((now - offset) * 1e6)

            colour = [rng.randrange(len(PALETTE))]
            await glass_samples(stack, expect, seen, config.warmup, rng, config, colour)
            count = config.browser_samples or config.samples
            glass = await glass_samples(stack, expect, seen, count, rng, config, colour)
            report.figure("browser", codec, motion, stack.name).add(glass)
    finally:
        await context.close()


# -- the run ---------------------------------------------------------------------------------


async def measure_all(
    stacks: list[Stack], browser: Any, config: Config, procs: Procs, report: Report
) -> None:
    rng = random.Random(config.seed)
    for round_ in range(config.rounds):
        for motion in config.motions:
            # Alternate which revision goes first, round by round.
            order = stacks if round_ % 2 == 0 else list(reversed(stacks))
            for stack in order:
                animation = None
                if motion:
                    animation = await XClient.start(
                        procs, "motion", stack.display, timeout=20 * config.time_scale
                    )
                try:
                    for codec in config.codecs:
                        await python_viewer(stack, codec, motion, config, rng, report)
                        browser_codecs = config.browser_codecs or config.codecs
                        if browser is not None and codec in browser_codecs:
                            await browser_viewer(stack, browser, codec, motion, config, rng, report)
                finally:
                    if animation is not None:
                        await animation.stop(procs)


async def run(config: Config) -> Report:
    """Start everything, measure, stop everything; the figures are in the report."""
    report = Report()
    config.tmp.mkdir(parents=True, exist_ok=True)
    procs = Procs()
    async with contextlib.AsyncExitStack() as exits:
        workdir = Path(tempfile.mkdtemp(prefix="latency-", dir=config.tmp))
        exits.callback(shutil.rmtree, workdir, ignore_errors=True)
        tree = (
            exits.enter_context(baseline_tree(config.baseline, config.tmp))
            if (config.baseline)
            else None
        )
        exits.push_async_callback(procs.stop)
        launching = None
        if config.browser:
            from playwright.async_api import async_playwright

            playwright = await exits.enter_async_context(async_playwright())
            launching = asyncio.ensure_future(
                playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
            )
        # Everything starts at once: the stacks, and the browser meanwhile.
        starting = [start_stack("new", ROOT, None, workdir / "new", procs, config)]
        if tree is not None:
            starting.append(
                start_stack("base", tree, tree / "src", workdir / "base", procs, config)
            )
        started = await asyncio.gather(*starting, return_exceptions=True)
        stacks = [stack for stack in started if isinstance(stack, Stack)]
        for stack in stacks:
            exits.push_async_callback(stack.api.aclose)
        browser = None
        if launching is not None:
            try:
                browser = await launching
            finally:
                if browser is not None:
                    exits.push_async_callback(browser.close)
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        await measure_all(stacks, browser, config, procs, report)
    return report


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def table(report: Report, config: Config) -> str:
    lines = [
        f"glass to glass and key -> X event, ms; screen {config.screen[0]}x{config.screen[1]}, "
        f"agent fps {config.fps or 'default'}; load = 1-minute load average when measured",
    ]
    baseline = bool(config.baseline)
    head = f"{'what':<38} {'p50':>6} {'p90':>6} {'p99':>6} {'n':>4} {'load':>5}"
    if baseline:
        head += f" | {'base p50':>8} {'p90':>6} {'p99':>6} {'load':>5} | {'new/base':>9}"
    head += " | goal"
    lines += [head, "-" * len(head)]
    whats = {
        "glass": "python viewer",
        "browser": "chromium (rAF)",
        "key": "key -> X event",
        "key+mouse": "key -> X, mouse moving",
    }
    for what, label in whats.items():
        for codec in config.codecs:
            for motion in config.motions:
                new = report.figures.get((what, codec, motion, "new"))
                if new is None:
                    continue
                base = report.figures.get((what, codec, motion, "base"))
                name = f"{label}, {codec}, {'motion' if motion else 'idle'}"
                load = max(new.load) if new.load else 0.0
                row = (
                    f"{name:<38} {_ms(new.pct(0.5)):>6} {_ms(new.pct(0.9)):>6} "
                    f"{_ms(new.pct(0.99)):>6} {len(new.samples):>4} {load:>5.1f}"
                )
                if baseline:
                    b50 = base.pct(0.5) if base else None
                    bload = max(base.load) if base and base.load else 0.0
                    ratio = "—"
                    n50 = new.pct(0.5)
                    if b50 and n50 is not None:
                        ratio = f"{n50 / b50:.2f}"
                    b99, n99 = (base.pct(0.99) if base else None), new.pct(0.99)
                    if what.startswith("key") and b99 and n99 is not None:
                        ratio += f"/{n99 / b99:.2f}"  # key rows: p50 and p99 ratios
                    row += (
                        f" | {_ms(b50):>8} {_ms(base.pct(0.9) if base else None):>6} "
                        f"{_ms(base.pct(0.99) if base else None):>6} {bload:>5.1f} | {ratio:>9}"
                    )
                if what.startswith("key"):
                    row += f" | p50 <= {KEY_GOALS[0]:.0f}, p99 <= {KEY_GOALS[1]:.0f}"
                else:
                    row += f" | p50 <= {GOALS[codec]:.0f}"
                if new.missed:
                    row += f" ({new.missed} missed)"
                lines.append(row)
    if "browser" in {w for w, *_ in report.figures}:
        lines.append(
            "chromium: polled once per animation frame, so up to one display frame "
            "(16.7 ms at 60 Hz) more than the picture itself"
        )
    lines += report.notes
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, one round")
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help=f"the revision to compare with (default {DEFAULT_BASELINE}; 'none': no baseline)",
    )
    parser.add_argument("--samples", type=int, help="glass-to-glass samples per case and round")
    parser.add_argument("--key-samples", type=int, help="key presses per case and round")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 2, quick 1)")
    parser.add_argument("--fps", type=float, help="the agents' --fps (default: theirs)")
    parser.add_argument("--codec", choices=["raw", "h264"], action="append", help="only these")
    parser.add_argument("--idle-only", action="store_true", help="no motion cases")
    parser.add_argument("--no-browser", action="store_true", help="Python viewer only")
    parser.add_argument("--screen", default="1280x800", help="Xvfb's size, WxH")
    parser.add_argument(
        "--tmp",
        type=Path,
        default=Path(os.environ.get("GURUCONNECT_BENCH_TMP", str(DEFAULT_TMP))),
        help="where the run's files and the baseline worktree go",
    )
    parser.add_argument("--x-client", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.x_client:
        mode, name, *rest = args.x_client
        x_client(mode, name, rest)
        return
    width, height = (int(v) for v in args.screen.lower().split("x"))
    config = Config(
        samples=args.samples or (20 if args.quick else 60),
        key_samples=args.key_samples or (60 if args.quick else 200),
        codecs=tuple(args.codec) if args.codec else ("raw", "h264"),
        motions=(False,) if args.idle_only else (False, True),
        browser=not args.no_browser,
        baseline=None if args.baseline.lower() == "none" else args.baseline,
        rounds=args.rounds or (1 if args.quick else 2),
        sample_timeout=3.0 if args.quick else 10.0,
        browser_samples=args.samples or (10 if args.quick else None),
        fps=args.fps,
        screen=(width, height),
        tmp=args.tmp,
    )
    report = asyncio.run(run(config))
    print(table(report, config))


if __name__ == "__main__":
    main()

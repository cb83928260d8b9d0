"""The raw capture path at 1920x1080 on a real X server: damage-driven and batched against
the polling, per-tile path it replaced, measured in the same run.

- **typical update** (about 5 % of the tiles: a line of typed text grows, a small window
  moves, the clock ticks), drawn by a real X client: grab + diff + encode per frame;
- **full-frame change**, drawn by a real X client (the whole screen scrolls): the same;
- **encode only** on the same frames without a screen (the tile encoder alone);
- **draw → capture**: a real X client fills a rectangle at a random moment; time until the
  agent's streamer (fps cap 30) has captured and encoded it;
- **sustained full-screen motion**: an X client scrolls the whole screen as fast as it can;
  the agent's frames a second and CPU milliseconds per frame.

The baseline ("old") is the code before capture on damage: a whole-frame grab every
period, a whole-frame diff and a Python loop compressing tile by tile (``PerTileEncoder``
below is that loop, kept here as the baseline). Every figure is printed with the load
average when it was taken.

    .venv/bin/python bench/capture.py           # full run
    .venv/bin/python bench/capture.py --quick   # fewer repeats
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from guruconnect.agent.capture import DisplayInfo
from guruconnect.agent.capture.cursor import NoCursor
from guruconnect.agent.capture.damage import DamageTracker
from guruconnect.agent.capture.mss_backend import MssCapturer
from guruconnect.agent.encode import tiles as tiles_module
from guruconnect.agent.encode.tiles import TILE, EncodedFrame, TileEncoder
from guruconnect.agent.stream import CaptureWorker, Streamer
from guruconnect.protocol import Codec, Tile, VideoFrame, decode, payload
from guruconnect.server.log_setup import configure

WIDTH, HEIGHT = 1920, 1080
SCREEN = DisplayInfo(1, 0, 0, WIDTH, HEIGHT)


class PerTileEncoder(TileEncoder):
    """The baseline: the encoder as it was, one slice, one compress, one append per tile."""

    def encode(self, *, keyframe: bool = False, **kw: Any) -> EncodedFrame | None:
        import zstandard

        keyframe = keyframe or self.needs_whole_frame
        flags = np.ones((self.rows, self.cols), np.bool_) if keyframe else self.dirty_tiles()
        if not keyframe and not flags.any():
            return None
        self.frame_number += 1
        compressor = zstandard.ZstdCompressor(level=1)
        message = VideoFrame(codec=Codec.CODEC_RAW_ZSTD, width=self.width, height=self.height)
        count = 0
        for row, col in np.argwhere(flags):
            y, x = int(row) * TILE, int(col) * TILE
            h, w = min(TILE, self.height - y), min(TILE, self.width - x)
            block = np.ascontiguousarray(self._current[y : y + h, x : x + w])
            data = compressor.compress(block.data)
            message.tiles.append(Tile(x=x, y=y, width=w, height=h, data=data))
            count += 1
        self.commit()
        return EncodedFrame([message], count, keyframe)


def load() -> str:
    return "{:.1f}/{:.1f}".format(*os.getloadavg()[:2])


# -- an X server and a client that draws ---------------------------------------------------


@contextmanager
def xvfb() -> Iterator[str]:
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [
            *("Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{WIDTH}x{HEIGHT}x24"),
            *("-nolisten", "tcp"),
        ],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        display = ":" + pipe.readline().strip()
    try:
        yield display
    finally:
        process.terminate()
        process.wait()


class Painter:
    """A real X client: draws desktop-like content on the root window."""

    def __init__(self, display: str) -> None:
        from Xlib import X
        from Xlib import display as xdisplay

        self.client: Any = xdisplay.Display(display)
        self.root = self.client.screen().root
        self.gc = self.root.create_gc(subwindow_mode=X.IncludeInferiors)
        self.rng = random.Random(3)
        # A desktop-sized picture with detail, held by the server (a pixmap), so a
        # scroll is one CopyArea from the client and a real blit in the server.
        self.pixmap = self.root.create_pixmap(WIDTH + 256, HEIGHT, 24)
        noise = np.random.default_rng(5).integers(0, 256, (64, WIDTH + 256, 4), np.uint8)
        picture = np.zeros((HEIGHT, WIDTH + 256, 4), np.uint8)
        picture[..., 0] = np.arange(WIDTH + 256)[None, :] % 256
        picture[..., 1] = np.arange(HEIGHT)[:, None] % 256
        for top in range(0, HEIGHT - 110, 200):  # bands of "photo" and "text"
            picture[top : top + 64] = noise
            picture[top + 100 : top + 110, :, :3] = (noise[:10, :, :3] > 128) * np.uint8(200)
        for top in range(0, HEIGHT, 24):  # under the core protocol's request size
            strip = picture[top : top + 24]
            self.pixmap.put_image(
                self.gc, 0, top, WIDTH + 256, len(strip), 2, 24, 0, strip.tobytes()
            )
        self.fill(0, 0, WIDTH, HEIGHT, 0x405A78)
        self.step = 0

    def fill(self, x: int, y: int, w: int, h: int, rgb: int) -> None:
        self.gc.change(foreground=rgb)
        self.root.fill_rectangle(self.gc, x, y, w, h)

    def sync(self) -> None:
        self.client.sync()

    def typical(self) -> None:
        """About 5 % of the tiles: a typed line, a small window moving, the clock."""
        self.step += 1
        step = self.step
        row = 400 + 18 * (step % 10)
        for _ in range(40):
            x = self.rng.randrange(110, 980)
            self.fill(x, row, self.rng.randrange(3, 12), 10, 0x1E1E1E)
        x = 200 + (step * 37) % 1400
        self.fill(x - 40, 500, 40, 120, 0x405A78)
        self.fill(x, 500, 180, 120, 0xFAFAD2 ^ step)
        self.fill(WIDTH - 90, HEIGHT - 30, 80, 20, step * 0x010101 % 0xFFFFFF)
        self.sync()

    def scroll(self) -> None:
        """Every tile changes: the detailed picture, shifted a bit further each time."""
        self.step += 1
        self.root.copy_area(self.gc, self.pixmap, (self.step * 7) % 256, 0, WIDTH, HEIGHT, 0, 0)
        self.sync()

    def close(self) -> None:
        self.client.close()


# -- grab + diff + encode, old and new, on the same drawings --------------------------------


class OldPath:
    """Whole-frame grab, whole-frame diff, per-tile encoder."""

    def __init__(self, display: str) -> None:
        self.capturer = MssCapturer(display)
        self.encoder = PerTileEncoder(WIDTH, HEIGHT)

    def frame(self) -> int:
        self.capturer.grab(SCREEN, self.encoder.target)
        encoded = self.encoder.encode()
        return encoded.tiles if encoded else 0


class NewPath:
    """Damage reports, a grab of the damaged blocks, their diff, the batched encoder."""

    def __init__(self, display: str) -> None:
        self.capturer = MssCapturer(display)
        source = self.capturer.damage()
        assert source is not None, "Xvfb has DAMAGE"
        self.source = source
        self.encoder = TileEncoder(WIDTH, HEIGHT)
        self.tracker = DamageTracker(WIDTH, HEIGHT, period=0.0, full_check=3600)

    def frame(self) -> int:
        rects = self.source.read()
        if rects is None:
            self.tracker.add_all()
        else:
            self.tracker.add(rects)
        if not self.tracker.pending:
            return 0
        blocks = self.tracker.take(time.monotonic())
        if blocks is None or self.encoder.needs_whole_frame:
            self.capturer.grab(SCREEN, self.encoder.target)
            encoded = self.encoder.encode()
        else:
            for block in blocks:
                self.capturer.grab_area(
                    SCREEN, *self.encoder.pixels(block), self.encoder.window(block)
                )
            encoded = self.encoder.encode(damage=blocks)
        return encoded.tiles if encoded else 0


def agent_rows(display: str, repeats: int) -> list[tuple[str, float, float, float, str]]:
    painter = Painter(display)
    old, new = OldPath(display), NewPath(display)
    painter.sync()
    old.frame()
    new.frame()
    rows = []
    for name, draw in (("typical update", painter.typical), ("full-frame change", painter.scroll)):
        times: dict[str, list[float]] = {"old": [], "new": []}
        counts: list[int] = []
        for _ in range(repeats):
            draw()
            for label, path in (("old", old), ("new", new)):
                start = time.perf_counter()
                count = path.frame()
                times[label].append((time.perf_counter() - start) * 1000)
                if label == "new":
                    counts.append(count)
        old_ms, new_ms = statistics.median(times["old"]), statistics.median(times["new"])
        share = statistics.median(counts) / (new.encoder.rows * new.encoder.cols)
        rows.append((f"{name} ({share:.0%} tiles)", old_ms, new_ms, new_ms / old_ms, load()))
    painter.close()
    return rows


def encode_rows(repeats: int) -> list[tuple[str, float, float, float, str]]:
    """The tile encoder alone, on frames in memory (no grab)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from encoder import desktop, typical_update

    rng = np.random.default_rng(7)
    base = desktop(rng)
    updates = [typical_update(base, step, rng) for step in range(repeats + 1)]
    rows = []
    for name, frames, keyframe in (
        ("encode only: keyframe", [base] * repeats, True),
        ("encode only: typical update", updates, False),
    ):
        result = {}
        for label, make in (
            ("old", lambda: PerTileEncoder(WIDTH, HEIGHT)),
            ("new", lambda: TileEncoder(WIDTH, HEIGHT)),
            ("new2", lambda: TileEncoder(WIDTH, HEIGHT, threads=2)),
        ):
            encoder = make()
            encoder.load(frames[0])
            encoder.encode()
            times = []
            for frame in frames[1:]:
                encoder.load(frame)
                start = time.perf_counter()
                encoder.encode(keyframe=keyframe)
                times.append((time.perf_counter() - start) * 1000)
            result[label] = statistics.median(times)
        rows.append((name, result["old"], result["new"], result["new"] / result["old"], load()))
        rows.append(
            (
                name + ", 2 threads",
                result["old"],
                result["new2"],
                result["new2"] / result["old"],
                load(),
            )
        )
    return rows


# -- the streamer: draw -> capture latency, sustained motion ---------------------------------


class Polling:
    """The capturer without damage reports or partial grabs: the streamer polls."""

    name = "polling"

    def __init__(self, display: str) -> None:
        self._inner = MssCapturer(display)

    def displays(self) -> list[DisplayInfo]:
        return self._inner.displays()

    def bounds(self) -> DisplayInfo:
        return self._inner.bounds()

    def grab(self, display: DisplayInfo, into: Any) -> None:
        self._inner.grab(display, into)

    def close(self) -> None:
        self._inner.close()


@contextmanager
def streaming(
    display: str, *, old: bool, fps: float, on_frame: Callable[[Any], None]
) -> Iterator[tuple[Streamer, asyncio.AbstractEventLoop]]:
    """A streamer on its own event-loop thread (the old path: polling, per-tile)."""
    loop = asyncio.new_event_loop()
    opener: Callable[[], Any] = (
        (lambda: Polling(display)) if old else (lambda: MssCapturer(display))
    )
    worker = CaptureWorker(opener, NoCursor)
    saved = tiles_module.TileEncoder

    async def send(data: bytes) -> None:
        name, message = payload(decode(data))
        if name == "video_frame":
            on_frame(message)

    import guruconnect.agent.stream as stream_module

    stream_module.TileEncoder = PerTileEncoder if old else saved  # type: ignore[misc]
    streamer = Streamer(worker, send, "bench", fps=fps, keyframe_interval=3600)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> asyncio.Task[None]:
        return asyncio.create_task(streamer.run())

    async def stop(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    task = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield streamer, loop
    finally:
        asyncio.run_coroutine_threadsafe(stop(task), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        worker.close()
        stream_module.TileEncoder = saved  # type: ignore[misc]


def latency_rows(display: str, samples: int) -> list[tuple[str, list[float], str]]:
    painter = Painter(display)
    painter.sync()
    rows = []
    for label, old in (("old: polling at 30 fps", True), ("new: on damage, cap 30 fps", False)):
        seen = threading.Event()
        target: dict[str, Any] = {"colour": None, "at": 0.0}

        def on_frame(
            message: VideoFrame, target: dict[str, Any] = target, seen: threading.Event = seen
        ) -> None:
            for tile in message.tiles:
                if (tile.x, tile.y) == (640, 320) and target["colour"] is not None:
                    import zstandard

                    pixel = zstandard.decompress(tile.data)[:3]
                    if pixel == target["colour"]:
                        target["at"] = time.perf_counter()
                        seen.set()

        delays = []
        with streaming(display, old=old, fps=30.0, on_frame=on_frame):
            time.sleep(1.0)  # the first frame
            rng = random.Random(11)
            for step in range(samples):
                rgb = 0x203040 + step * 0x010305 % 0xFFFFFF
                target["colour"] = bytes([rgb & 0xFF, (rgb >> 8) & 0xFF, (rgb >> 16) & 0xFF])
                seen.clear()
                time.sleep(rng.uniform(0.0, 0.05))  # a random phase against any tick
                drawn = time.perf_counter()
                painter.fill(640, 320, 64, 64, rgb)
                painter.sync()
                if seen.wait(2.0):
                    delays.append((target["at"] - drawn) * 1000)
        rows.append((label, delays, load()))
    painter.close()
    return rows


def motion_rows(display: str, seconds: float) -> list[tuple[str, float, float, str]]:
    """An X client draws as fast as it can on a thread of its own; the agent streams with
    a cap of 60 fps: frames a second, and CPU per frame (this process's, less the drawing
    thread's own)."""
    rows = []
    for kind in ("scroll", "typical"):
        for label, old in (("old", True), ("new", False)):
            stop = threading.Event()
            ready = threading.Event()
            drawer_cpu = [0.0, 0.0]

            def draw(
                kind: str = kind,
                stop: threading.Event = stop,
                ready: threading.Event = ready,
                drawer_cpu: list[float] = drawer_cpu,
            ) -> None:
                painter = Painter(display)
                painter.sync()
                step = painter.scroll if kind == "scroll" else painter.typical
                ready.set()
                while not stop.is_set():
                    if not drawer_cpu[1] and ready.is_set() and drawer_cpu[0] < 0:
                        drawer_cpu[1] = time.thread_time()
                    step()
                    time.sleep(0.002)
                drawer_cpu[0] = time.thread_time()
                painter.close()

            with streaming(display, old=old, fps=60.0, on_frame=lambda m: None) as (streamer, _):
                time.sleep(1.0)
                drawer = threading.Thread(target=draw)
                drawer.start()
                ready.wait(30)
                time.sleep(0.5)
                drawer_cpu[0] = -1.0  # the drawer notes its CPU clock from here
                first = streamer.stats.frames
                cpu0, t0 = time.process_time(), time.perf_counter()
                time.sleep(seconds)
                frames = streamer.stats.frames - first
                cpu = time.process_time() - cpu0
                elapsed = time.perf_counter() - t0
                stop.set()
                drawer.join()
            agent_cpu = max(0.0, cpu - (drawer_cpu[0] - drawer_cpu[1]))
            name = "full-screen motion" if kind == "scroll" else "typical updates"
            rows.append(
                (f"{label}: {name}", frames / elapsed, agent_cpu * 1000 / max(1, frames), load())
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    configure("WARNING", "console")
    repeats = 9 if args.quick else 31
    if shutil.which("Xvfb") is None:
        raise SystemExit("bench/capture.py needs Xvfb")

    print(f"\nRaw capture path, {WIDTH}x{HEIGHT}, median of {repeats} (ms; load 1/5 min)")
    print(f"{'case':<34} {'old ms':>8} {'new ms':>8} {'new/old':>8} {'load':>10}")
    for name, old_ms, new_ms, ratio, at in encode_rows(repeats):
        print(f"{name:<34} {old_ms:>8.2f} {new_ms:>8.2f} {ratio:>8.2f} {at:>10}")
    with xvfb() as display:
        for name, old_ms, new_ms, ratio, at in agent_rows(display, repeats):
            name = "grab+diff+encode: " + name
            print(f"{name:<34} {old_ms:>8.2f} {new_ms:>8.2f} {ratio:>8.2f} {at:>10}")

        samples = 15 if args.quick else 40
        print(f"\nDraw on X -> captured and encoded by the streamer, {samples} draws (ms)")
        print(f"{'path':<30} {'p50':>7} {'p90':>7} {'max':>7} {'n':>4} {'load':>10}")
        latency = latency_rows(display, samples)
        for label, delays, at in latency:
            q = statistics.quantiles(delays, n=10) if len(delays) > 1 else [0.0] * 9
            print(
                f"{label:<30} {statistics.median(delays):>7.2f} {q[8]:>7.2f} "
                f"{max(delays):>7.2f} {len(delays):>4} {at:>10}"
            )
        if all(d for _, d, _ in latency):
            ratio = statistics.median(latency[1][1]) / statistics.median(latency[0][1])
            print(f"{'new/old p50':<30} {ratio:>7.2f}")

        seconds = 3.0 if args.quick else 8.0
        print(
            f"\nSustained drawing by another X client, streamer capped at 60 fps, {seconds:.0f} s"
        )
        print(f"{'path':<34} {'fps':>7} {'CPU ms/frame':>13} {'load':>10}")
        motion = motion_rows(display, seconds)
        for label, fps, cpu_ms, at in motion:
            print(f"{label:<34} {fps:>7.1f} {cpu_ms:>13.2f} {at:>10}")
        for old, new in ((motion[0], motion[1]), (motion[2], motion[3])):
            print(f"{new[0] + ' / old, fps':<34} {new[1] / max(old[1], 0.01):>7.2f}")


if __name__ == "__main__":
    main()

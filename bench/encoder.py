"""The raw video path at 1920x1080: dirty tiles + zstd against zstd of the whole frame.

Frames are desktop-like (a gradient wallpaper, windows of text-like strokes, a noisy photo).
For each case it prints the median encode time and the bytes a frame puts on the wire, for

- **tiles**: ``TileEncoder`` (diff against the last frame sent, compress changed 64x64 tiles);
- **baseline**: ``zstd`` of the whole BGRA frame at the same level, every frame,

and the ratios tiles/baseline. Cases: a full frame (keyframe), a typical update (about 5% of
the tiles changed: a line of typed text and a moving cursor-sized window), an unchanged
frame. Then capture from a real X server (Xvfb, 1920x1080) with mss, and what a fresh
8 MB buffer per frame costs against copying into a reused one.

    .venv/bin/python bench/encoder.py           # full run
    .venv/bin/python bench/encoder.py --quick   # fewer repeats
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zstandard

from guruconnect.agent.encode.tiles import TILE, TileEncoder
from guruconnect.protocol import encode
from guruconnect.server.log_setup import configure

WIDTH, HEIGHT = 1920, 1080
Frame = np.ndarray[Any, np.dtype[np.uint8]]


def desktop(rng: np.random.Generator) -> Frame:
    frame = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    frame[..., 0] = 90 + x * 60 // WIDTH
    frame[..., 1] = 60 + y * 50 // HEIGHT
    frame[..., 2] = 40
    frame[..., 3] = 255
    for left, top, width, height in ((100, 80, 900, 700), (1050, 150, 760, 520)):
        frame[top : top + height, left : left + width, :3] = 245
        frame[top : top + 28, left : left + width, :3] = (200, 120, 60)
        for row in range(top + 40, top + height - 20, 18):  # lines of "text"
            strokes = rng.random(width - 40) < 0.35
            frame[row : row + 10, left + 20 : left + width - 20, :3][:, strokes] = 30
    frame[800:1000, 1200:1500, :3] = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    frame[HEIGHT - 40 :, :, :3] = (45, 45, 50)
    return frame


def typical_update(frame: Frame, step: int, rng: np.random.Generator) -> Frame:
    """About 5% of the tiles: a typed line grows, a small window moves, the clock ticks."""
    out = frame.copy()
    row = 400 + 18 * (step % 10)
    strokes = rng.random(880) < 0.35
    out[row : row + 10, 110:990, :3][:, strokes] = 30
    x = 200 + (step * 37) % 1400
    out[500:620, x : x + 180, :3] = (250, 250, 210)
    out[HEIGHT - 30 : HEIGHT - 10, WIDTH - 90 : WIDTH - 10, :3] = step % 256
    return out


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def encode_rows(repeats: int) -> list[tuple[str, float, float, float, float]]:
    rng = np.random.default_rng(7)
    base = desktop(rng)
    baseline = zstandard.ZstdCompressor(level=1)
    rows = []

    # Full frame: a keyframe every time.
    encoder = TileEncoder(WIDTH, HEIGHT)
    sizes: list[int] = []

    def full() -> None:
        encoder.load(base)
        encoded = encoder.encode(keyframe=True)
        assert encoded is not None
        sizes.append(sum(len(encode(m)) for m in encoded.messages))

    tiles_ms = median_ms(full, repeats)
    zsizes: list[int] = []
    base_ms = median_ms(lambda: zsizes.append(len(baseline.compress(base.data))), repeats)
    rows.append(
        (
            "full frame (keyframe)",
            tiles_ms,
            base_ms,
            statistics.median(sizes),
            statistics.median(zsizes),
        )
    )

    # Typical update: ~5% of the tiles change between frames.
    updates = [typical_update(base, step, rng) for step in range(repeats + 1)]
    encoder = TileEncoder(WIDTH, HEIGHT)
    encoder.load(updates[0])
    encoder.encode()
    sizes, counts = [], []
    frame_iter = iter(updates[1:])

    def update() -> None:
        encoder.load(next(frame_iter))
        encoded = encoder.encode()
        assert encoded is not None
        counts.append(encoded.tiles)
        sizes.append(sum(len(encode(m)) for m in encoded.messages))

    tiles_ms = median_ms(update, repeats)
    zsizes = []
    base_iter = iter(updates[1:])
    base_ms = median_ms(
        lambda: zsizes.append(len(baseline.compress(next(base_iter).data))), repeats
    )
    share = statistics.median(counts) / (encoder.rows * encoder.cols)
    rows.append(
        (
            f"typical update ({share:.1%} of tiles)",
            tiles_ms,
            base_ms,
            statistics.median(sizes),
            statistics.median(zsizes),
        )
    )

    # Nothing changed: the diff finds it and nothing is sent.
    def idle() -> None:
        encoder.load(updates[-1])
        encoder.encode()

    idle()
    tiles_ms = median_ms(idle, repeats)
    base_ms = median_ms(lambda: baseline.compress(updates[-1].data), repeats)
    rows.append(("unchanged frame", tiles_ms, base_ms, 0, len(baseline.compress(updates[-1].data))))
    return rows


def full_motion(frame: Frame, step: int, rng: np.random.Generator) -> Frame:
    """A 640x360 video playing: moving gradients with grain, every frame new."""
    out = frame.copy()
    y, x = np.mgrid[0:360, 0:640]
    region = out[300:660, 600:1240, :3]
    region[..., 0] = (x + step * 7) % 256
    region[..., 1] = (y * 2 + step * 5) % 256
    region[..., 2] = ((x + y) // 3 + step * 3) % 256
    region += rng.integers(0, 12, region.shape, dtype=np.uint8)
    return out


def h264_rows(repeats: int) -> tuple[list[str], list[tuple[str, float, float, float, float]]]:
    """(encoders the probe found, rows of case, h264 fps, raw fps, h264 bytes, raw bytes)."""
    from guruconnect.agent.encode import h264

    found = h264.probe()
    if not found:
        return found, []
    rng = np.random.default_rng(11)
    base = desktop(rng)
    rows = []
    for name, make in (
        ("typical desktop update", lambda i: typical_update(base, i, rng)),
        ("full-motion 640x360 region", lambda i: full_motion(base, i, rng)),
    ):
        frames = [make(i) for i in range(repeats + 5)]
        encoder = h264.H264Encoder(found[0], WIDTH, HEIGHT)
        encoder.encode(frames[0], keyframe=True)
        for warm in frames[1:5]:
            encoder.encode(warm)
        sizes: list[int] = []
        start = time.perf_counter()
        for i, frame in enumerate(frames[5:]):
            sizes.append(len(encoder.encode(frame, pts_us=(i + 5) * 33_333).data))
        h264_fps = len(sizes) / (time.perf_counter() - start)
        encoder.close()

        tiles = TileEncoder(WIDTH, HEIGHT)
        tiles.load(frames[4])
        tiles.encode()
        raw_sizes: list[int] = []
        start = time.perf_counter()
        for frame in frames[5:]:
            tiles.load(frame)
            encoded = tiles.encode()
            raw_sizes.append(sum(len(encode(m)) for m in encoded.messages) if encoded else 0)
        raw_fps = len(raw_sizes) / (time.perf_counter() - start)
        rows.append((name, h264_fps, raw_fps, statistics.mean(sizes), statistics.mean(raw_sizes)))
    return found, rows


def buffer_rows(repeats: int) -> list[tuple[str, float]]:
    size = WIDTH * HEIGHT * 4
    source = np.full(size, 7, np.uint8)
    reused = np.empty(size, np.uint8)

    kept: list[Any] = []

    def fresh() -> None:
        buffer = np.empty(size, np.uint8)
        np.copyto(buffer, source)

    def fresh_kept() -> None:
        # The previous frame stays alive as the diff reference, so the allocator cannot
        # hand the same pages back: every frame faults in 8 MB of new memory.
        buffer = np.empty(size, np.uint8)
        np.copyto(buffer, source)
        kept.append(buffer)
        del kept[:-2]

    return [
        ("copy into a reused 8 MB buffer", median_ms(lambda: np.copyto(reused, source), repeats)),
        ("fresh buffer, freed at once", median_ms(fresh, repeats)),
        ("fresh buffer, previous kept", median_ms(fresh_kept, repeats)),
    ]


def capture_rows(seconds: float) -> list[tuple[str, float, float]]:
    if shutil.which("Xvfb") is None:
        return []
    import mss

    from guruconnect.agent.capture import DisplayInfo
    from guruconnect.agent.capture.mss_backend import MssCapturer

    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{WIDTH}x{HEIGHT}x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        display = ":" + pipe.readline().strip()
    rows = []
    try:
        screen = DisplayInfo(1, 0, 0, WIDTH, HEIGHT)
        capturer = MssCapturer(display)
        encoder = TileEncoder(WIDTH, HEIGHT)

        def rate(step: Callable[[], object]) -> tuple[float, float]:
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                step()
                count += 1
            elapsed = time.perf_counter() - start
            return count / elapsed, elapsed * 1000 / count

        rows.append(("mss grab only", *rate(lambda: capturer._mss.grab(capturer._mss.monitors[1]))))
        rows.append(
            ("grab into the encoder's buffer", *rate(lambda: capturer.grab(screen, encoder.target)))
        )

        def agent_frame() -> None:
            capturer.grab(screen, encoder.target)
            encoder.encode()

        rows.append(("grab + diff + encode (static screen)", *rate(agent_frame)))
        capturer.close()
        del mss
    finally:
        xvfb.terminate()
        xvfb.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    configure("WARNING", "console")
    repeats = 7 if args.quick else 31

    print(
        f"\nRaw video encode, {WIDTH}x{HEIGHT} BGRA, {TILE}x{TILE} tiles, zstd level 1, "
        f"median of {repeats}"
    )
    print(
        f"{'case':<34} {'tiles ms':>9} {'zstd ms':>9} {'time ratio':>10} "
        f"{'tiles bytes':>12} {'zstd bytes':>11} {'bytes ratio':>11}"
    )
    for name, tiles_ms, base_ms, tiles_bytes, base_bytes in encode_rows(repeats):
        ratio = tiles_bytes / base_bytes if base_bytes else 0.0
        print(
            f"{name:<34} {tiles_ms:>9.2f} {base_ms:>9.2f} {tiles_ms / base_ms:>10.2f} "
            f"{tiles_bytes:>12,.0f} {base_bytes:>11,.0f} {ratio:>11.3f}"
        )

    found, rows264 = h264_rows(repeats * 2)
    print(
        f"\nH.264 ({found[0] if found else 'no encoder'}; the probe found: "
        f"{', '.join(found) or 'none'}) against raw tiles, {WIDTH}x{HEIGHT}, "
        f"{repeats * 2} frames"
    )
    print(
        f"{'case':<34} {'h264 fps':>9} {'raw fps':>9} {'fps ratio':>10} "
        f"{'h264 bytes':>12} {'raw bytes':>11} {'bytes ratio':>11}"
    )
    for name, h_fps, r_fps, h_bytes, r_bytes in rows264:
        print(
            f"{name:<34} {h_fps:>9.1f} {r_fps:>9.1f} {h_fps / r_fps:>10.2f} "
            f"{h_bytes:>12,.0f} {r_bytes:>11,.0f} {h_bytes / r_bytes:>11.3f}"
        )

    print("\nFrame buffers (8,294,400 bytes)")
    rows = buffer_rows(repeats)
    for name, ms in rows:
        print(f"{name:<34} {ms:>9.2f} ms")
    print(f"{'fresh (previous kept) / reused':<34} {rows[2][1] / rows[0][1]:>9.2f}x")

    capture = capture_rows(1.0 if args.quick else 3.0)
    if capture:
        print(f"\nCapture from Xvfb {WIDTH}x{HEIGHT}x24 with mss (XShmGetImage)")
        print(f"{'step':<40} {'fps':>8} {'ms/frame':>9}")
        for name, fps, ms in capture:
            print(f"{name:<40} {fps:>8.1f} {ms:>9.2f}")


if __name__ == "__main__":
    main()

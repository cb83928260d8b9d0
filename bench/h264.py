"""H.264 at 1920x1080: today's encoder path against the new one, measured in one run.

Scenes (generated, so every run encodes the same pixels):

- **desktop**: a wallpaper, a window of text-like strokes, a line being typed and a
  small window moving every frame (a few % of the screen changes);
- **full motion**: every pixel changes every frame (smooth moving colour fields, like a
  video playing full screen).

Paths, each over the same frames:

- **baseline**: the encoder as it was (4f04c1f): the array copied into a new VideoFrame
  (``from_ndarray``), converted with ``VideoFrame.reformat`` (a new YUV frame each time),
  x264 ``veryfast``, all on one thread;
- **x264 presets**: the new conversion (the array wrapped, pooled libavfilter graph) with
  ``veryfast`` / ``superfast`` / ``ultrafast``, each with ``tune=zerolatency`` (without it
  x264 holds frames back for lookahead, which a live screen cannot afford), with x264's
  own slice threads (``threads=auto``) and with one thread;
- **pipeline**: ``H264Pipeline`` (frame N+1 converted while frame N is encoded).

Columns: bytes per frame (median, first frame excluded: it is the keyframe), PSNR of the
decoded picture against the screen (median), convert+encode frames per second (wall time
on this machine, whatever else runs on it) and CPU time per frame (all threads), and the
ratio of each to the baseline. The load average is printed beside each row.

Then the latency of one frame after an idle screen (one change, convert+encode, p50), and
how the picture of a still screen refines frame by frame after a change (for
``REFINE_FRAMES`` in agent/stream.py).

    .venv/bin/python bench/h264.py           # full run
    .venv/bin/python bench/h264.py --quick   # fewer frames
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange

from guruconnect.agent.encode.h264 import MATRIX, EncodedPicture, H264Encoder, H264Pipeline
from guruconnect.client.h264 import H264Decoder, psnr
from guruconnect.protocol import Codec, VideoFrame
from guruconnect.server.log_setup import configure

WIDTH, HEIGHT = 1920, 1080
Frame = np.ndarray[Any, np.dtype[np.uint8]]


def load() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def desktop_base(rng: np.random.Generator) -> Frame:
    frame = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    frame[..., 0] = 90 + x * 60 // WIDTH
    frame[..., 1] = 60 + y * 50 // HEIGHT
    frame[..., 2] = 40
    frame[..., 3] = 255
    for left, top, width, height in ((100, 80, 900, 700), (1050, 150, 760, 520)):
        frame[top : top + height, left : left + width, :3] = 245
        frame[top : top + 28, left : left + width, :3] = (200, 120, 60)
        for row in range(top + 40, top + height - 20, 18):
            strokes = rng.random(width - 40) < 0.35
            frame[row : row + 10, left + 20 : left + width - 20, :3][:, strokes] = 30
    ramp = np.linspace(0, 255, 300, dtype=np.uint8)[None, :, None]
    frame[800:1000, 1200:1500, :3] = ramp
    frame[HEIGHT - 40 :, :, :3] = (45, 45, 50)
    return frame


def desktop_scene(count: int) -> list[Frame]:
    """Typing into the first window, a small window sliding across the second."""
    rng = np.random.default_rng(7)
    screen = desktop_base(rng)
    frames = []
    for step in range(count):
        row = 120 + 18 * (step % 30)
        strokes = rng.random(860) < 0.35
        screen[row : row + 10, 120:980, :3][:, strokes] = 30
        frame = screen.copy()
        x = 200 + (step * 37) % 1400
        frame[500:620, x : x + 180, :3] = (250, 250, 210)
        frames.append(frame)
    return frames


def motion_scene(count: int) -> list[Frame]:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    frames = []
    for step in range(count):
        frame = np.empty((HEIGHT, WIDTH, 4), np.uint8)
        frame[..., 0] = 128 + 100 * np.sin(x / 90 + step * 0.3)
        frame[..., 1] = 128 + 100 * np.sin(y / 70 - step * 0.2)
        frame[..., 2] = 128 + 100 * np.sin((x + y) / 130 + step * 0.25)
        frame[..., 3] = 255
        frames.append(frame)
    return frames


def baseline_convert(bgra: Frame) -> av.VideoFrame:
    """Today's conversion (4f04c1f): copy into a new frame, reformat into another."""
    frame = av.VideoFrame.from_ndarray(bgra, format="bgra")
    frame = frame.reformat(
        format="yuv420p",
        src_colorspace=MATRIX,
        dst_colorspace=MATRIX,
        src_color_range=ColorRange.JPEG,
        dst_color_range=ColorRange.MPEG,
    )
    frame.colorspace = MATRIX
    frame.color_range = ColorRange.MPEG
    return frame


@dataclass
class Path:
    name: str
    preset: str
    threads: int = 0
    baseline: bool = False
    pipeline: bool = False

    def encoder(self) -> H264Encoder:
        return H264Encoder(
            "libx264",
            WIDTH,
            HEIGHT,
            threads=self.threads,
            options={"preset": self.preset, "tune": "zerolatency"},
        )


PATHS = [
    Path("baseline (veryfast, old convert)", "veryfast", baseline=True),
    Path("veryfast", "veryfast"),
    Path("superfast (new default, as the agent runs it)", "superfast"),
    Path("ultrafast", "ultrafast"),
    Path("veryfast, 1 x264 thread", "veryfast", threads=1),
    Path("superfast, 1 x264 thread", "superfast", threads=1),
    Path("ultrafast, 1 x264 thread", "ultrafast", threads=1),
    Path("pipeline superfast", "superfast", pipeline=True),
    Path("pipeline superfast, 1 x264 thread", "superfast", threads=1, pipeline=True),
]


@dataclass
class Result:
    bytes_median: float
    bytes_mean: float
    psnr: float
    fps: float
    cpu_ms: float
    load: str


def encode_all(path: Path, frames: list[Frame]) -> tuple[list[EncodedPicture], float, float]:
    """Convert + encode every frame; returns the pictures, wall seconds, CPU seconds."""
    encoder = path.encoder()
    pictures: list[EncodedPicture] = []
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        if path.pipeline:
            pipeline = H264Pipeline(encoder)
            pending: concurrent.futures.Future[EncodedPicture] | None = None
            for index, frame in enumerate(frames):
                submitted = pipeline.submit(frame, keyframe=index == 0, pts_us=index * 33_333)
                if pending is not None:
                    pictures.append(pending.result())
                pending = submitted
            assert pending is not None
            pictures.append(pending.result())
            pipeline.close()
        else:
            convert = baseline_convert if path.baseline else encoder.convert
            for index, frame in enumerate(frames):
                pictures.append(
                    encoder.encode_yuv(convert(frame), keyframe=index == 0, pts_us=index * 33_333)
                )
        return pictures, time.perf_counter() - wall, time.process_time() - cpu
    finally:
        encoder.close()


def quality(pictures: list[EncodedPicture], frames: list[Frame]) -> tuple[float, float, float]:
    """Median and mean bytes per frame (after the keyframe) and median PSNR."""
    decoder = H264Decoder()
    scores = []
    for index, (picture, frame) in enumerate(zip(pictures, frames, strict=True)):
        decoder.apply(
            VideoFrame(
                codec=Codec.CODEC_H264,
                data=picture.data,
                keyframe=index == 0,
                width=WIDTH,
                height=HEIGHT,
            )
        )
        if index:
            scores.append(psnr(decoder.rgb(), frame[:, :, 2::-1]))
    sizes = [len(p.data) for p in pictures[1:]]
    return statistics.median(sizes), statistics.mean(sizes), statistics.median(scores)


def measure(frames: list[Frame], rounds: int) -> list[Result]:
    """Every path, ``rounds`` times, interleaved (so load that comes and goes hits all
    paths alike); speed is the median over the rounds, after one warm-up round."""
    encode_all(PATHS[0], frames[:3])
    walls: list[list[float]] = [[] for _ in PATHS]
    cpus: list[list[float]] = [[] for _ in PATHS]
    loads: list[str] = ["" for _ in PATHS]
    sizes: list[tuple[float, float, float]] = []
    for round_ in range(rounds):
        for index, path in enumerate(PATHS):
            pictures, wall, cpu = encode_all(path, frames)
            walls[index].append(wall)
            cpus[index].append(cpu)
            loads[index] = load()
            if round_ == 0:  # the stream is the same every round
                sizes.append(quality(pictures, frames))
    return [
        Result(
            *sizes[index],
            len(frames) / statistics.median(walls[index]),
            statistics.median(cpus[index]) * 1000 / len(frames),
            loads[index],
        )
        for index in range(len(PATHS))
    ]


def table(scene: str, frames: list[Frame], rounds: int) -> None:
    print(f"\n{scene}: {len(frames)} frames of {WIDTH}x{HEIGHT}, median of {rounds} rounds")
    header = (
        f"{'path':50} {'bytes/frame':>11} {'mean':>8} {'x':>5} {'PSNR dB':>7} "
        f"{'fps':>6} {'x':>5} {'CPU ms':>6} {'x':>5}  load avg"
    )
    print(header)
    print("-" * len(header))
    results = measure(frames, rounds)
    base = results[0]
    for path, result in zip(PATHS, results, strict=True):
        print(
            f"{path.name:50} {result.bytes_median:11.0f} {result.bytes_mean:8.0f} "
            f"{result.bytes_mean / base.bytes_mean:5.2f} {result.psnr:7.1f} "
            f"{result.fps:6.1f} {result.fps / base.fps:5.2f} {result.cpu_ms:6.1f} "
            f"{result.cpu_ms / base.cpu_ms:5.2f}  {result.load}",
            flush=True,
        )


def first_frame_latency(repeats: int) -> None:
    """A change on an idle screen: how long from the captured frame to its access unit
    (nothing else in flight, so this is what the change waits for)."""
    print("\none change on an idle screen: convert + encode of that frame, p50 / p90")
    frames = desktop_scene(repeats + 1)

    def timings(convert_encode: Callable[[Frame, int], EncodedPicture]) -> list[float]:
        convert_encode(frames[0], 0)  # the keyframe
        out = []
        for index in range(1, len(frames)):
            time.sleep(0.05)  # idle
            start = time.perf_counter()
            convert_encode(frames[index], index)
            out.append((time.perf_counter() - start) * 1000)
        return out

    old = PATHS[0].encoder()
    try:
        base = timings(lambda f, i: old.encode_yuv(baseline_convert(f), keyframe=i == 0, pts_us=i))
        base_load = load()
    finally:
        old.close()
    pipeline = H264Pipeline(H264Encoder("libx264", WIDTH, HEIGHT))
    try:
        new = timings(lambda f, i: pipeline.submit(f, keyframe=i == 0, pts_us=i).result())
        new_load = load()
    finally:
        pipeline.close()
    for name, values, figure_load in (("baseline", base, base_load), ("new", new, new_load)):
        p50, p90 = statistics.median(values), statistics.quantiles(values, n=10)[-1]
        print(
            f"  {name:9} p50 {p50:6.1f} ms  p90 {p90:6.1f} ms"
            f"  (x{p50 / statistics.median(base):.2f})  load {figure_load}"
        )


def refinement() -> None:
    """PSNR of a still screen, frame by frame, after the whole screen changed (a window
    opened over everything): the first picture is held back by the rate cap."""
    before = desktop_base(np.random.default_rng(1))
    after = desktop_base(np.random.default_rng(2))
    after[:, :, :3] = 255 - after[:, :, :3]
    print(f"\nstill screen after a full-screen change: frame 0 is the change  load {load()}")
    for preset in ("veryfast", "superfast"):
        encoder = H264Encoder("libx264", WIDTH, HEIGHT, options={"preset": preset})
        decoder = H264Decoder()
        row = []
        try:
            for index in range(13):
                frame = before if index == 0 else after
                picture = encoder.encode(frame, keyframe=index == 0, pts_us=index * 33_333)
                decoder.apply(
                    VideoFrame(
                        codec=Codec.CODEC_H264, data=picture.data, width=WIDTH, height=HEIGHT
                    )
                )
                row.append((len(picture.data), psnr(decoder.rgb(), frame[:, :, 2::-1])))
        finally:
            encoder.close()
        print(f"  {preset:9} PSNR dB: " + " ".join(f"{score:.1f}" for _, score in row[1:]))
        print(f"  {preset:9} bytes:   " + " ".join(str(size) for size, _ in row[1:]))
    print(f"  load {load()}")


def conversion(repeats: int) -> None:
    """The steps before x264: wrapping the captured array and BGRA -> YUV 4:2:0."""
    frame = desktop_scene(1)[0]
    encoder = H264Encoder("libx264", WIDTH, HEIGHT)

    def step(fn: Callable[[], object]) -> tuple[float, float, float]:
        fn()
        walls, cpus = [], []
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            cpus.append((time.process_time() - cpu) * 1000)
            walls.append((time.perf_counter() - wall) * 1000)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        return statistics.median(walls), statistics.median(cpus), faults / repeats

    print(f"\nbefore x264, one 1080p frame, medians of {repeats}")
    header = f"{'step':44} {'wall ms':>8} {'CPU ms':>7} {'page faults':>11}  load avg"
    print(header)
    print("-" * len(header))
    rows = [
        (
            "wrap: from_ndarray (baseline, a copy)",
            lambda: av.VideoFrame.from_ndarray(frame, "bgra"),
        ),
        (
            "wrap: from_numpy_buffer (new, a view)",
            lambda: av.VideoFrame.from_numpy_buffer(frame, "bgra"),
        ),
        ("wrap + convert: baseline", lambda: baseline_convert(frame)),
        ("wrap + convert: new (pooled filter graph)", lambda: encoder.convert(frame)),
    ]
    try:
        for name, fn in rows:
            wall, cpu, faults = step(fn)
            print(f"{name:44} {wall:8.2f} {cpu:7.2f} {faults:11.0f}  {load()}", flush=True)
    finally:
        encoder.close()


def viewer(repeats: int) -> None:
    """The Python viewer's side: decode one access unit and convert it to BGRA, with a
    reformatter per picture (baseline) and one kept for the stream (new)."""
    frames = desktop_scene(repeats + 1)
    encoder = H264Encoder("libx264", WIDTH, HEIGHT)
    try:
        units = [
            VideoFrame(
                codec=Codec.CODEC_H264,
                data=encoder.encode(frame, keyframe=index == 0, pts_us=index).data,
                keyframe=index == 0,
                width=WIDTH,
                height=HEIGHT,
            )
            for index, frame in enumerate(frames)
        ]
    finally:
        encoder.close()

    def old_apply(context: Any, unit: VideoFrame) -> None:
        for picture in context.decode(av.Packet(unit.data)):
            picture.reformat(
                format="bgra",
                src_colorspace=MATRIX,
                dst_colorspace=MATRIX,
                src_color_range=ColorRange.MPEG,
                dst_color_range=ColorRange.JPEG,
            ).to_ndarray()

    old_context: Any = av.CodecContext.create("h264", "r")
    new = H264Decoder()
    old_ms, new_ms = [], []
    for unit in units:  # interleaved, so both see the same load
        start = time.perf_counter()
        old_apply(old_context, unit)
        old_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        new.apply(unit)
        new_ms.append((time.perf_counter() - start) * 1000)
    old_p50, new_p50 = statistics.median(old_ms[1:]), statistics.median(new_ms[1:])
    print(f"\nviewer: decode + BGRA of one 1080p desktop update, p50 of {repeats}")
    print(f"  baseline (reformatter per picture) {old_p50:6.2f} ms  load {load()}")
    print(f"  new (one reformatter per stream)   {new_p50:6.2f} ms  x{new_p50 / old_p50:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames")
    args = parser.parse_args()
    configure("WARNING")
    count, rounds = (12, 2) if args.quick else (24, 3)
    print(f"cores {os.cpu_count()}  load avg at start {load()}")
    conversion(10 if args.quick else 30)
    table("desktop (typing, a moving window)", desktop_scene(count), rounds)
    table("full motion (every pixel, every frame)", motion_scene(count), rounds)
    first_frame_latency(8 if args.quick else 20)
    viewer(10 if args.quick else 30)
    refinement()


if __name__ == "__main__":
    main()

"""H.264 through PyAV (FFmpeg): hardware encoders first, software second.

``probe()`` opens each candidate and encodes a small frame: a name in FFmpeg's list means
nothing on a machine without that hardware (the PyAV wheel lists NVENC, QSV, AMF and
V4L2 M2M everywhere; they fail to open here), so only an encoder that produced a packet
counts.

Output is Annex B, constrained baseline (what WebCodecs and every decoder take), no
B-frames, zero-latency tuning (or the hardware equivalent), SPS/PPS repeated on every
keyframe (a viewer joining mid-session can start at any keyframe), a keyframe on request.

Colour: BGRA is converted to YUV 4:2:0 with the BT.601 matrix and limited ("TV") range,
and the stream's VUI says exactly that (matrix, primaries, transfer: SMPTE 170M; range),
so decoders that honour the VUI (PyAV, Chromium's WebCodecs) convert back with the same
matrix. An unsignalled stream is what made a flat (200, 0, 0) come back as (217, 19, 0).
BT.601 rather than BT.709: Chromium's software YUV->RGB path (no GPU) shows a BT.709
(0, 0, 200) as (0, 0, 190) and (0, 200, 0) as (0, 201, 7); with BT.601 every primary
comes back within 2 levels (tests/agent/test_h264_browser.py).

Rate control is capped CRF: quality-driven, with a maximum rate (VBV). PyAV cannot move
the cap of an open encoder (``rc_max_rate`` is read-only there), so the streamer opens a
new encoder when the cap must move far (a keyframe under the new cap).

Cost per 1080p frame (bench/h264.py measures it against the old path in one run):

- No per-frame allocation of the big arrays. The captured BGRA array is wrapped, not
  copied (``from_numpy_buffer``: 10 us instead of 2.3 ms), and BGRA->YUV runs in a
  libavfilter graph whose output frames come from FFmpeg's buffer pool, so the 3 MB YUV
  frame is recycled instead of freshly allocated and faulted in on every frame (what
  ``VideoFrame.reformat`` does).
- Conversion and encoding are separate steps (``convert``, ``encode_yuv``) that release
  the GIL; ``H264Pipeline`` runs them on two threads, so frame N+1 is converted while
  frame N is encoded.
- x264's preset is ``superfast``, chosen by measurement over ``veryfast`` (the old
  setting) and ``ultrafast``: it costs a quarter less CPU than ``veryfast`` on a desktop
  with typing and a moving window and half under full-screen motion, for 7 % fewer bytes
  and +0.9 dB on the desktop and 5 % more bytes at the same PSNR under motion;
  ``ultrafast`` saves another ~20 % of CPU but spends 40 % more bytes on the desktop (no
  intra 4x4 for text). After a full-screen change ``superfast`` refines a still screen
  to 44 dB in about 8 frames (``REFINE_FRAMES`` in agent/stream.py stays 10).
  ``zerolatency`` stays: it keeps x264 from holding frames back (no lookahead, no frame
  threads; slice threads instead).
"""

from __future__ import annotations

import concurrent.futures
import fractions
import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import av
import av.filter
import numpy as np
import numpy.typing as npt
import structlog
from av.video.frame import PictureType
from av.video.reformatter import ColorRange, Colorspace

log = structlog.get_logger(__name__)

#: Probe order: hardware first (NVIDIA, Intel, AMD, VA-API, Windows Media Foundation, Apple,
#: V4L2 memory-to-memory), then software.
PROBE_ORDER: tuple[str, ...] = (
    "h264_nvenc",
    "h264_qsv",
    "h264_amf",
    "h264_vaapi",
    "h264_mf",
    "h264_videotoolbox",
    "h264_v4l2m2m",
    "libx264",
    "libopenh264",
)

#: x264's preset (see the module's docstring and bench/h264.py for the measurement).
X264_PRESET = "superfast"
#: Per-encoder options for low latency; anything not listed gets the generic settings.
_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {
        "preset": X264_PRESET,
        "tune": "zerolatency",
        "profile": "baseline",
        "x264-params": (
            "repeat-headers=1:forced-idr=1:scenecut=0:aud=0:"
            "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m:range=tv"
        ),
    },
    "h264_nvenc": {"preset": "p1", "tune": "ull", "zerolatency": "1", "profile": "baseline"},
    "h264_qsv": {"preset": "veryfast", "low_power": "1", "profile": "baseline"},
    "h264_amf": {"usage": "ultralowlatency", "profile": "constrained_baseline"},
    "h264_mf": {"scenario": "display_remoting", "rate_control": "quality"},
    "h264_videotoolbox": {"realtime": "1", "profile": "baseline"},
    "libopenh264": {"profile": "constrained_baseline"},
}

Frame = npt.NDArray[np.uint8]
#: The YUV matrix of every stream (see the module's docstring for why BT.601).
MATRIX = Colorspace.ITU601


class EncoderError(RuntimeError):
    """The encoder failed (or is closed); the caller falls back to raw tiles."""


@dataclass(frozen=True, slots=True)
class EncodedPicture:
    data: bytes
    keyframe: bool


def _even(value: int) -> int:
    return value + (value & 1)


class _Converter:
    """BGRA -> YUV 4:2:0 (BT.601, limited range) through a libavfilter graph.

    The graph's output frames come from FFmpeg's buffer pool: a frame goes back to the
    pool when the encoder is done with it, so steady state allocates nothing. The input
    frame wraps the caller's array without copying it; the array must not change until
    ``convert`` returns (the graph has read it by then).
    """

    def __init__(self, width: int, height: int, *, threads: int = 0) -> None:
        self.width, self.height = width, height
        graph = av.filter.Graph()
        graph.threads = threads
        source = graph.add_buffer(
            width=width,
            height=height,
            format=av.video.format.VideoFormat("bgra"),
            time_base=fractions.Fraction(1, 1000),
        )
        scale = graph.add(
            "scale",
            f"w={width}:h={height}:in_range=pc:out_range=tv"
            ":in_color_matrix=bt601:out_color_matrix=bt601",
        )
        pixels = graph.add("format", "yuv420p")
        sink = graph.add("buffersink")
        source.link_to(scale)
        scale.link_to(pixels)
        pixels.link_to(sink)
        graph.configure()
        self._graph = graph
        self._count = 0

    @staticmethod
    def _wrap(bgra: Frame) -> av.VideoFrame:
        # A view of the caller's array (10 us), not a copy of it (2.3 ms at 1080p).
        try:
            return av.VideoFrame.from_numpy_buffer(bgra, format="bgra")
        except ValueError:  # rows not contiguous: one copy makes them so
            return av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(bgra), format="bgra")

    def convert(self, bgra: Frame) -> av.VideoFrame:
        frame = self._wrap(bgra)
        self._count += 1
        frame.pts = self._count
        self._graph.vpush(frame)
        yuv = self._graph.vpull()
        yuv.colorspace = MATRIX
        yuv.color_range = ColorRange.MPEG
        return yuv


class H264Encoder:
    """One H.264 stream. ``encode`` = ``convert`` + ``encode_yuv``; the two halves may run
    on different threads (one call of each at a time), which is what ``H264Pipeline`` does.
    """

    def __init__(
        self,
        name: str,
        width: int,
        height: int,
        *,
        fps: float = 30.0,
        crf: int = 20,
        max_rate_kbps: int = 8000,
        gop_seconds: float = 10.0,
        threads: int = 0,
        options: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.width, self.height = width, height
        self.coded_width, self.coded_height = _even(width), _even(height)
        self.fps = fps
        self.max_rate_kbps = max_rate_kbps
        try:
            context: Any = av.CodecContext.create(name, "w")
            context.width = self.coded_width
            context.height = self.coded_height
            context.pix_fmt = "yuv420p"
            context.time_base = fractions.Fraction(1, 1_000_000)
            context.framerate = fractions.Fraction(round(fps * 1000), 1000)
            context.gop_size = max(1, round(gop_seconds * fps))
            context.max_b_frames = 0
            context.thread_count = threads
            context.colorspace = MATRIX
            context.color_range = ColorRange.MPEG
            context.color_primaries = 6  # SMPTE 170M (BT.601, 525 lines)
            context.color_trc = 6
            context.bit_rate = max_rate_kbps * 1000
            context.options = {
                **_OPTIONS.get(name, {}),
                **(options or {}),
                "crf": str(crf),
                "maxrate": f"{max_rate_kbps}k",
                "bufsize": f"{max_rate_kbps // 2}k",
            }
            context.open()
            converter = _Converter(self.coded_width, self.coded_height, threads=threads)
        except Exception as exc:
            raise EncoderError(f"{name} does not open: {exc}") from exc
        self._context: Any = context
        self._converter: _Converter | None = converter
        self._padded: Frame | None = None
        if (self.coded_width, self.coded_height) != (width, height):
            self._padded = np.zeros((self.coded_height, self.coded_width, 4), np.uint8)
        self._lock = threading.Lock()  # close() against an encode on another thread
        self.frames = 0

    @property
    def closed(self) -> bool:
        return self._context is None

    def convert(self, bgra: Frame) -> av.VideoFrame:
        """BGRA (``height`` x ``width`` x 4) -> the YUV frame ``encode_yuv`` takes."""
        source = bgra
        if self._padded is not None:
            self._padded[: self.height, : self.width] = bgra
            source = self._padded
        converter = self._converter
        if converter is None:
            raise EncoderError(f"{self.name} is closed")
        try:
            return converter.convert(source)
        except Exception as exc:
            raise EncoderError(f"{self.name} failed to convert: {exc}") from exc

    def encode_yuv(
        self, yuv: av.VideoFrame, *, keyframe: bool = False, pts_us: int = 0
    ) -> EncodedPicture:
        """Encode one converted frame; returns the access unit (empty only if the encoder
        buffers, which these low-latency settings never do)."""
        with self._lock:
            context = self._context
            if context is None:
                raise EncoderError(f"{self.name} is closed")
            yuv.pts = pts_us
            yuv.pict_type = PictureType.I if keyframe else PictureType.NONE
            try:
                packets = context.encode(yuv)
            except Exception as exc:
                raise EncoderError(f"{self.name} failed: {exc}") from exc
            self.frames += 1
        data = b"".join(bytes(p) for p in packets)
        return EncodedPicture(data, any(p.is_keyframe for p in packets))

    def encode(self, bgra: Frame, *, keyframe: bool = False, pts_us: int = 0) -> EncodedPicture:
        """Convert and encode one BGRA frame on this thread."""
        return self.encode_yuv(self.convert(bgra), keyframe=keyframe, pts_us=pts_us)

    def close(self) -> None:
        """Free the encoder now (x264's threads and buffers), not whenever the garbage
        collector gets to it. PyAV 18 has no ``close()`` on a codec context: dropping the
        last reference frees it (``avcodec_free_context``). Idempotent; an encode after
        it raises ``EncoderError``."""
        with self._lock:
            self._context = None
            self._converter = None  # and the graph's pool of YUV frames


class H264Pipeline:
    """Conversion on the caller's thread, encoding on the pipeline's own thread.

    ``submit`` converts frame N+1 while frame N is still being encoded, then queues it;
    the encoder takes frames in order. Both steps release the GIL, so on two cores the
    throughput is bounded by the slower step rather than by their sum. Nothing waits for
    a later frame: a frame submitted to an idle pipeline is encoded at once.

    The streamer does not keep a frame in flight (the next capture waits until the
    socket took the last frame: backpressure), so it calls ``H264Encoder.encode``; this
    is for a loop that may overlap frames, and bench/h264.py measures it.
    """

    def __init__(self, encoder: H264Encoder) -> None:
        self.encoder = encoder
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="h264")

    def submit(
        self, bgra: Frame, *, keyframe: bool = False, pts_us: int = 0
    ) -> concurrent.futures.Future[EncodedPicture]:
        """Convert ``bgra`` now (it may be overwritten once this returns) and queue it."""
        yuv = self.encoder.convert(bgra)
        return self._pool.submit(self.encoder.encode_yuv, yuv, keyframe=keyframe, pts_us=pts_us)

    def close(self) -> None:
        """Finish the frames already queued, then close the encoder."""
        self._pool.shutdown(wait=True)
        self.encoder.close()


def _try(name: str) -> bool:
    try:
        encoder = H264Encoder(name, 64, 64, max_rate_kbps=500)
    except EncoderError as exc:
        log.debug("h264 encoder unavailable", encoder=name, error=str(exc))
        return False
    try:
        frame = np.zeros((64, 64, 4), np.uint8)
        frame[16:48, 16:48] = (0, 0, 200, 255)
        picture = encoder.encode(frame, keyframe=True)
        return bool(picture.data) and picture.keyframe
    except EncoderError as exc:
        log.debug("h264 encoder failed its probe", encoder=name, error=str(exc))
        return False
    finally:
        encoder.close()


def probe(order: Sequence[str] = PROBE_ORDER) -> list[str]:
    """The encoders that open and encode here, best first."""
    return [name for name in order if _try(name)]


@functools.cache
def available() -> tuple[str, ...]:
    found = tuple(probe())
    log.info("h264 encoders", found=list(found) or "none")
    return found

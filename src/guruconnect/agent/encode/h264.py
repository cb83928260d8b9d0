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
"""

from __future__ import annotations

import contextlib
import fractions
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import av
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

#: Per-encoder options for low latency; anything not listed gets the generic settings.
_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {
        "preset": "veryfast",
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
    """The encoder failed; the caller falls back to raw tiles."""


@dataclass(frozen=True, slots=True)
class EncodedPicture:
    data: bytes
    keyframe: bool


def _even(value: int) -> int:
    return value + (value & 1)


class H264Encoder:
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
            context.colorspace = MATRIX
            context.color_range = ColorRange.MPEG
            context.color_primaries = 6  # SMPTE 170M (BT.601, 525 lines)
            context.color_trc = 6
            context.bit_rate = max_rate_kbps * 1000
            context.options = {
                **_OPTIONS.get(name, {}),
                "crf": str(crf),
                "maxrate": f"{max_rate_kbps}k",
                "bufsize": f"{max_rate_kbps // 2}k",
            }
            context.open()
        except Exception as exc:
            raise EncoderError(f"{name} does not open: {exc}") from exc
        self._context = context
        self._padded: Frame | None = None
        if (self.coded_width, self.coded_height) != (width, height):
            self._padded = np.zeros((self.coded_height, self.coded_width, 4), np.uint8)
        self.frames = 0

    def encode(self, bgra: Frame, *, keyframe: bool = False, pts_us: int = 0) -> EncodedPicture:
        """Encode one BGRA frame; returns the access unit (may be empty while the encoder
        buffers, which these low-latency settings never do)."""
        source = bgra
        if self._padded is not None:
            self._padded[: self.height, : self.width] = bgra
            source = self._padded
        try:
            frame = av.VideoFrame.from_ndarray(source, format="bgra")
            frame = frame.reformat(
                format="yuv420p",
                src_colorspace=MATRIX,
                dst_colorspace=MATRIX,
                src_color_range=ColorRange.JPEG,
                dst_color_range=ColorRange.MPEG,
            )
            frame.colorspace = MATRIX
            frame.color_range = ColorRange.MPEG
            frame.pts = pts_us
            if keyframe:
                frame.pict_type = PictureType.I
            packets = self._context.encode(frame)
        except Exception as exc:
            raise EncoderError(f"{self.name} failed: {exc}") from exc
        self.frames += 1
        data = b"".join(bytes(p) for p in packets)
        return EncodedPicture(data, any(p.is_keyframe for p in packets))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._context.close()


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

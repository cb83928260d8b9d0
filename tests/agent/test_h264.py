"""H.264 with PyAV: probing, quality, keyframes, colour, rate control.

PSNR threshold: 35 dB. At 35 dB the RMS error is about 4.5 levels of 255, where text on a
desktop is still crisp; a wrong colour matrix or range costs far more (a BT.601/BT.709
mix-up alone brings saturated colours down to ~25-30 dB), and a broken decode (stale or
misplaced blocks) far more again. The encoder's first picture of a change is VBV-limited
(about 35-39 dB on these frames); the refinement frames bring a still screen to ~42 dB.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from guruconnect.agent.encode import h264
from guruconnect.agent.encode.h264 import EncoderError, H264Encoder, H264Pipeline
from guruconnect.agent.encode.rate import MIN_FPS, MIN_RATE_KBPS, RateControl
from guruconnect.client.h264 import H264Decoder, psnr
from guruconnect.protocol import Codec, VideoFrame

PSNR_DB = 35.0
Frame = np.ndarray[Any, np.dtype[np.uint8]]


def desktop(width: int = 1920, height: int = 1080, seed: int = 3) -> Frame:
    """Wallpaper gradient, a window with lines of text-like strokes, a smooth photo."""
    rng = np.random.default_rng(seed)
    frame = np.zeros((height, width, 4), np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    frame[..., 0] = 90 + x * 60 // width
    frame[..., 1] = 60 + y * 50 // height
    frame[..., 2] = 40
    frame[..., 3] = 255
    top, bottom, left, right = height // 14, height * 3 // 4, width // 19, width // 2
    frame[top:bottom, left:right, :3] = 245
    frame[top : top + 28, left:right, :3] = (200, 120, 60)
    for row in range(top + 40, bottom - 20, 18):
        strokes = rng.random(right - left - 40) < 0.35
        frame[row : row + 10, left + 20 : right - 20, :3][:, strokes] = 30
    ph, pw = height // 5, width // 6
    ramp = np.linspace(0, 255, pw, dtype=np.uint8)[None, :, None]
    frame[height - ph - 40 : height - 40, width - pw - 20 : width - 20, :3] = ramp
    frame[height - 40 :, :, :3] = (45, 45, 50)
    return frame


def wire(picture: h264.EncodedPicture, width: int, height: int) -> VideoFrame:
    return VideoFrame(
        codec=Codec.CODEC_H264,
        data=picture.data,
        keyframe=picture.keyframe,
        width=width,
        height=height,
    )


def test_the_probe_opens_encoders_rather_than_trusting_names() -> None:
    found = h264.probe()
    # This wheel lists NVENC, QSV, AMF and V4L2 M2M, but none of them opens without the
    # hardware; libx264 does.
    assert "libx264" in found
    assert "h264_nvenc" not in found
    assert h264.probe(("h264_nvenc", "h264_qsv", "no_such_encoder")) == []


def test_a_desktop_sequence_decodes_above_the_psnr_threshold() -> None:
    base = desktop()
    encoder, decoder = H264Encoder("libx264", 1920, 1080), H264Decoder()
    rng = np.random.default_rng(5)
    scores = []
    for step in range(24):
        frame = base.copy()
        if step < 12:  # typing and a moving window; then the screen holds still
            row = 300 + 18 * step
            frame[row : row + 10, 120:940, :3][:, rng.random(820) < 0.35] = 30
            frame[500:620, 200 + 40 * step : 380 + 40 * step, :3] = (250, 250, 210)
        base = frame if step < 12 else base
        picture = encoder.encode(frame, keyframe=step == 0, pts_us=step * 33_333)
        assert picture.data
        assert picture.keyframe == (step == 0)
        assert decoder.apply(wire(picture, 1920, 1080)) == 1
        scores.append(psnr(decoder.rgb(), frame[:, :, 2::-1]))
    assert min(scores) >= PSNR_DB - 2, scores  # the VBV-limited first picture
    assert min(scores[4:]) >= PSNR_DB, scores
    assert scores[-1] >= 40, scores  # refined while the screen held still


def test_a_keyframe_on_request_lets_a_new_viewer_start_mid_stream() -> None:
    frame = desktop(640, 360)
    encoder = H264Encoder("libx264", 640, 360)
    pictures = [encoder.encode(frame, keyframe=i == 0, pts_us=i) for i in range(5)]
    assert [p.keyframe for p in pictures] == [True, False, False, False, False]
    requested = encoder.encode(frame, keyframe=True, pts_us=99)
    assert requested.keyframe
    joiner = H264Decoder()  # a viewer that joins now has nothing before this
    assert joiner.apply(wire(requested, 640, 360)) == 1
    assert psnr(joiner.rgb(), frame[:, :, 2::-1]) >= PSNR_DB


@pytest.mark.parametrize(
    "bgr",
    [
        (0, 0, 200),
        (0, 200, 0),
        (200, 0, 0),
        (128, 128, 128),
        (255, 255, 255),
        (0, 0, 0),
        (16, 235, 60),
    ],
)
def test_flat_colours_come_back_within_a_few_levels(bgr: tuple[int, int, int]) -> None:
    frame = np.zeros((64, 96, 4), np.uint8)
    frame[..., :3] = bgr
    frame[..., 3] = 255
    encoder, decoder = H264Encoder("libx264", 96, 64), H264Decoder()
    for i in range(3):
        decoder.apply(wire(encoder.encode(frame, keyframe=i == 0, pts_us=i), 96, 64))
    centre = decoder.picture[32, 48, :3].astype(int)
    assert np.abs(centre - np.array(bgr)).max() <= 3, (centre, bgr)


def test_odd_sizes_are_padded_and_cropped() -> None:
    frame = desktop(101, 67)
    encoder, decoder = H264Encoder("libx264", 101, 67), H264Decoder()
    for i in range(4):
        decoder.apply(wire(encoder.encode(frame, keyframe=i == 0, pts_us=i), 101, 67))
    assert decoder.picture.shape == (67, 101, 4)
    assert psnr(decoder.rgb(), frame[:, :, 2::-1]) >= 30  # tiny frames: few bits to spend


def test_the_rate_cap_bounds_a_busy_stream() -> None:
    rng = np.random.default_rng(9)

    def sizes(kbps: int) -> list[int]:
        encoder = H264Encoder("libx264", 640, 360, max_rate_kbps=kbps)
        out = []
        for i in range(40):
            frame = desktop(640, 360)
            frame[100:300, 100:400, :3] = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
            out.append(len(encoder.encode(frame, keyframe=i == 0, pts_us=i * 33_333).data))
        return out

    high, low = sizes(8000), sizes(400)
    # Frames 10-39 are one second at 30 fps: under the 400 kbit/s cap (30% for the VBV).
    kbit_per_second = sum(low[10:]) * 8 / 1000
    assert kbit_per_second < 400 * 1.3
    assert np.median(low[10:]) < np.median(high[10:]) / 4


def test_close_frees_the_encoder_and_its_threads_at_once() -> None:
    def threads() -> set[str]:
        return set(os.listdir("/proc/self/task"))

    before = threads()
    encoder = H264Encoder("libx264", 320, 180, threads=2)  # threads even on one core
    assert encoder.encode(desktop(320, 180), keyframe=True).keyframe
    started = threads() - before
    assert started  # x264's slice threads (and the converter's)
    encoder.close()
    # Freed now, not whenever the garbage collector gets to the encoder object.
    assert not threads() & started
    assert encoder.closed
    with pytest.raises(EncoderError, match="closed"):
        encoder.encode(desktop(320, 180))
    encoder.close()  # twice is fine


def test_a_capture_buffer_reused_in_place_is_read_afresh_each_frame() -> None:
    # The capturer grabs into the same array every frame; the encoder wraps it without
    # copying, so each frame must show what the array holds at that moment.
    screen = desktop(320, 180)
    encoder, decoder = H264Encoder("libx264", 320, 180), H264Decoder()
    for step in range(6):
        screen[40:100, 20 + 30 * step : 80 + 30 * step, :3] = (30 * step, 200, 250 - 30 * step)
        picture = encoder.encode(screen, keyframe=step == 0, pts_us=step)
        assert decoder.apply(wire(picture, 320, 180)) == 1
        assert psnr(decoder.rgb(), screen[:, :, 2::-1]) >= PSNR_DB - 2, step
    encoder.close()


def test_the_pipeline_keeps_order_and_owns_no_captured_memory() -> None:
    frames = [desktop(320, 180, seed=seed) for seed in range(5)]
    pipeline = H264Pipeline(H264Encoder("libx264", 320, 180))
    capture = np.empty_like(frames[0])  # one buffer, overwritten by the next capture
    pending = []
    for index, frame in enumerate(frames):
        capture[...] = frame
        pending.append(pipeline.submit(capture, keyframe=index in (0, 3), pts_us=index))
        capture[...] = 0  # once submit returned, the buffer is the capturer's again
    pictures = [future.result() for future in pending]
    assert [p.keyframe for p in pictures] == [True, False, False, True, False]
    decoder = H264Decoder()
    for picture, frame in zip(pictures, frames, strict=True):
        assert decoder.apply(wire(picture, 320, 180)) == 1
        assert psnr(decoder.rgb(), frame[:, :, 2::-1]) >= PSNR_DB - 2
    # A late joiner starts at the requested keyframe.
    joiner = H264Decoder()
    assert joiner.apply(wire(pictures[3], 320, 180)) == 1
    assert psnr(joiner.rgb(), frames[3][:, :, 2::-1]) >= PSNR_DB - 2
    pipeline.close()
    assert pipeline.encoder.closed
    with pytest.raises(EncoderError, match="closed"):
        pipeline.encoder.encode(frames[0])


def test_an_encoder_that_cannot_open_says_so() -> None:
    with pytest.raises(EncoderError, match="does not open"):
        H264Encoder("libx264", 17000, 64)  # wider than H.264 allows


def test_rate_control_backs_off_on_congestion_and_recovers_in_steps() -> None:
    now = [0.0]
    rate = RateControl(max_rate_kbps=8000, max_fps=30, clock=lambda: now[0])
    rate.congested()
    assert (rate.rate_kbps, rate.fps) == (4800, 18.0)
    for _ in range(20):
        rate.congested()
    assert (rate.rate_kbps, rate.fps) == (MIN_RATE_KBPS, MIN_FPS)
    rate.frame_sent(0.01)  # quiet, but not for long enough yet
    assert rate.rate_kbps == MIN_RATE_KBPS
    steps = []
    for _ in range(40):
        now[0] += 2.0
        rate.frame_sent(0.01)
        steps.append(rate.rate_kbps)
    assert steps == sorted(steps)
    assert steps[-1] == 8000
    assert rate.fps == 30
    rate.frame_sent(1.0)  # a frame that took a second to leave: the relay is holding back
    assert rate.rate_kbps < 8000

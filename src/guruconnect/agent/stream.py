"""One session's picture: capture, dirty tiles, pacing, cursor.

Capture and encoding run on one worker thread (the capture backends are not thread-safe,
and numpy/zstd release the GIL, so the event loop keeps answering heartbeats and input).
Pacing: at most ``fps`` frames a second. Where the capture backend reports damage (X
DAMAGE, DXGI dirty rectangles) a frame is captured as soon as something is drawn (the
frame rate is a ceiling, not a tick), only the damaged tiles are read and compared, and a
still screen costs no capture at all but a whole-frame check once a second
(``DamageTracker``). Without damage reports a frame is captured every period, and one in
which nothing changed costs a capture and a diff and sends nothing.

Backpressure: each frame is sent with ``await``, and the next capture starts only when
the socket took it. When the relay holds the agent back (its viewers' queues are full)
the sends wait and the capture rate falls with them; frames are never queued in the agent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from guruconnect.agent.capture import ALL_DISPLAYS, Capturer, DisplayInfo
from guruconnect.agent.capture.cursor import CursorSource, Pointer
from guruconnect.agent.capture.damage import DamageSource, DamageTracker
from guruconnect.agent.encode.h264 import EncoderError, H264Encoder
from guruconnect.agent.encode.rate import RateControl
from guruconnect.agent.encode.tiles import TileEncoder, TileRect
from guruconnect.protocol import Codec, CursorPosition, VideoFrame, encode

log = structlog.get_logger(__name__)

Send = Callable[[bytes], Awaitable[None]]
T = TypeVar("T")
#: H.264 frames encoded after the screen stopped changing, so it reaches full quality.
REFINE_FRAMES = 10
#: How far the rate cap may move before the H.264 encoder is opened anew.
REOPEN_RATIO = 1.5


@dataclass
class FrameStats:
    frames: int = 0
    tiles: int = 0
    bytes: int = 0
    idle: int = 0
    keyframes: int = 0
    #: Captures of only the damaged blocks (damage reports at work).
    partial: int = 0


class CaptureWorker:
    """The one thread that owns the capture backend and the cursor source."""

    def __init__(
        self,
        open_capturer: Callable[[], Capturer],
        open_cursor: Callable[[], CursorSource],
    ) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="capture")
        self._open_capturer = open_capturer
        self._open_cursor = open_cursor
        self._capturer: Capturer | None = None
        self._cursor: CursorSource | None = None
        self._damage: DamageSource | None = None
        self._damage_opened = False
        #: The damage source's descriptor, for the event loop to watch (None: poll).
        self.damage_fd: int | None = None

    def capturer(self) -> Capturer:
        if self._capturer is None:
            self._capturer = self._open_capturer()
        return self._capturer

    def cursor(self) -> CursorSource:
        if self._cursor is None:
            self._cursor = self._open_cursor()
        return self._cursor

    def damage(self) -> DamageSource | None:
        """The capture backend's damage reports, if it has any (opened once)."""
        if not self._damage_opened:
            self._damage_opened = True
            opener: Callable[[], DamageSource | None] | None = getattr(
                self.capturer(), "damage", None
            )
            self._damage = opener() if opener is not None else None
            self.damage_fd = self._damage.fileno() if self._damage is not None else None
        return self._damage

    def drop_damage(self) -> None:
        """The damage source failed: poll from now on."""
        if self._damage is not None:
            source, self._damage, self.damage_fd = self._damage, None, None
            try:
                source.close()
            except Exception as exc:
                log.warning("closing the damage source failed", error=str(exc))

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def displays(self) -> list[DisplayInfo]:
        return await self.call(lambda: self.capturer().displays())

    def close(self) -> None:
        def shut() -> None:
            self.drop_damage()
            if self._capturer is not None:
                self._capturer.close()
            if self._cursor is not None:
                self._cursor.close()

        self._pool.submit(shut)
        self._pool.shutdown(wait=True)


class Streamer:
    """Sends one session's picture, raw tiles or H.264 (``codec``), paced and rate-controlled.

    H.264 frames are encoded only when the screen changed, plus ``REFINE_FRAMES`` after the
    last change: with a capped rate the first picture of a change is coarse, and the
    frames after it bring the still screen up to full quality (about 35 dB -> 42 dB on a
    1080p desktop) before the stream goes quiet.
    """

    def __init__(
        self,
        worker: CaptureWorker,
        send: Send,
        session_id: str,
        *,
        fps: float = 30.0,
        keyframe_interval: float = 10.0,
        codec: int = Codec.CODEC_RAW_ZSTD,
        h264_encoder: str | None = None,
        max_rate_kbps: int = 8000,
        full_check: float = 1.0,
    ) -> None:
        self.worker = worker
        self.send = send
        self.session_id = session_id
        self.keyframe_interval = keyframe_interval
        self.display_id = 1
        self.display: DisplayInfo | None = None
        self.stats = FrameStats()
        self.rate = RateControl(max_rate_kbps=max_rate_kbps, max_fps=max(1.0, fps))
        self.h264_encoder = h264_encoder
        self.codec: int = Codec.CODEC_RAW_ZSTD
        self.fallback_reason = ""
        self._tiles: TileEncoder | None = None
        self._tracker: DamageTracker | None = None
        #: Seconds between whole-frame checks when damage reports drive the capture.
        self.full_check = full_check
        self._h264: H264Encoder | None = None
        self._refine = 0
        self._keyframe = True
        self._last_pointer: Pointer | None = None
        self._changed = asyncio.Event()
        self.set_codec(codec)

    def set_codec(self, codec: int) -> None:
        wanted = codec if codec == Codec.CODEC_H264 and self.h264_encoder else Codec.CODEC_RAW_ZSTD
        if wanted != self.codec:
            self.codec = wanted
            self.request_keyframe()

    def request_keyframe(self, *, dropped_frames: int = 0) -> None:
        if dropped_frames:
            self.rate.congested()
        self._keyframe = True
        self._changed.set()

    def switch(self, display_id: int) -> None:
        self.display_id = display_id
        self._keyframe = True
        self._changed.set()

    def _resolve(self) -> DisplayInfo:
        capturer = self.worker.capturer()
        if self.display_id == ALL_DISPLAYS:
            return capturer.bounds()
        displays = capturer.displays()
        for display in displays:
            if display.id == self.display_id:
                return display
        self.display_id = displays[0].id
        return displays[0]

    def _plan(self, display: DisplayInfo, keyframe: bool) -> tuple[bool, list[TileRect] | None]:
        """Worker thread: whether to capture now, and which blocks of tiles (None: the
        whole frame). Without damage reports: always, the whole frame."""
        source = self.worker.damage()
        if source is None:
            return True, None
        tracker = self._tracker
        if tracker is None:
            tracker = self._tracker = DamageTracker(
                display.width,
                display.height,
                origin=(display.x, display.y),
                period=0.0,
                full_check=self.full_check,
            )
        tracker.period = 1.0 / self.rate.fps
        try:
            rects = source.read()
        except Exception as exc:
            log.warning("damage reports failed, polling the screen", error=str(exc))
            self.worker.drop_damage()
            return True, None
        if rects is None:
            tracker.add_all()
        else:
            tracker.add(rects)
        now = time.monotonic()
        refining = self.codec == Codec.CODEC_H264 and self._refine > 0
        if not (keyframe or refining or tracker.due(now) <= now):
            return False, None
        blocks = tracker.take(now)
        return True, (None if keyframe else blocks)

    def _grab(
        self, display: DisplayInfo, tiles: TileEncoder, blocks: list[TileRect] | None
    ) -> bool:
        """Worker thread: capture the blocks (or the whole frame); whether it was partial."""
        capturer = self.worker.capturer()
        grab_area = getattr(capturer, "grab_area", None)
        if (
            blocks is None
            or grab_area is None
            or tiles.needs_whole_frame
            or self.codec == Codec.CODEC_H264  # the encoder takes whole pictures
        ):
            capturer.grab(display, tiles.target)
            return False
        for block in blocks:
            grab_area(display, *tiles.pixels(block), tiles.window(block))
        return True

    def _frame(self, keyframe: bool) -> tuple[list[bytes], int, bool] | None:
        """Worker thread: capture, diff, encode, serialise. None = nothing captured,
        ([], 0, False) = nothing to send."""
        display = self._resolve()
        tiles = self._tiles
        if tiles is None or self.display != display:
            tiles = self._tiles = TileEncoder(display.width, display.height)
            self._tracker = None
            self._close_h264()
            self.display = display
            keyframe = True
        capture, blocks = self._plan(display, keyframe)
        if not capture:
            return None
        partial = self._grab(display, tiles, blocks)
        self.stats.partial += partial
        now_us = time.time_ns() // 1000
        if self.codec == Codec.CODEC_H264:
            try:
                return self._h264_frame(display, tiles, keyframe, now_us)
            except EncoderError as exc:
                # Raw tiles always work: the session goes on in them.
                log.warning("h264 failed, falling back to raw tiles", error=str(exc))
                self.fallback_reason = str(exc)
                self._close_h264()
                self.codec = Codec.CODEC_RAW_ZSTD
                keyframe = True
        encoded = tiles.encode(
            keyframe=keyframe,
            session_id=self.session_id,
            display_id=display.id,
            now_us=now_us,
            damage=blocks if partial else None,
        )
        if encoded is None:
            return [], 0, False
        return [encode(m) for m in encoded.messages], encoded.tiles, encoded.keyframe

    def _h264_frame(
        self, display: DisplayInfo, tiles: TileEncoder, keyframe: bool, now_us: int
    ) -> tuple[list[bytes], int, bool]:
        if keyframe or tiles.changed():
            self._refine = REFINE_FRAMES
        elif self._refine > 0:
            self._refine -= 1
        else:
            return [], 0, False
        encoder = self._h264
        if (
            encoder is not None
            and not 1 / REOPEN_RATIO < (self.rate.rate_kbps / encoder.max_rate_kbps) < REOPEN_RATIO
        ):
            # The cap moved far: a new encoder under the new cap (PyAV cannot change the
            # cap of an open one). Smaller moves wait, so the stream is not reopened often.
            self._close_h264()
            encoder = None
        if encoder is None:
            assert self.h264_encoder is not None
            encoder = self._h264 = H264Encoder(
                self.h264_encoder,
                display.width,
                display.height,
                fps=self.rate.max_fps,
                max_rate_kbps=self.rate.rate_kbps,
                gop_seconds=self.keyframe_interval,
            )
            keyframe = True
        picture = encoder.encode(tiles.target, keyframe=keyframe, pts_us=now_us)
        tiles.commit()
        if not picture.data:
            return [], 0, False
        tiles.frame_number += 1
        message = VideoFrame(
            session_id=self.session_id,
            display_id=display.id,
            codec=Codec.CODEC_H264,
            timestamp_us=now_us,
            keyframe=picture.keyframe,
            width=display.width,
            height=display.height,
            data=picture.data,
            frame_number=tiles.frame_number,
        )
        return [encode(message)], 0, picture.keyframe

    def _close_h264(self) -> None:
        if self._h264 is not None:
            self._h264.close()
            self._h264 = None

    def _tick(self, keyframe: bool) -> tuple[bool, list[bytes], int, bool, list[bytes]]:
        """Worker thread, once per frame period or on damage: the frame (if one was
        captured), then the cursor messages (all of them again after a keyframe). One hop
        to the worker thread per frame."""
        frame = self._frame(keyframe)
        messages, tiles, was_keyframe = frame if frame is not None else ([], 0, False)
        cursor = [data for data in self._pointer(was_keyframe) if data is not None]
        return frame is not None, messages, tiles, was_keyframe, cursor

    def _pointer(self, again: bool) -> tuple[bytes | None, bytes | None]:
        """Cursor messages to send: what changed, or everything ``again`` (with a keyframe,
        so a viewer that joined late also gets the cursor, which may not change for long)."""
        cursor = self.worker.cursor()
        shape = cursor.shape(again=again)
        pointer = cursor.position()
        position = None
        moved = pointer is not None and (again or pointer != self._last_pointer)
        if pointer is not None and moved and self.display is not None:
            self._last_pointer = pointer
            position = encode(
                CursorPosition(
                    display_id=self.display.id,
                    x=pointer.x - self.display.x,
                    y=pointer.y - self.display.y,
                    visible=pointer.visible and self.display.contains(pointer.x, pointer.y),
                    shape_id=shape.id if shape is not None else 0,
                )
            )
        return (encode(shape) if shape is not None else None), position

    async def _wait(self, deadline: float, damage_fd: int | None) -> None:
        """Until the next period (the pointer is polled once a period), cut short by a
        keyframe request, a display switch or, when ``damage_fd`` is given, damage."""
        delay = deadline - time.monotonic()
        if delay <= 0:
            return
        self._changed.clear()
        loop = asyncio.get_running_loop()
        if damage_fd is not None:
            loop.add_reader(damage_fd, self._changed.set)
        try:
            async with asyncio.timeout(delay):
                await self._changed.wait()
        except TimeoutError:
            pass
        finally:
            if damage_fd is not None:
                loop.remove_reader(damage_fd)

    async def run(self) -> None:
        next_keyframe = time.monotonic() + self.keyframe_interval
        try:
            while True:
                started = time.monotonic()
                keyframe = self._keyframe or started >= next_keyframe
                self._keyframe = False
                captured, messages, tiles, was_keyframe, cursor = await self.worker.call(
                    functools.partial(self._tick, keyframe)
                )
                if was_keyframe:
                    next_keyframe = started + self.keyframe_interval
                    self.stats.keyframes += 1
                sending = time.monotonic()
                for data in messages:
                    await self.send(data)
                    self.stats.bytes += len(data)
                if messages:
                    self.rate.frame_sent(time.monotonic() - sending)
                    self.stats.frames += 1
                    self.stats.tiles += tiles
                else:
                    self.stats.idle += 1
                for data in cursor:
                    await self.send(data)
                # After a capture the cap holds the next one back a period; after a tick
                # that captured nothing, damage may start the next one at once.
                await self._wait(
                    started + 1.0 / self.rate.fps, None if captured else self.worker.damage_fd
                )
        finally:
            await self.worker.call(self._close_h264)

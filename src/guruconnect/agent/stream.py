"""One session's picture: capture, dirty tiles, pacing, cursor.

Capture and encoding run on one worker thread (the capture backends are not thread-safe,
and numpy/zstd release the GIL, so the event loop keeps answering heartbeats and input).
Pacing: at most ``fps`` frames a second; a frame in which nothing changed costs a capture
and a diff and sends nothing. Backpressure: each frame is sent with ``await``, and the
next capture starts only when the socket took it. When the relay holds the agent back
(its viewers' queues are full) the sends wait and the capture rate falls with them; frames
are never queued in the agent.
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
from guruconnect.agent.encode.tiles import TileEncoder
from guruconnect.protocol import CursorPosition, encode

log = structlog.get_logger(__name__)

Send = Callable[[bytes], Awaitable[None]]
T = TypeVar("T")


@dataclass
class FrameStats:
    frames: int = 0
    tiles: int = 0
    bytes: int = 0
    idle: int = 0
    keyframes: int = 0


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

    def capturer(self) -> Capturer:
        if self._capturer is None:
            self._capturer = self._open_capturer()
        return self._capturer

    def cursor(self) -> CursorSource:
        if self._cursor is None:
            self._cursor = self._open_cursor()
        return self._cursor

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def displays(self) -> list[DisplayInfo]:
        return await self.call(lambda: self.capturer().displays())

    def close(self) -> None:
        def shut() -> None:
            if self._capturer is not None:
                self._capturer.close()
            if self._cursor is not None:
                self._cursor.close()

        self._pool.submit(shut)
        self._pool.shutdown(wait=True)


class Streamer:
    def __init__(
        self,
        worker: CaptureWorker,
        send: Send,
        session_id: str,
        *,
        fps: float = 30.0,
        keyframe_interval: float = 10.0,
    ) -> None:
        self.worker = worker
        self.send = send
        self.session_id = session_id
        self.fps = max(1.0, fps)
        self.keyframe_interval = keyframe_interval
        self.display_id = 1
        self.display: DisplayInfo | None = None
        self.stats = FrameStats()
        self._encoder: TileEncoder | None = None
        self._keyframe = True
        self._last_pointer: Pointer | None = None
        self._changed = asyncio.Event()

    def request_keyframe(self) -> None:
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

    def _frame(self, keyframe: bool) -> tuple[list[bytes], int, bool]:
        """Worker thread: capture, diff, compress, serialise. ([], 0, False) = no change."""
        display = self._resolve()
        encoder = self._encoder
        if encoder is None or self.display != display:
            encoder = self._encoder = TileEncoder(display.width, display.height)
            self.display = display
            keyframe = True
        self.worker.capturer().grab(display, encoder.target)
        encoded = encoder.encode(
            keyframe=keyframe,
            session_id=self.session_id,
            display_id=display.id,
            now_us=time.time_ns() // 1000,
        )
        if encoded is None:
            return [], 0, False
        return [encode(m) for m in encoded.messages], encoded.tiles, encoded.keyframe

    def _pointer(self) -> tuple[bytes | None, bytes | None]:
        cursor = self.worker.cursor()
        shape = cursor.shape()
        pointer = cursor.position()
        position = None
        if pointer is not None and pointer != self._last_pointer and self.display is not None:
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

    async def run(self) -> None:
        period = 1.0 / self.fps
        next_keyframe = time.monotonic() + self.keyframe_interval
        while True:
            started = time.monotonic()
            keyframe = self._keyframe or started >= next_keyframe
            self._keyframe = False
            messages, tiles, was_keyframe = await self.worker.call(
                functools.partial(self._frame, keyframe)
            )
            if was_keyframe:
                next_keyframe = started + self.keyframe_interval
                self.stats.keyframes += 1
            for data in messages:
                await self.send(data)
                self.stats.bytes += len(data)
            if messages:
                self.stats.frames += 1
                self.stats.tiles += tiles
            else:
                self.stats.idle += 1
            shape, position = await self.worker.call(self._pointer)
            for extra in (shape, position):
                if extra is not None:
                    await self.send(extra)
            delay = period - (time.monotonic() - started)
            if delay > 0:
                self._changed.clear()
                # A keyframe request or a display switch cuts the wait short.
                try:
                    async with asyncio.timeout(delay):
                        await self._changed.wait()
                except TimeoutError:
                    pass

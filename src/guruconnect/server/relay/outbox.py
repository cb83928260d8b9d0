"""What waits to be written to one socket.

Two lanes: control messages (session state, chat, input for an agent) keep their order
and are never dropped; video (frames, cursor) is bounded per peer, and when a peer reads
too slowly its newest frames are dropped rather than queued without end. The writer asks
for a keyframe once the peer has caught up, so the picture heals.

The hub also reads the queues to pace the agent (``Hub.pace``): when every viewer that is
still reading is full, the relay stops reading from the agent for a moment, so the
agent's own socket pushes back instead of frames being captured only to be dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

#: Shared by every outbox until its first message: an idle peer allocates no queue.
_EMPTY: deque[bytes] = deque(maxlen=0)


class Outbox:
    __slots__ = (
        "_control",
        "_control_limit",
        "_shut",
        "_video",
        "_video_bytes",
        "_video_bytes_limit",
        "_video_limit",
        "_waiter",
        "control_overflow",
        "idle",
        "last_progress",
        "needs_keyframe",
        "on_room",
        "video_dropped",
    )

    def __init__(
        self, *, video_limit: int, video_bytes_limit: int | None = None, control_limit: int = 4096
    ) -> None:
        # Both lanes start as the shared empty deque and get their own on first use.
        self._control: deque[bytes] = _EMPTY
        self._video: deque[bytes] = _EMPTY
        self._video_limit = video_limit
        self._video_bytes_limit = video_bytes_limit
        self._video_bytes = 0
        self._control_limit = control_limit
        #: What the writer waits on while there is nothing to write (a bare future, made
        #: per wait: cheaper to hold than an Event with its deque of waiters).
        self._waiter: asyncio.Future[None] | None = None
        self._shut = False
        #: The writer is waiting with nothing queued: a message may be written at once.
        self.idle = False
        self.video_dropped = 0
        #: Frames were dropped since the last keyframe request: the picture is stale.
        self.needs_keyframe = False
        self.control_overflow = False
        #: When the writer last took something: a peer that stopped reading stops moving.
        self.last_progress = time.monotonic()
        #: Called when a video frame leaves the queue (room for the next one).
        self.on_room: Callable[[], None] | None = None

    def put_control(self, data: bytes) -> bool:
        """Queue a message that must arrive. False when the peer has stopped reading
        altogether (the caller should close it)."""
        if self._shut:
            return False
        control = self._control
        if len(control) >= self._control_limit:
            self.control_overflow = True
            return False
        if control is _EMPTY:
            control = self._control = deque()
        control.append(data)
        self._wake()
        return True

    def put_video(self, data: bytes) -> bool:
        if self._shut:
            return False
        if self.video_full:
            self.video_dropped += 1
            self.needs_keyframe = True
            return False
        video = self._video
        if video is _EMPTY:
            video = self._video = deque()
        video.append(data)
        self._video_bytes += len(data)
        self._wake()
        return True

    def _wake(self) -> None:
        self.idle = False
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def shut(self, *, flush: bool = False) -> None:
        """Stop taking messages. Video is discarded; control messages already queued are
        discarded too, or with ``flush`` still delivered (a session's last state) before
        the writer sees the end."""
        self._shut = True
        if not flush:
            self._control.clear()
        self._video.clear()
        self._video_bytes = 0
        self._wake()

    @property
    def is_shut(self) -> bool:
        return self._shut

    @property
    def backlog(self) -> int:
        """Messages waiting, of either lane."""
        return len(self._control) + len(self._video)

    @property
    def video_backlog(self) -> int:
        return len(self._video)

    @property
    def video_full(self) -> bool:
        """Full by count, or by bytes (a few big keyframes weigh as much as many deltas)."""
        if len(self._video) >= self._video_limit:
            return True
        limit = self._video_bytes_limit
        return limit is not None and self._video_bytes >= limit

    async def get(self) -> bytes | None:
        while True:
            if self._shut and not self._control:
                return None
            if self._control:
                self.last_progress = time.monotonic()
                return self._control.popleft()
            if self._video and not self._shut:
                self.last_progress = time.monotonic()
                data = self._video.popleft()
                self._video_bytes -= len(data)
                if self.on_room is not None:
                    self.on_room()
                return data
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            self.idle = True
            try:
                await waiter
            finally:
                self.idle = False
                self._waiter = None

"""What waits to be written to one socket.

Two lanes: control messages (session state, chat, input for an agent) keep their order
and are never dropped; video (frames, cursor) is bounded per peer, and when a peer reads
too slowly its newest frames are dropped rather than queued without end. The writer asks
for a keyframe once the peer has caught up, so the picture heals.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Outbox:
    def __init__(self, *, video_limit: int, control_limit: int = 4096) -> None:
        self._control: deque[bytes] = deque()
        self._video: deque[bytes] = deque()
        self._video_limit = video_limit
        self._control_limit = control_limit
        self._wake = asyncio.Event()
        self._shut = False
        self.video_dropped = 0
        #: Frames were dropped since the last keyframe request: the picture is stale.
        self.needs_keyframe = False
        self.control_overflow = False

    def put_control(self, data: bytes) -> bool:
        """Queue a message that must arrive. False when the peer has stopped reading
        altogether (the caller should close it)."""
        if self._shut:
            return False
        if len(self._control) >= self._control_limit:
            self.control_overflow = True
            return False
        self._control.append(data)
        self._wake.set()
        return True

    def put_video(self, data: bytes) -> bool:
        if self._shut:
            return False
        if len(self._video) >= self._video_limit:
            self.video_dropped += 1
            self.needs_keyframe = True
            return False
        self._video.append(data)
        self._wake.set()
        return True

    def shut(self) -> None:
        """Stop: the writer returns None once woken; what is queued is discarded."""
        self._shut = True
        self._control.clear()
        self._video.clear()
        self._wake.set()

    @property
    def is_shut(self) -> bool:
        return self._shut

    @property
    def video_backlog(self) -> int:
        return len(self._video)

    async def get(self) -> bytes | None:
        while True:
            if self._shut:
                return None
            if self._control:
                return self._control.popleft()
            if self._video:
                return self._video.popleft()
            self._wake.clear()
            await self._wake.wait()

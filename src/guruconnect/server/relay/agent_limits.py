"""What the relay checks in an agent's non-video messages before passing them on.

The agent is not trusted, and each viewer defends itself (see the viewer's ``LIMITS``); these
checks are the cheap half of that defence, done once at the relay: a display list or cursor
shape over a cap closes the agent (``4400`` and a reason saying which cap), and chat beyond
a token bucket is dropped, audited once per burst. Video frames stay unparsed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from guruconnect.protocol import CursorShape, Display
from guruconnect.protocol.errors import ProtocolError
from guruconnect.server.config import Settings
from guruconnect.server.relay.throttle import TokenBucket

#: Longest display name an agent may declare (characters).
MAX_DISPLAY_NAME = 100
#: Chat drops are audited at most this often per agent (once per burst).
CHAT_AUDIT_INTERVAL = 10.0


class OverLimit(ProtocolError):
    """A well-formed message over one of the relay's caps for agents."""


def check_displays(displays: Sequence[Display], settings: Settings) -> None:
    if len(displays) > settings.agent_max_displays:
        raise OverLimit(
            f"{len(displays)} displays; at most {settings.agent_max_displays} are allowed"
        )
    side = settings.display_max_side
    for display in displays:
        if display.width > side or display.height > side:
            raise OverLimit(f"a {display.width}x{display.height} display; at most {side} a side")
        if len(display.name) > MAX_DISPLAY_NAME:
            raise OverLimit(f"a display name over {MAX_DISPLAY_NAME} characters")


def check_cursor_shape(shape: CursorShape, settings: Settings) -> None:
    side = settings.cursor_max_side
    if shape.width > side or shape.height > side:
        raise OverLimit(f"a {shape.width}x{shape.height} cursor; at most {side} a side")
    if len(shape.bgra) != shape.width * shape.height * 4:
        raise OverLimit("a cursor shape whose pixels do not match its size")


class ChatThrottle:
    """Chat messages an agent may send: ``rate`` a second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.bucket = TokenBucket(rate, burst, time.monotonic())
        self.dropped = 0
        self._last_audit = 0.0

    def allow(self) -> bool:
        return self.bucket.allow(time.monotonic())

    def drop(self) -> int | None:
        """Count one dropped message; the drops so far when an audit event is due."""
        self.dropped += 1
        now = time.monotonic()
        if self._last_audit and now - self._last_audit < CHAT_AUDIT_INTERVAL:
            return None
        self._last_audit = now
        return self.dropped

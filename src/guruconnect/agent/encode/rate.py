"""Rate control: how much the agent sends, driven by the relay's backpressure.

Signals of congestion: the relay reports frames it dropped for a slow viewer (in a
``KeyframeRequest``), or a frame took much longer to leave the socket than a frame period
(the relay holding the agent back). Each cuts the bitrate cap and the frame rate
(multiplicative decrease); each quiet stretch raises them again in small steps (additive
increase), up to what was configured. Raw tiles have no bitrate, so only the frame rate
applies to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DECREASE = 0.6
#: Quiet time before each step up, and the step.
RECOVER_SECONDS = 2.0
RATE_STEP = 1.15
FPS_STEP = 3.0
MIN_RATE_KBPS = 300
MIN_FPS = 5.0


@dataclass
class RateControl:
    max_rate_kbps: int
    max_fps: float
    clock: Callable[[], float] = time.monotonic
    rate_kbps: int = field(init=False)
    fps: float = field(init=False)
    congestions: int = 0
    _last_change: float = field(init=False)

    def __post_init__(self) -> None:
        self.rate_kbps = self.max_rate_kbps
        self.fps = self.max_fps
        self._last_change = self.clock()

    def congested(self) -> None:
        self.congestions += 1
        self.rate_kbps = max(MIN_RATE_KBPS, int(self.rate_kbps * DECREASE))
        self.fps = max(MIN_FPS, round(self.fps * DECREASE, 1))
        self._last_change = self.clock()

    def frame_sent(self, seconds: float) -> None:
        """Called per frame with how long its send took."""
        if seconds > 3.0 / self.fps and seconds > 0.1:
            self.congested()
            return
        now = self.clock()
        if now - self._last_change >= RECOVER_SECONDS and (
            self.rate_kbps < self.max_rate_kbps or self.fps < self.max_fps
        ):
            self.rate_kbps = min(self.max_rate_kbps, int(self.rate_kbps * RATE_STEP) + 1)
            self.fps = min(self.max_fps, self.fps + FPS_STEP)
            self._last_change = now

"""A token bucket for per-viewer input: sans-I/O, the caller supplies the clock."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; one token per event."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp = now
        self.dropped = 0

    def allow(self, now: float) -> bool:
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.dropped += 1
        return False

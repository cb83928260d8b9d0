"""Failed-login limits, per source address and per username."""

from __future__ import annotations

from guruconnect.server.auth.errors import RateLimited
from guruconnect.server.rate_limits import LimiterUnavailable, RateLimits, rate

__all__ = ["LimiterUnavailable", "LoginLimiter"]


class LoginLimiter:
    def __init__(self, limits: RateLimits, per_window: str) -> None:
        self._limits = limits
        self._item = rate(per_window)

    async def check(self, address: str, username: str) -> None:
        """Raise :class:`RateLimited` if either key has used up its failures."""
        wait = 0
        for key in self._keys(address, username):
            wait = max(wait, await self._limits.retry_after(self._item, *key))
        if wait:
            raise RateLimited("too many failed login attempts", retry_after=wait)

    async def record_failure(self, address: str, username: str) -> None:
        for key in self._keys(address, username):
            await self._limits.hit(self._item, *key)

    @staticmethod
    def _keys(address: str, username: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("login", "addr", address), ("login", "user", username)

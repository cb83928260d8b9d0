"""Failed-login rate limits, per source address and per username.

One limiter, two stores (the `limits` library): memory for a single node, Redis when
``GURUCONNECT_REDIS_URL`` is set so every node counts the same failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

import redis.asyncio
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from guruconnect.server.auth.errors import RateLimited


class LimiterUnavailable(Exception):
    """The rate-limit store cannot be reached; logins are refused rather than unguarded."""


class LoginLimiter:
    def __init__(
        self, rate: str, storage: Storage, pool: redis.asyncio.ConnectionPool | None = None
    ) -> None:
        self._item: RateLimitItem = parse(rate)
        self._storage = storage
        self._pool = pool
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def create(cls, rate: str, *, redis_url: str | None, prefix: str) -> LoginLimiter:
        if not redis_url:
            return cls(rate, MemoryStorage())
        pool = redis.asyncio.ConnectionPool.from_url(redis_url)
        uri = "async+" + redis_url.removeprefix("async+")
        # The pool is ours so that close() can release it; limits types options narrowly.
        options: dict[str, Any] = {"connection_pool": pool}
        storage = RedisStorage(uri, implementation="redispy", key_prefix=prefix, **options)
        return cls(rate, storage, pool)

    async def check(self, address: str, username: str) -> None:
        """Raise :class:`RateLimited` if either key has used up its failures."""
        limited, retry_after = False, 1
        try:
            for key in self._keys(address, username):
                if not await self._limiter.test(self._item, *key):
                    limited = True
                    stats = await self._limiter.get_window_stats(self._item, *key)
                    retry_after = max(retry_after, math.ceil(stats.reset_time - time.time()))
        except Exception as exc:  # the store's own errors vary by backend
            raise LimiterUnavailable(str(exc)) from exc
        if limited:
            raise RateLimited("too many failed login attempts", retry_after=retry_after)

    async def record_failure(self, address: str, username: str) -> None:
        try:
            for key in self._keys(address, username):
                await self._limiter.hit(self._item, *key)
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc

    async def close(self) -> None:
        """Release what the store holds: the memory store's expiry task, or the Redis pool."""
        timer = getattr(self._storage, "timer", None)
        if isinstance(timer, asyncio.Task) and not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if self._pool is not None:
            await self._pool.aclose()

    @staticmethod
    def _keys(address: str, username: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("login", "addr", address), ("login", "user", username)

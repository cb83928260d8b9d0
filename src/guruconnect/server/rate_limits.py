"""Moving-window rate limits on one store (the `limits` library): memory for a single
node, Redis when ``GURUCONNECT_REDIS_URL`` is set so every node counts the same events."""

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


class LimiterUnavailable(Exception):
    """The store cannot be reached; callers refuse rather than run unguarded."""


class RateLimits:
    def __init__(self, storage: Storage, pool: redis.asyncio.ConnectionPool | None = None) -> None:
        self._storage = storage
        self._pool = pool
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def create(cls, *, redis_url: str | None, prefix: str) -> RateLimits:
        if not redis_url:
            return cls(MemoryStorage())
        pool = redis.asyncio.ConnectionPool.from_url(redis_url)
        uri = "async+" + redis_url.removeprefix("async+")
        # The pool is ours so that close() can release it; limits types options narrowly.
        options: dict[str, Any] = {"connection_pool": pool}
        storage = RedisStorage(uri, implementation="redispy", key_prefix=prefix, **options)
        return cls(storage, pool)

    async def retry_after(self, item: RateLimitItem, *key: str) -> int:
        """0 if ``key`` has room left in ``item``'s window, else seconds until it has."""
        try:
            if await self._limiter.test(item, *key):
                return 0
            stats = await self._limiter.get_window_stats(item, *key)
        except Exception as exc:  # the store's own errors vary by backend
            raise LimiterUnavailable(str(exc)) from exc
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit(self, item: RateLimitItem, *key: str) -> bool:
        """Count one event; False if it went over the limit."""
        try:
            return await self._limiter.hit(item, *key)
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc

    # -- plain counters, for limits that count first and refund ------------------------------
    # A moving window cannot give an event back; a login is counted before the password is
    # checked (so parallel guesses cannot all pass one check) and refunded if it succeeds.

    async def add(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter ``key`` (created with ``expiry`` seconds to live)
        and return its new value."""
        try:
            value = await self._storage.incr(key, expiry, amount=amount)
            if value < 0:  # a refund after the counter expired
                await self._storage.clear(key)
                value = 0
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc
        return int(value)

    async def count(self, key: str) -> int:
        try:
            return int(await self._storage.get(key))
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc

    async def seconds_left(self, key: str) -> int:
        """Seconds until the counter ``key`` expires (at least 1)."""
        try:
            expires = await self._storage.get_expiry(key)
        except Exception as exc:
            raise LimiterUnavailable(str(exc)) from exc
        return max(1, math.ceil(expires - time.time()))

    async def clear(self, key: str) -> None:
        try:
            await self._storage.clear(key)
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


def rate(text: str) -> RateLimitItem:
    return parse(text)

"""One time unit for every wait in the suite.

``GURUCONNECT_TEST_TIME_UNIT`` (default 1) multiplies every timeout: raise it on a slow or
loaded machine instead of editing tests. Tests wait on conditions, never on fixed sleeps;
``wait_until`` is the one polling helper for conditions that have no event to await.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

UNIT = float(os.environ.get("GURUCONNECT_TEST_TIME_UNIT", "1") or "1")


def scaled(seconds: float) -> float:
    """``seconds`` in this run's time unit."""
    return seconds * UNIT


def wait_until(
    condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` units."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {scaled(timeout):.1f} s")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str,
    interval: float = 0.02,
) -> T:
    """The asynchronous twin of ``wait_until``."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {scaled(timeout):.1f} s")
        await asyncio.sleep(interval)

"""Argon2id password hashing, with rehash-on-login when the parameters change."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from guruconnect.server.config import DatabaseSettings, Settings

_T = TypeVar("_T")


class Passwords:
    """Hash and check passwords with one fixed set of Argon2id parameters."""

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> Passwords:
        return cls(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )

    def __init__(self, *, time_cost: int, memory_cost_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=Type.ID,
        )
        # Verified against when the user does not exist, so that an unknown name costs
        # the same time as a wrong password (no user enumeration by timing).
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_decoy(self, password: str) -> None:
        """Spend the time of a real verification, for a user that does not exist."""
        self.verify(self._decoy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True


class Busy(Exception):
    """Every password-check slot is taken: answer "try again shortly" instead of queueing."""


class PasswordChecks:
    """At most ``slots`` Argon2 computations at once, each in a worker thread.

    Each one holds ``argon2_memory_cost_kib`` of memory for its duration, so the number
    running at once is the server's memory exposure to a burst of logins. A request that
    finds every slot taken is refused at once (:class:`Busy`), never queued: a queue would
    only move the burst's cost later and keep its sockets open meanwhile.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordChecks:
        budget_kib = settings.password_check_memory_mib * 1024
        return cls(max(1, budget_kib // settings.argon2_memory_cost_kib))

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.running = 0
        #: The most computations seen running at once (for the tests and the bench).
        self.peak = 0

    def try_acquire(self) -> bool:
        """Take a slot without waiting; thread-safe (tests hold slots from their thread)."""
        if not self._free.acquire(blocking=False):
            return False
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        return True

    def release(self) -> None:
        with self._lock:
            self.running -= 1
        self._free.release()

    async def run(self, fn: Callable[..., _T], *args: object) -> _T:
        """``fn(*args)`` in a worker thread, in a slot; :class:`Busy` if none is free."""
        if not self.try_acquire():
            raise Busy
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            self.release()

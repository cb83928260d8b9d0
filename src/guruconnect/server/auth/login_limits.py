"""Login limits: strict per (username, address) and per address, looser per username.

- **Strict, per (username, address) and per address** (``login_rate_limit``, 10 a minute):
  counted *before* the password is checked, so that guesses sent all at once cannot all
  pass a check made before any of them was counted; refunded when the login succeeds (or
  is not checked at all). Over it: 429.
- **Looser, per username from all addresses** (``login_user_rate_limit``, 50 an hour):
  not a lockout. Over it, the username is under attack and every address trying it is
  slowed by exponential backoff: after its n-th attempt an address waits 2^(n-1) seconds
  (at most ``login_backoff_max_seconds``) before the next one is checked. An address with
  no attempts on that username (the real user, elsewhere) is checked at once; a success
  clears its backoff.

So an attacker can keep one username's owner out only from the attacker's own addresses,
and guesses against one username are bounded by how many addresses the attacker has.
"""

from __future__ import annotations

from dataclasses import dataclass

from guruconnect.server.auth.errors import RateLimited
from guruconnect.server.rate_limits import LimiterUnavailable, RateLimits, rate

__all__ = ["Attempt", "LimiterUnavailable", "LoginLimiter", "Throttled"]


class Throttled(RateLimited):
    """Refused by the per-username backoff (the username is under attack)."""


@dataclass(frozen=True)
class Attempt:
    """One counted attempt; give it back to :meth:`LoginLimiter.failed` / ``succeeded`` /
    ``abandoned``."""

    address: str
    username: str
    #: The username was over its limit: this address is in backoff for it.
    backoff: bool = False


class LoginLimiter:
    def __init__(
        self,
        limits: RateLimits,
        per_window: str,
        per_user: str = "50/hour",
        backoff_max_seconds: int = 900,
    ) -> None:
        self._limits = limits
        self._strict = rate(per_window)
        self._user = rate(per_user)
        self._backoff_max = backoff_max_seconds

    def _strict_keys(self, address: str, username: str) -> tuple[str, str]:
        window = self._strict.get_expiry()
        return (
            f"login/pair/{window}/{address}/{username}",
            f"login/addr/{window}/{address}",
        )

    def _user_key(self, username: str) -> str:
        return f"login/user/{self._user.get_expiry()}/{username}"

    @staticmethod
    def _backoff_keys(address: str, username: str) -> tuple[str, str]:
        return f"login/strikes/{address}/{username}", f"login/wait/{address}/{username}"

    async def begin(self, address: str, username: str) -> Attempt:
        """Count an attempt before its password is checked.

        Raises :class:`RateLimited` (strict limit) or :class:`Throttled` (backoff); a
        refused attempt is not counted.
        """
        window = self._strict.get_expiry()
        counted: list[str] = []
        try:
            for key in self._strict_keys(address, username):
                counted.append(key)
                if await self._limits.add(key, window) > self._strict.amount:
                    wait = await self._limits.seconds_left(key)
                    raise RateLimited("too many failed login attempts", retry_after=wait)
            if await self._limits.count(self._user_key(username)) < self._user.amount:
                return Attempt(address, username)
            strikes_key, wait_key = self._backoff_keys(address, username)
            strikes = await self._limits.add(strikes_key, self._user.get_expiry())
            delay = min(2 ** min(strikes - 1, 30), self._backoff_max)
            if await self._limits.add(wait_key, delay) > 1:
                wait = await self._limits.seconds_left(wait_key)
                raise Throttled("login attempts for this user are slowed down", retry_after=wait)
            return Attempt(address, username, backoff=True)
        except RateLimited:
            await self._refund(counted)
            raise

    async def failed(self, attempt: Attempt) -> None:
        """The password was wrong (or the user unknown or disabled)."""
        await self._limits.add(self._user_key(attempt.username), self._user.get_expiry())

    async def succeeded(self, attempt: Attempt) -> None:
        await self._refund(self._strict_keys(attempt.address, attempt.username))
        for key in self._backoff_keys(attempt.address, attempt.username):
            await self._limits.clear(key)

    async def abandoned(self, attempt: Attempt) -> None:
        """Counted but never checked (no password-check slot was free)."""
        await self._refund(self._strict_keys(attempt.address, attempt.username))
        if attempt.backoff:
            await self._limits.clear(self._backoff_keys(attempt.address, attempt.username)[1])

    async def _refund(self, keys: list[str] | tuple[str, ...]) -> None:
        for key in keys:
            await self._limits.add(key, self._strict.get_expiry(), amount=-1)

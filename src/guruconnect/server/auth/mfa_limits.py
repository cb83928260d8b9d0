"""How many second-factor codes one user may try: counted before the code is checked.

The password step already limits who can reach the second one; this bounds guesses at a
6-digit code per *user* (from every address and challenge together): ``per_window``
attempts (default 5 in 5 minutes), counted before the check so that codes sent all at once
cannot all pass it, and given back when a code is right. Over it: 429 (audited by the
caller). A used challenge is remembered until it would have expired anyway, so one
password step yields at most one token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from guruconnect.server.auth.errors import RateLimited
from guruconnect.server.rate_limits import RateLimits, rate

DEFAULT_RATE = "5/5minutes"


@dataclass(frozen=True)
class MfaAttempt:
    user_id: uuid.UUID
    key: str


class MfaLimiter:
    def __init__(self, limits: RateLimits, per_window: str = DEFAULT_RATE) -> None:
        self._limits = limits
        self._rate = rate(per_window)

    def _key(self, user_id: uuid.UUID) -> str:
        return f"mfa/user/{self._rate.get_expiry()}/{user_id}"

    async def begin(self, user_id: uuid.UUID) -> MfaAttempt:
        """Count one attempt; :class:`RateLimited` (not counted) when over the limit."""
        key = self._key(user_id)
        window = self._rate.get_expiry()
        if await self._limits.add(key, window) > self._rate.amount:
            await self._limits.add(key, window, amount=-1)
            wait = await self._limits.seconds_left(key)
            raise RateLimited("too many second-factor attempts", retry_after=max(1, wait))
        return MfaAttempt(user_id, key)

    async def succeeded(self, attempt: MfaAttempt) -> None:
        await self._limits.add(attempt.key, self._rate.get_expiry(), amount=-1)

    async def use_challenge(self, jti: uuid.UUID, lifetime_seconds: int) -> bool:
        """Mark a challenge used; False if it had been used already."""
        return await self._limits.add(f"mfa/used/{jti}", max(1, lifetime_seconds)) == 1

"""Connecting to the relay, and coming back after a loss.

Reconnects use exponential backoff with jitter (half the delay fixed, half random), so a
relay restart with a thousand agents does not get them all back in the same second.
Refusals that no retry can fix end the agent with a message instead of a retry storm:
a revoked or unknown key, a used or expired support code, another agent with this key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from guruconnect.client import Refused
from guruconnect.protocol import CloseCode


class AgentExit(Exception):
    """The agent must stop: ``message`` is for the person who runs it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


#: Exit codes (a service manager must not restart on these: see ``agent install``).
EXIT_OK = 0
EXIT_REFUSED = 3


def fatal_refusal(refused: Refused, *, support_code: bool) -> AgentExit | None:
    """The exit a refusal calls for, or None when trying again may work."""
    code = refused.code
    reason = refused.reason or "no reason given"
    if code in (CloseCode.UNAUTHORIZED, 401, 403):
        what = "support code" if support_code else "agent key"
        return AgentExit(f"the relay refused this {what}: {reason}", EXIT_REFUSED)
    if code == CloseCode.REVOKED:
        return AgentExit(f"this agent's key was revoked: {reason}", EXIT_REFUSED)
    if code == CloseCode.REPLACED:
        return AgentExit("another agent connected with this key; this one stops", EXIT_REFUSED)
    if code == CloseCode.FORBIDDEN_ORIGIN:
        return AgentExit(f"the relay refused the connection: {reason}", EXIT_REFUSED)
    return None


@dataclass
class Backoff:
    """Delays 1, 2, 4, ... seconds up to ``cap``, each between half and all of that."""

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (1 << self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0

"""The auth package's exceptions (the tree is drawn in ``auth/__init__.py``)."""

from __future__ import annotations


class AuthError(Exception):
    """Authentication or authorisation failed; ``str()`` is safe to show a client."""


class InvalidToken(AuthError):
    """The token is not one this server issued for this plane, or it has expired."""


class RevokedToken(InvalidToken):
    """The token was valid but has been revoked (logout, admin action, user deleted)."""


class RateLimited(AuthError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

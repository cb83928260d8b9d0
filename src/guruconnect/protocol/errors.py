"""Everything the protocol layer raises about bytes that came off the network.

::

    ProtocolError               close with 4400 PROTOCOL_ERROR
    ├── DecodeError             4400: malformed envelope, no payload, ambiguous payload
    ├── MessageTooLarge         1009 MESSAGE_TOO_BIG: over the plane's size limit
    └── MessageNotAllowed       4403 NOT_ALLOWED: a type this plane may not send

Each class names its close code in ``close_code``, and ``str(exc)`` is a short reason
(under 120 bytes of UTF-8, never any of the offending bytes) that is safe to send as the
WebSocket close reason. Misuse by local code (encoding something that is not a payload)
raises ``TypeError``/``ValueError`` instead: that is a bug, not a peer's fault.
"""

from __future__ import annotations

from typing import ClassVar

from guruconnect.protocol.close_codes import CloseCode, reason

__all__ = ["DecodeError", "MessageNotAllowed", "MessageTooLarge", "ProtocolError"]

# Under the 123 bytes a close frame allows, with room for a prefix a caller might add.
_REASON_LIMIT = 119


class ProtocolError(Exception):
    """A peer sent something the protocol refuses; close the connection with ``close_code``."""

    close_code: ClassVar[CloseCode] = CloseCode.PROTOCOL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(reason(message, limit=_REASON_LIMIT))


class DecodeError(ProtocolError):
    """Bytes that are not exactly one well-formed envelope with one payload."""


class MessageTooLarge(ProtocolError):
    """A message bigger than the plane allows; refused before any parsing."""

    close_code: ClassVar[CloseCode] = CloseCode.MESSAGE_TOO_BIG

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"message of {size} bytes exceeds the limit of {limit}")

    def __reduce__(self) -> tuple[type[MessageTooLarge], tuple[int, int]]:
        # The default rebuilds from ``args`` (the text), which this __init__ does not take.
        return (type(self), (self.size, self.limit))


class MessageNotAllowed(ProtocolError):
    """A well-formed message of a type the sender may not send on this plane."""

    close_code: ClassVar[CloseCode] = CloseCode.NOT_ALLOWED

    def __init__(self, message_type: str, plane: str = "") -> None:
        self.message_type = message_type
        self.plane = plane
        where = f" on the {plane} plane" if plane else ""
        super().__init__(f"{message_type} not allowed{where}")

    def __reduce__(self) -> tuple[type[MessageNotAllowed], tuple[str, str]]:
        return (type(self), (self.message_type, self.plane))

"""WebSocket close codes used by the relay, the agent and the viewer.

====  ==================  ==================================================================
code  name                when
====  ==================  ==================================================================
1000  NORMAL              an orderly close that either side asked for
1001  GOING_AWAY          the server is shutting down or the client is leaving
1009  MESSAGE_TOO_BIG     a message over the plane's size limit
1011  INTERNAL_ERROR      the server hit a bug; the details are in its log, never on the wire
4001  UNAUTHORIZED        missing, invalid or unknown credential; another plane's credential;
                          a used or expired ticket or support code
4003  FORBIDDEN_ORIGIN    the Origin header is not the server's own origin
4004  SESSION_NOT_FOUND   the session does not exist (or is not this credential's to see)
4008  RATE_LIMITED        too many connections or attempts from this source
4009  REPLACED            a newer connection with the same agent key took over
4010  REVOKED             the agent key was revoked, the user's tokens were revoked, or the
                          user was deleted or lost access
4400  PROTOCOL_ERROR      a malformed message
4403  NOT_ALLOWED         a message type this plane may not send in this direction
4408  HEARTBEAT_TIMEOUT   no heartbeat within the agreed interval
4410  SESSION_ENDED       the session ended: by the technician, consent denied or timed out,
                          or the agent went away
====  ==================  ==================================================================

Codes 4000-4999 are the application range of RFC 6455; 44xx mirror the HTTP status they
resemble. A close reason is at most 123 bytes of UTF-8 (a control frame carries 125 bytes,
two of them the code): build reasons with :func:`reason`.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["MAX_REASON_BYTES", "CloseCode", "reason"]

#: RFC 6455: a close frame's payload is at most 125 bytes, two of which are the code.
MAX_REASON_BYTES = 123


class CloseCode(IntEnum):
    """A WebSocket close code; the module docstring says when each one is used."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    UNAUTHORIZED = 4001
    FORBIDDEN_ORIGIN = 4003
    SESSION_NOT_FOUND = 4004
    RATE_LIMITED = 4008
    REPLACED = 4009
    REVOKED = 4010
    PROTOCOL_ERROR = 4400
    NOT_ALLOWED = 4403
    HEARTBEAT_TIMEOUT = 4408
    SESSION_ENDED = 4410


def reason(text: str, *, limit: int = MAX_REASON_BYTES) -> str:
    """Return ``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character.

    Lone surrogates become ``?`` so that the result always encodes.
    """
    encoded = text.encode("utf-8", errors="replace")
    # Decoding with "ignore" drops a character the cut split in two, and only that.
    return encoded[:limit].decode("utf-8", errors="ignore")

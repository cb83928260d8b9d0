"""Which payload types may travel which way on each plane.

The relay checks every inbound message against :data:`INBOUND` before it routes it:
an agent can never inject input and a viewer can never forge video. :data:`OUTBOUND`
is what the relay itself may send, for the endpoints to check in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from guruconnect.protocol.envelope import Buffer, peek_type
from guruconnect.protocol.errors import MessageNotAllowed, MessageTooLarge

__all__ = [
    "AGENT_SENDS",
    "INBOUND",
    "INPUT_TYPES",
    "OUTBOUND",
    "RELAY_TO_AGENT",
    "RELAY_TO_VIEWER",
    "VIDEO_TYPES",
    "VIEWER_SENDS",
    "Plane",
    "inbound_type",
]


class Plane(StrEnum):
    """A WebSocket endpoint family, each with its own credentials and allowlists."""

    AGENT = "agent"
    VIEWER = "viewer"


#: Agent -> relay.
AGENT_SENDS: Final = frozenset(
    {
        "agent_hello",
        "agent_status",
        "session_response",
        "video_frame",
        "cursor_shape",
        "cursor_position",
        "consent_response",
        "chat",
        "clipboard",
        "display_list",
        "heartbeat",
        "disconnect",
        "update_result",
    }
)

#: Relay -> agent.
RELAY_TO_AGENT: Final = frozenset(
    {
        "auth_result",
        "session_request",
        # A session's end (or change) without closing the agent's connection.
        "session_state",
        "consent_request",
        "mouse_event",
        "key_event",
        "special_key",
        "chat",
        "clipboard",
        "display_switch",
        "keyframe_request",
        "heartbeat",
        "disconnect",
        "error",
        # A signed release the agent may install (it verifies the signature itself).
        "update_available",
    }
)

#: Viewer -> relay.
VIEWER_SENDS: Final = frozenset(
    {
        "viewer_hello",
        "mouse_event",
        "key_event",
        "special_key",
        "chat",
        "clipboard",
        "display_switch",
        "keyframe_request",
        "control_request",
        "heartbeat",
        "disconnect",
    }
)

#: Relay -> viewer.
RELAY_TO_VIEWER: Final = frozenset(
    {
        "session_state",
        "video_frame",
        "cursor_shape",
        "cursor_position",
        "chat",
        "clipboard",
        "display_list",
        "heartbeat",
        "disconnect",
        "error",
    }
)

#: Remote input: only viewers send it, only with control scope.
INPUT_TYPES: Final = frozenset({"mouse_event", "key_event", "special_key"})

#: What the relay may drop for a slow viewer (a keyframe request recovers the picture);
#: every other type must be delivered.
VIDEO_TYPES: Final = frozenset({"video_frame", "cursor_shape", "cursor_position"})

#: What each plane's peer may send to the relay.
INBOUND: Final[Mapping[Plane, frozenset[str]]] = MappingProxyType(
    {Plane.AGENT: AGENT_SENDS, Plane.VIEWER: VIEWER_SENDS}
)

#: What the relay may send to each plane's peer.
OUTBOUND: Final[Mapping[Plane, frozenset[str]]] = MappingProxyType(
    {Plane.AGENT: RELAY_TO_AGENT, Plane.VIEWER: RELAY_TO_VIEWER}
)


def inbound_type(plane: Plane, data: Buffer, *, max_size: int) -> str:
    """Return the payload type of a message a ``plane`` peer sent to the relay.

    Checks, in this order so the cheap check guards the others: the size
    (:class:`MessageTooLarge`), the framing (:class:`DecodeError`), the allowlist
    (:class:`MessageNotAllowed`).
    """
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > max_size:
        raise MessageTooLarge(size, max_size)
    kind = peek_type(data)
    if kind not in INBOUND[plane]:
        raise MessageNotAllowed(kind, plane)
    return kind

"""One WebSocket message = one :class:`Envelope`: peek at its type, decode it, encode it.

The relay routes by :func:`peek_type`, which reads only the envelope's top-level field
tags and forwards the original bytes; endpoints use :func:`decode` and :func:`encode`.
:func:`decode` peeks first, so an envelope the relay would refuse is never accepted by
a client either (and decode also refuses malformed payload contents, which peek skips).
"""

from __future__ import annotations

from typing import Final, TypeAlias, cast

from guruconnect.protocol.errors import DecodeError
from guruconnect.protocol.guruconnect_pb2 import (
    AgentHello,
    AgentStatus,
    AuthResult,
    ChatMessage,
    ClipboardText,
    ConsentRequest,
    ConsentResponse,
    ControlRequest,
    CursorPosition,
    CursorShape,
    Disconnect,
    DisplayList,
    DisplaySwitch,
    Envelope,
    Error,
    Heartbeat,
    KeyEvent,
    KeyframeRequest,
    MouseEvent,
    SessionRequest,
    SessionResponse,
    SessionState,
    SpecialKeyEvent,
    UpdateAvailable,
    UpdateResult,
    VideoFrame,
    ViewerHello,
)

__all__ = [
    "MAX_TOP_LEVEL_FIELDS",
    "PAYLOAD_TYPES",
    "Buffer",
    "Envelope",
    "PayloadMessage",
    "decode",
    "encode",
    "payload",
    "peek_type",
    "wrap",
]

#: What the readers take: whatever a WebSocket library hands over, without a copy.
Buffer: TypeAlias = bytes | bytearray | memoryview

#: Any message that can be an envelope's payload (tests check it against the descriptor).
PayloadMessage: TypeAlias = (
    AgentHello
    | AuthResult
    | AgentStatus
    | SessionRequest
    | SessionResponse
    | SessionState
    | ViewerHello
    | VideoFrame
    | CursorShape
    | CursorPosition
    | KeyframeRequest
    | MouseEvent
    | KeyEvent
    | SpecialKeyEvent
    | ConsentRequest
    | ConsentResponse
    | ChatMessage
    | ClipboardText
    | DisplayList
    | DisplaySwitch
    | ControlRequest
    | Heartbeat
    | Disconnect
    | Error
    | UpdateAvailable
    | UpdateResult
)

#: Today an envelope has two top-level fields (seq, payload). The cap leaves room for
#: fields a newer peer may add, and bounds the Python loop in :func:`peek_type`: without
#: it, a multi-MiB message of two-byte unknown fields would hold the relay's event loop
#: for a large fraction of a second.
MAX_TOP_LEVEL_FIELDS: Final = 64


# Wire types (https://protobuf.dev/programming-guides/encoding/); 3 and 4 are the
# deprecated groups, which no GuruConnect sender produces, so they are refused.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def _build_tables() -> tuple[dict[int, str], dict[str, str], dict[str, bytes]]:
    """Read the payload fields off the descriptor, so a new field needs no edit here."""
    name_by_number: dict[int, str] = {}
    field_by_message: dict[str, str] = {}
    header_by_field: dict[str, bytes] = {}
    for field in Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields:
        if field.message_type is None:
            raise RuntimeError(f"payload field {field.name} is not a message")
        message_name: str = field.message_type.full_name
        if message_name in field_by_message:
            # encode() picks the field by the message's type; two fields of one type
            # would make that ambiguous.
            raise RuntimeError(f"two payload fields carry {message_name}")
        name_by_number[field.number] = field.name
        field_by_message[message_name] = field.name
        header_by_field[field.name] = _varint(field.number << 3 | _LEN)
    return name_by_number, field_by_message, header_by_field


_NAME_BY_NUMBER, _FIELD_BY_MESSAGE, _HEADER_BY_FIELD = _build_tables()

#: The names of the envelope's payload fields, e.g. ``"video_frame"``.
PAYLOAD_TYPES: Final = frozenset(_NAME_BY_NUMBER.values())

_SEQ_HEADER = _varint(Envelope.DESCRIPTOR.fields_by_name["seq"].number << 3 | _VARINT)


def _varint_tail(buf: Buffer, pos: int, first: int, max_bytes: int) -> tuple[int, int]:
    """Finish a varint whose first byte ``first`` (continuation bit set) is already read."""
    value = first & 0x7F
    shift = 7
    end = len(buf)
    for _ in range(max_bytes - 1):
        if pos >= end:
            raise DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise DecodeError("varint too long")


def _bytes_view(data: Buffer) -> Buffer:
    """Index ``data`` as unsigned bytes without copying it."""
    if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
        # A signed or wider view would index as other numbers; cast() shares the memory.
        return data.cast("B") if data.c_contiguous else data.tobytes()
    return data


def peek_type(data: Buffer) -> str:
    """Return the envelope's payload field name, reading only the top-level tags.

    Unknown non-payload fields are skipped. Raises :class:`DecodeError` for truncated or
    over-long varints and lengths, field number 0, wire types other than 0, 1, 2 and 5, a
    payload field that is not length-delimited, no payload, two different payloads, or
    more than :data:`MAX_TOP_LEVEL_FIELDS` fields. The payload's own bytes are not read.
    """
    buf = _bytes_view(data)
    end = len(buf)
    pos = 0
    found: str | None = None
    fields = 0
    while pos < end:
        fields += 1
        if fields > MAX_TOP_LEVEL_FIELDS:
            raise DecodeError("too many top-level fields")
        tag = buf[pos]
        pos += 1
        if tag >= 0x80:
            # As protobuf: a tag is at most five bytes and fits in 32 bits.
            tag, pos = _varint_tail(buf, pos, tag, 5)
            if tag > 0xFFFFFFFF:
                raise DecodeError("field number out of range")
        number = tag >> 3
        wire = tag & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == _LEN:
            if pos >= end:
                raise DecodeError("truncated length")
            length = buf[pos]
            pos += 1
            if length >= 0x80:
                # Protobuf refuses lengths of more than five bytes; so do we.
                length, pos = _varint_tail(buf, pos, length, 5)
            pos += length
            if pos > end:
                raise DecodeError("length past the end of the message")
            name = _NAME_BY_NUMBER.get(number)
            if name is not None:
                if found is not None and found != name:
                    # Protobuf would keep the last one; a relay and a client that
                    # disagreed about the type would be a filter bypass.
                    raise DecodeError(f"two payloads: {found} and {name}")
                found = name
            continue
        if number in _NAME_BY_NUMBER:
            raise DecodeError(f"{_NAME_BY_NUMBER[number]} is not length-delimited")
        if wire == _VARINT:
            if pos >= end:
                raise DecodeError("truncated varint")
            byte = buf[pos]
            pos += 1
            if byte >= 0x80:
                _, pos = _varint_tail(buf, pos, byte, 10)
        elif wire == _I64:
            pos += 8
        elif wire == _I32:
            pos += 4
        else:
            raise DecodeError(f"invalid wire type {wire}")
        if pos > end:
            raise DecodeError("truncated fixed-width field")
    if found is None:
        raise DecodeError("no payload")
    return found


def decode(data: Buffer) -> Envelope:
    """Parse one envelope; :class:`DecodeError` for anything :func:`peek_type` or protobuf
    refuses (including malformed payload contents and invalid UTF-8 in strings)."""
    kind = peek_type(data)
    try:
        # The runtimes (upb and pure Python) take any buffer; the stubs only say bytes.
        envelope: Envelope = Envelope.FromString(cast(bytes, _bytes_view(data)))
    except Exception as exc:
        # Whatever the runtime (upb, C++ or pure Python, each with its own exception
        # types), a peer's bytes must end as our error, never as a traceback.
        raise DecodeError(f"malformed {kind}") from exc
    if envelope.WhichOneof("payload") != kind:
        # Unreachable unless peek_type and protobuf disagree; the fuzz tests hunt for that.
        raise DecodeError("inconsistent envelope")
    return envelope


def payload(envelope: Envelope) -> tuple[str, PayloadMessage]:
    """Return ``(field name, message)`` for the envelope's payload."""
    name = envelope.WhichOneof("payload")
    if name is None:
        raise DecodeError("no payload")
    message: PayloadMessage = getattr(envelope, name)
    return name, message


def _field_for(message: object) -> str:
    descriptor = getattr(type(message), "DESCRIPTOR", None)
    field = _FIELD_BY_MESSAGE.get(getattr(descriptor, "full_name", ""))
    if field is None:
        raise TypeError(f"{type(message).__name__} is not an envelope payload")
    return field


def _check_seq(seq: int) -> None:
    if not 0 <= seq < 1 << 64:
        raise ValueError(f"seq {seq} is not a uint64")


def wrap(message: PayloadMessage, *, seq: int = 0) -> Envelope:
    """Return a new envelope holding a copy of ``message`` in the field for its type."""
    _check_seq(seq)
    envelope = Envelope(seq=seq)
    getattr(envelope, _field_for(message)).CopyFrom(message)
    return envelope


def encode(message: PayloadMessage | Envelope, *, seq: int = 0) -> bytes:
    """Serialize an envelope, or wrap a payload message into one and serialize that.

    A payload is framed by hand (seq, then field tag, length and the message's bytes):
    the same bytes as ``wrap(message, seq=seq).SerializeToString()`` without deep-copying
    a multi-MiB video frame into an envelope first. An :class:`Envelope` keeps its own
    ``seq``; passing ``seq`` as well is refused rather than silently ignored.
    """
    if isinstance(message, Envelope):
        if seq:
            raise ValueError("set seq on the Envelope itself")
        if message.WhichOneof("payload") is None:
            raise ValueError("the envelope has no payload")
        data: bytes = message.SerializeToString()
        return data
    header = _HEADER_BY_FIELD[_field_for(message)]
    _check_seq(seq)
    body: bytes = message.SerializeToString()
    # proto3 leaves a zero seq out, and fields go in number order: seq (1) before payload.
    prefix = _SEQ_HEADER + _varint(seq) if seq else b""
    return b"".join((prefix, header, _varint(len(body)), body))

"""Envelope framing with literal bytes: peek_type, decode, encode, wrap, payload."""

from __future__ import annotations

import array
from typing import get_args

import pytest
from google.protobuf import message as protobuf_message

import guruconnect.protocol as protocol
from guruconnect.protocol import (
    PAYLOAD_TYPES,
    ClipboardText,
    DecodeError,
    Envelope,
    Heartbeat,
    KeyEvent,
    ProtocolError,
    Tile,
    VideoFrame,
    decode,
    encode,
    guruconnect_pb2,
    payload,
    peek_type,
    wrap,
)
from guruconnect.protocol.envelope import MAX_TOP_LEVEL_FIELDS, PayloadMessage
from tests.protocol.samples import SAMPLES

# Worked out by hand: tag = field number << 3 | 2 (length-delimited), as a varint.
HEADERS = {
    "agent_hello": b"\x52",  # 10
    "auth_result": b"\x5a",  # 11
    "agent_status": b"\x62",  # 12
    "session_request": b"\x6a",  # 13
    "session_response": b"\x72",  # 14
    "session_state": b"\x7a",  # 15
    "viewer_hello": b"\x82\x01",  # 16
    "video_frame": b"\xa2\x01",  # 20
    "cursor_shape": b"\xaa\x01",  # 21
    "cursor_position": b"\xb2\x01",  # 22
    "keyframe_request": b"\xba\x01",  # 23
    "mouse_event": b"\xf2\x01",  # 30
    "key_event": b"\xfa\x01",  # 31
    "special_key": b"\x82\x02",  # 32
    "consent_request": b"\xc2\x02",  # 40
    "consent_response": b"\xca\x02",  # 41
    "chat": b"\xd2\x02",  # 42
    "clipboard": b"\xda\x02",  # 43
    "display_list": b"\xe2\x02",  # 44
    "display_switch": b"\xea\x02",  # 45
    "control_request": b"\xf2\x02",  # 46
    "heartbeat": b"\x92\x03",  # 50
    "disconnect": b"\x9a\x03",  # 51
    "error": b"\xa2\x03",  # 52
    "update_available": b"\xe2\x03",  # 60
    "update_result": b"\xea\x03",  # 61
}
HEARTBEAT = b"\x92\x03\x00"  # an empty heartbeat: field 50, length 0
EIGHT = b"\x00" * 8


def oracle(data: bytes) -> str | None:
    """The payload type protobuf itself sees."""
    result: str | None = Envelope.FromString(data).WhichOneof("payload")
    return result


def test_the_table_covers_every_payload_field() -> None:
    assert set(HEADERS) == PAYLOAD_TYPES == set(SAMPLES)
    oneof = Envelope.DESCRIPTOR.oneofs_by_name["payload"]
    assert {field.name for field in oneof.fields} == PAYLOAD_TYPES


@pytest.mark.parametrize(("name", "header"), HEADERS.items())
def test_peek_every_type(name: str, header: bytes) -> None:
    empty = header + b"\x00"
    with_seq = b"\x08\x05" + empty
    assert peek_type(empty) == name
    assert peek_type(with_seq) == name
    assert oracle(with_seq) == name
    assert decode(with_seq).seq == 5
    # Encoding an empty message of the type produces exactly the hand-built bytes.
    assert encode(type(SAMPLES[name])()) == empty
    assert encode(type(SAMPLES[name])(), seq=5) == with_seq


ACCEPTED = [
    # The same payload field twice: protobuf merges the two, so the type is unambiguous.
    pytest.param(b"\xa2\x01\x00\xa2\x01\x00", "video_frame", id="same-payload-twice"),
    pytest.param(b"\x08\x05\x08\x06" + HEARTBEAT, "heartbeat", id="seq-twice"),
    pytest.param(b"\x98\x06\x01" + HEARTBEAT, "heartbeat", id="unknown-varint-field-99"),
    pytest.param(b"\x4a\x03abc" + HEARTBEAT, "heartbeat", id="unknown-len-field-9"),
    pytest.param(b"\x11" + EIGHT + HEARTBEAT, "heartbeat", id="unknown-fixed64-field-2"),
    pytest.param(b"\x1d\x00\x00\x00\x00" + HEARTBEAT, "heartbeat", id="unknown-fixed32-field-3"),
    # Field 17 is in the gap between payload numbers; its contents look like a video
    # frame but are never read.
    pytest.param(b"\x8a\x01\x03\xa2\x01\x00" + HEARTBEAT, "heartbeat", id="unknown-field-17"),
    pytest.param(HEARTBEAT + b"\x98\x06\x01", "heartbeat", id="unknown-after-payload"),
    # seq with the wrong wire type is an unknown field to protobuf too.
    pytest.param(b"\x0a\x00" + HEARTBEAT, "heartbeat", id="seq-as-bytes"),
    pytest.param(b"\xf8\xff\xff\xff\x0f\x00" + HEARTBEAT, "heartbeat", id="max-field-number"),
    pytest.param(b"\xa2\x81\x00\x00", "video_frame", id="padded-tag"),
    pytest.param(b"\xa2\x01\x80\x00", "video_frame", id="padded-length"),
    pytest.param(b"\x08" + b"\xff" * 9 + b"\x01" + HEARTBEAT, "heartbeat", id="ten-byte-varint"),
    pytest.param(b"\x08\x00" * (MAX_TOP_LEVEL_FIELDS - 1) + HEARTBEAT, "heartbeat", id="64-fields"),
]


@pytest.mark.parametrize(("data", "expected"), ACCEPTED)
def test_peek_accepts(data: bytes, expected: str) -> None:
    assert peek_type(data) == expected
    assert oracle(data) == expected
    assert decode(data).WhichOneof("payload") == expected


REFUSED = [
    pytest.param(b"", "no payload", id="empty"),
    pytest.param(b"\x08\x05", "no payload", id="seq-only"),
    pytest.param(b"\x4a\x00", "no payload", id="unknown-only"),
    pytest.param(b"\xa2", "truncated varint", id="truncated-tag"),
    pytest.param(b"\xa2\x01", "truncated length", id="missing-length"),
    pytest.param(b"\xa2\x01\x80", "truncated varint", id="truncated-length"),
    pytest.param(b"\xa2\x01\x05\x00\x00\x00", "past the end", id="length-past-end"),
    pytest.param(b"\xa2\x01\x80\x80\x80\x80\x80\x00", "too long", id="six-byte-length"),
    pytest.param(b"\x08", "truncated varint", id="missing-varint"),
    pytest.param(b"\x08\x80", "truncated varint", id="truncated-varint"),
    pytest.param(b"\x08" + b"\xff" * 10 + b"\x01" + HEARTBEAT, "too long", id="11-byte-varint"),
    pytest.param(b"\x88\x80\x80\x80\x80\x00\x00" + HEARTBEAT, "too long", id="six-byte-tag"),
    pytest.param(b"\xf8\xff\xff\xff\x1f\x00" + HEARTBEAT, "out of range", id="tag-over-32-bits"),
    pytest.param(b"\x00" + HEARTBEAT, "field number 0", id="field-0-varint"),
    pytest.param(b"\x02\x00" + HEARTBEAT, "field number 0", id="field-0-bytes"),
    pytest.param(b"\x0b" + HEARTBEAT, "wire type 3", id="start-group"),
    pytest.param(b"\x0c" + HEARTBEAT, "wire type 4", id="end-group"),
    pytest.param(b"\x0e" + HEARTBEAT, "wire type 6", id="wire-type-6"),
    pytest.param(b"\x0f" + HEARTBEAT, "wire type 7", id="wire-type-7"),
    pytest.param(b"\xa0\x01\x00", "video_frame is not length-delimited", id="payload-varint"),
    pytest.param(b"\xa1\x01" + EIGHT, "video_frame is not length-delimited", id="payload-i64"),
    pytest.param(b"\xa5\x01\x00\x00\x00\x00", "not length-delimited", id="payload-i32"),
    pytest.param(b"\x11\x00\x00\x00", "truncated fixed-width", id="truncated-fixed64"),
    pytest.param(b"\x1d\x00" + HEARTBEAT[:1], "truncated fixed-width", id="truncated-fixed32"),
    pytest.param(b"\x92\x03\x00\xa2\x01\x00", "two payloads: heartbeat and video_frame", id="two"),
    pytest.param(b"\xfa\x01\x00\x98\x06\x01\xa2\x01\x00", "two payloads", id="two-around-unknown"),
    pytest.param(b"\x08\x00" * MAX_TOP_LEVEL_FIELDS + HEARTBEAT, "too many", id="65-fields"),
]


@pytest.mark.parametrize(("data", "message"), REFUSED)
def test_peek_refuses(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        peek_type(data)
    with pytest.raises(DecodeError):
        decode(data)


def test_two_payloads_would_be_last_wins_for_protobuf() -> None:
    # Why "two payloads" is refused: protobuf alone would say video_frame, and a filter
    # that looked at the first field would say heartbeat.
    assert oracle(b"\x92\x03\x00\xa2\x01\x00") == "video_frame"


def test_peek_does_not_read_the_payload() -> None:
    corrupt = b"\xa2\x01\x03\xff\xff\xff"  # a video frame whose contents are garbage
    assert peek_type(corrupt) == "video_frame"
    with pytest.raises(DecodeError, match="malformed video_frame") as caught:
        decode(corrupt)
    # protobuf's error is chained for the log, but is not what escapes.
    assert not isinstance(caught.value, protobuf_message.DecodeError)
    assert isinstance(caught.value.__cause__, protobuf_message.DecodeError)


def test_decode_refuses_invalid_utf8() -> None:
    clipboard = b"\xda\x02\x03\x0a\x01\xff"  # ClipboardText.text = b"\xff"
    assert peek_type(clipboard) == "clipboard"
    with pytest.raises(DecodeError, match="malformed clipboard"):
        decode(clipboard)


def test_buffers_of_every_kind() -> None:
    data = b"\x08\x05\xfa\x01\x04\x08\x1e\x18\x01"
    padded = memoryview(b"junk" + data + b"junk")[4:-4]
    signed = memoryview(array.array("b", data))  # indexes as negative numbers uncast
    wide = memoryview(data).cast("B", (3, 3))
    for buffer in (data, bytearray(data), memoryview(data), padded, signed, wide):
        assert peek_type(buffer) == "key_event"
        assert decode(buffer) == Envelope(seq=5, key_event=KeyEvent(scan_code=0x1E, down=True))


def test_encode_literal_bytes() -> None:
    assert encode(Heartbeat(sent_at_ms=1), seq=5) == b"\x08\x05\x92\x03\x02\x08\x01"
    assert encode(KeyEvent(scan_code=0x1E, down=True)) == b"\xfa\x01\x04\x08\x1e\x18\x01"
    assert encode(Heartbeat(), seq=300) == b"\x08\xac\x02\x92\x03\x00"
    # A body over 127 bytes takes a two-byte length.
    assert encode(ClipboardText(text="a" * 200)) == b"\xda\x02\xcb\x01\x0a\xc8\x01" + b"a" * 200


SEQS = [0, 1, 127, 128, 2**32, 2**64 - 1]


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("seq", SEQS)
def test_round_trip(name: str, seq: int) -> None:
    message = SAMPLES[name]
    data = encode(message, seq=seq)
    # Hand framing gives exactly what protobuf would serialize for the wrapped envelope.
    assert data == wrap(message, seq=seq).SerializeToString()
    assert encode(wrap(message, seq=seq)) == data
    assert peek_type(data) == name
    envelope = decode(data)
    assert envelope.seq == seq
    assert payload(envelope) == (name, message)


def test_round_trip_of_a_large_frame() -> None:
    frame = VideoFrame(session_id="s", data=bytes(range(256)) * 12_000, keyframe=True)
    data = encode(frame, seq=9)
    assert len(data) > 3_000_000
    assert data[:5] == b"\x08\x09\xa2\x01\x8a"  # seq 9, field 20, then a 4-byte length
    assert peek_type(data) == "video_frame"
    assert payload(decode(data)) == ("video_frame", frame)


def test_wrap_copies() -> None:
    message = Heartbeat(sent_at_ms=1)
    envelope = wrap(message, seq=3)
    message.sent_at_ms = 2
    assert envelope == Envelope(seq=3, heartbeat=Heartbeat(sent_at_ms=1))


@pytest.mark.parametrize("seq", [-1, 2**64])
def test_seq_out_of_range(seq: int) -> None:
    with pytest.raises(ValueError, match="uint64"):
        encode(Heartbeat(), seq=seq)
    with pytest.raises(ValueError, match="uint64"):
        wrap(Heartbeat(), seq=seq)


@pytest.mark.parametrize("wrong", [Tile(), Envelope(), "heartbeat", None])
def test_not_a_payload(wrong: object) -> None:
    with pytest.raises(TypeError, match="is not an envelope payload"):
        wrap(wrong)  # type: ignore[arg-type]


def test_encode_an_envelope() -> None:
    envelope = Envelope(seq=4, heartbeat=Heartbeat(reply=True))
    assert encode(envelope) == envelope.SerializeToString() == b"\x08\x04\x92\x03\x02\x10\x01"
    with pytest.raises(ValueError, match="seq on the Envelope"):
        encode(envelope, seq=5)
    with pytest.raises(ValueError, match="no payload"):
        encode(Envelope(seq=4))
    with pytest.raises(TypeError):
        encode(Tile())  # type: ignore[arg-type]


def test_payload_of_an_empty_envelope() -> None:
    with pytest.raises(DecodeError, match="no payload"):
        payload(Envelope(seq=1))


def test_decode_errors_are_protocol_errors() -> None:
    assert issubclass(DecodeError, ProtocolError)
    assert not issubclass(DecodeError, protobuf_message.DecodeError)


def test_payload_message_alias_matches_the_descriptor() -> None:
    oneof = Envelope.DESCRIPTOR.oneofs_by_name["payload"]
    assert {cls.DESCRIPTOR.full_name for cls in get_args(PayloadMessage)} == {
        field.message_type.full_name for field in oneof.fields
    }


def test_every_generated_class_is_exported() -> None:
    file = guruconnect_pb2.DESCRIPTOR
    for name in [*file.message_types_by_name, *file.enum_types_by_name]:
        assert name in protocol.__all__
        assert getattr(protocol, name) is getattr(guruconnect_pb2, name)
    for name in protocol.__all__:
        assert hasattr(protocol, name)

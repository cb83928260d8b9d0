"""Per-plane allowlists: every rule here is one an attacker would like to break."""

from __future__ import annotations

import array

import pytest

from guruconnect.protocol import (
    AGENT_SENDS,
    INPUT_TYPES,
    PAYLOAD_TYPES,
    RELAY_TO_AGENT,
    RELAY_TO_VIEWER,
    VIDEO_TYPES,
    VIEWER_SENDS,
    CloseCode,
    DecodeError,
    Envelope,
    MessageNotAllowed,
    MessageTooLarge,
    Plane,
    encode,
    inbound_type,
)
from guruconnect.protocol.planes import INBOUND, OUTBOUND
from tests.protocol.samples import SAMPLES

SETS = {
    "AGENT_SENDS": AGENT_SENDS,
    "RELAY_TO_AGENT": RELAY_TO_AGENT,
    "VIEWER_SENDS": VIEWER_SENDS,
    "RELAY_TO_VIEWER": RELAY_TO_VIEWER,
    "INPUT_TYPES": INPUT_TYPES,
    "VIDEO_TYPES": VIDEO_TYPES,
}
LIMIT = 1 << 20


def test_every_payload_field_is_in_some_direction() -> None:
    fields = {f.name for f in Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields}
    directions = AGENT_SENDS | RELAY_TO_AGENT | VIEWER_SENDS | RELAY_TO_VIEWER
    assert fields - directions == set()


@pytest.mark.parametrize("name", SETS)
def test_sets_name_only_real_payload_fields(name: str) -> None:
    assert SETS[name] <= PAYLOAD_TYPES


def test_an_agent_never_sends_input() -> None:
    assert AGENT_SENDS.isdisjoint(INPUT_TYPES)
    assert RELAY_TO_VIEWER.isdisjoint(INPUT_TYPES)


def test_a_viewer_never_sends_video() -> None:
    assert VIEWER_SENDS.isdisjoint(VIDEO_TYPES)
    assert RELAY_TO_AGENT.isdisjoint(VIDEO_TYPES)


def test_input_and_video_flow_one_way() -> None:
    assert INPUT_TYPES <= VIEWER_SENDS & RELAY_TO_AGENT
    assert VIDEO_TYPES <= AGENT_SENDS & RELAY_TO_VIEWER


def test_relay_only_messages() -> None:
    # What only the relay may say: authentication results, session control, consent
    # prompts and errors. A peer sending one is forging the relay.
    relay_only = {"auth_result", "session_request", "session_state", "consent_request", "error"}
    assert relay_only.isdisjoint(AGENT_SENDS | VIEWER_SENDS)


def test_hellos_stay_on_their_plane() -> None:
    assert "agent_hello" in AGENT_SENDS - VIEWER_SENDS - RELAY_TO_AGENT - RELAY_TO_VIEWER
    assert "viewer_hello" in VIEWER_SENDS - AGENT_SENDS - RELAY_TO_AGENT - RELAY_TO_VIEWER


def test_control_requests_end_at_the_relay() -> None:
    assert "control_request" in VIEWER_SENDS
    assert "control_request" not in RELAY_TO_AGENT


def test_the_maps_cover_every_plane() -> None:
    assert INBOUND == {Plane.AGENT: AGENT_SENDS, Plane.VIEWER: VIEWER_SENDS}
    assert OUTBOUND == {Plane.AGENT: RELAY_TO_AGENT, Plane.VIEWER: RELAY_TO_VIEWER}
    assert [str(plane) for plane in Plane] == ["agent", "viewer"]


@pytest.mark.parametrize("plane", list(Plane))
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_inbound_type(plane: Plane, name: str) -> None:
    data = encode(SAMPLES[name], seq=1)
    if name in INBOUND[plane]:
        assert inbound_type(plane, data, max_size=LIMIT) == name
        return
    with pytest.raises(MessageNotAllowed) as caught:
        inbound_type(plane, data, max_size=LIMIT)
    assert caught.value.message_type == name
    assert caught.value.close_code == CloseCode.NOT_ALLOWED == 4403
    assert str(caught.value) == f"{name} not allowed on the {plane} plane"


def test_a_viewer_cannot_forge_a_frame() -> None:
    with pytest.raises(MessageNotAllowed, match="video_frame"):
        inbound_type(Plane.VIEWER, b"\xa2\x01\x00", max_size=LIMIT)


def test_an_agent_cannot_inject_keys() -> None:
    with pytest.raises(MessageNotAllowed, match="key_event"):
        inbound_type(Plane.AGENT, b"\xfa\x01\x02\x08\x1d", max_size=LIMIT)


def test_size_is_checked_first() -> None:
    heartbeat = b"\x92\x03\x00"
    assert inbound_type(Plane.AGENT, heartbeat, max_size=3) == "heartbeat"
    with pytest.raises(MessageTooLarge) as caught:
        inbound_type(Plane.AGENT, heartbeat, max_size=2)
    assert (caught.value.size, caught.value.limit) == (3, 2)
    assert caught.value.close_code == CloseCode.MESSAGE_TOO_BIG == 1009
    # Garbage over the limit is too large, not malformed: it is never parsed.
    with pytest.raises(MessageTooLarge):
        inbound_type(Plane.VIEWER, b"\xff" * 11, max_size=10)
    # ...and a forbidden type over the limit is too large as well.
    with pytest.raises(MessageTooLarge):
        inbound_type(Plane.VIEWER, b"\xa2\x01\x01\x00", max_size=3)


def test_size_counts_bytes_not_items() -> None:
    wide = memoryview(array.array("H", [0x0392, 0x0000, 0x0000]))  # 6 bytes, 3 items
    with pytest.raises(MessageTooLarge) as caught:
        inbound_type(Plane.AGENT, wide, max_size=5)
    assert caught.value.size == 6


def test_malformed_is_a_decode_error() -> None:
    with pytest.raises(DecodeError) as caught:
        inbound_type(Plane.AGENT, b"\x92\x03\x05", max_size=LIMIT)
    assert caught.value.close_code == CloseCode.PROTOCOL_ERROR == 4400

"""Close codes are wire values, and close reasons must fit in a close frame."""

from __future__ import annotations

import pytest

from guruconnect.protocol import CloseCode, close_codes, reason

WIRE_VALUES = {
    "NORMAL": 1000,
    "GOING_AWAY": 1001,
    "MESSAGE_TOO_BIG": 1009,
    "INTERNAL_ERROR": 1011,
    "UNAUTHORIZED": 4001,
    "FORBIDDEN_ORIGIN": 4003,
    "SESSION_NOT_FOUND": 4004,
    "RATE_LIMITED": 4008,
    "REPLACED": 4009,
    "REVOKED": 4010,
    "PROTOCOL_ERROR": 4400,
    "NOT_ALLOWED": 4403,
    "HEARTBEAT_TIMEOUT": 4408,
    "SESSION_ENDED": 4410,
}


def test_wire_values() -> None:
    # Clients (the agent, the browser viewer) act on these numbers: never renumber.
    assert {code.name: code.value for code in CloseCode} == WIRE_VALUES


@pytest.mark.parametrize("code", list(CloseCode))
def test_every_code_is_documented(code: CloseCode) -> None:
    assert close_codes.__doc__ is not None
    assert f"{code.value}  {code.name} " in close_codes.__doc__


def test_codes_are_valid_on_the_wire() -> None:
    # RFC 6455 7.4: 1000-2999 registered, 3000-4999 for libraries and applications;
    # 1005, 1006 and 1015 must never be sent in a close frame.
    for code in CloseCode:
        assert 1000 <= code <= 4999
        assert code not in {1004, 1005, 1006, 1015}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("bye", "bye", id="short"),
        pytest.param("a" * 123, "a" * 123, id="exactly-123"),
        pytest.param("a" * 200, "a" * 123, id="ascii"),
        pytest.param("é" * 70, "é" * 61, id="two-byte"),  # 122 bytes; a 62nd would be 124
        pytest.param("€" * 50, "€" * 41, id="three-byte"),  # exactly 123 bytes
        pytest.param("😀" * 40, "😀" * 30, id="four-byte"),  # 120 bytes; a 31st would split
        pytest.param("ab" + "😀" * 40, "ab" + "😀" * 30, id="four-byte-offset"),  # 122
        pytest.param("abc" + "😀" * 40, "abc" + "😀" * 30, id="four-byte-fits"),  # 123
        pytest.param("x\ud800y", "x?y", id="lone-surrogate"),
    ],
)
def test_reason(text: str, expected: str) -> None:
    result = reason(text)
    assert result == expected
    assert len(result.encode()) <= 123


def test_reason_with_a_smaller_limit() -> None:
    assert reason("€€€", limit=5) == "€"
    assert reason("€€€", limit=2) == ""

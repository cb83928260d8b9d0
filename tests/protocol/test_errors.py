"""The error tree: close codes, reasons safe for a close frame, pickling."""

from __future__ import annotations

import pickle

import pytest

from guruconnect.protocol import (
    CloseCode,
    DecodeError,
    MessageNotAllowed,
    MessageTooLarge,
    Plane,
    ProtocolError,
    errors,
)


def test_tree() -> None:
    for cls in (DecodeError, MessageTooLarge, MessageNotAllowed):
        assert issubclass(cls, ProtocolError)
        assert cls.__name__ in (errors.__doc__ or "")
    assert issubclass(ProtocolError, Exception)


def test_close_codes() -> None:
    assert ProtocolError.close_code is CloseCode.PROTOCOL_ERROR
    assert DecodeError.close_code is CloseCode.PROTOCOL_ERROR
    assert MessageTooLarge.close_code is CloseCode.MESSAGE_TOO_BIG
    assert MessageNotAllowed.close_code is CloseCode.NOT_ALLOWED


def test_messages() -> None:
    too_large = MessageTooLarge(70_000, 65_536)
    assert (too_large.size, too_large.limit) == (70_000, 65_536)
    assert str(too_large) == "message of 70000 bytes exceeds the limit of 65536"
    not_allowed = MessageNotAllowed("video_frame", Plane.VIEWER)
    assert not_allowed.message_type == "video_frame"
    assert str(not_allowed) == "video_frame not allowed on the viewer plane"
    assert str(MessageNotAllowed("key_event")) == "key_event not allowed"


@pytest.mark.parametrize(
    "error",
    [
        ProtocolError("ü" * 500),
        DecodeError("x" * 500),
        MessageTooLarge(10**200, 10**200),
        MessageNotAllowed("😀" * 100, "p" * 100),
    ],
    ids=lambda error: type(error).__name__,
)
def test_reasons_fit_in_a_close_frame(error: ProtocolError) -> None:
    assert len(str(error).encode()) < 120


@pytest.mark.parametrize(
    "error",
    [DecodeError("no payload"), MessageTooLarge(5, 4), MessageNotAllowed("chat", "agent")],
    ids=lambda error: type(error).__name__,
)
def test_pickle(error: ProtocolError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)

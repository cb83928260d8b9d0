"""What third-party loggers print passes through the redaction filter first."""

from __future__ import annotations

import logging

import pytest

from guruconnect.server.log_setup import RedactCredentials, redact

KEY = "cak_" + "A" * 43
TICKET = "cvt_" + "b" * 43
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('127.0.0.1:5 - "WebSocket /ws/viewer?session_id=1&ticket=' + TICKET + '" 101', TICKET),
        ("< authorization: Bearer " + KEY, KEY),
        ("< Authorization: Bearer " + JWT, JWT),
        ("< cookie: session=" + JWT, JWT),
        ("agent key " + KEY + " refused", KEY),
        ("token=" + JWT, JWT),
    ],
)
def test_credentials_are_removed(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert cleaned != line


def test_ordinary_lines_are_untouched() -> None:
    line = "GET /api/machines 200 agent cak_1234 prefix shown, session 3f2a"
    assert redact(line) == line


def test_filter_rewrites_message_and_arguments() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s"',
        ("x", f"/ws?t={TICKET}"),
        None,
    )
    assert RedactCredentials().filter(record)
    assert TICKET not in record.getMessage()
    assert "/ws?…" in record.getMessage()

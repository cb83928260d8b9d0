"""Credentials out of third-party log lines, for the server and the clients alike.

Libraries print what they see: uvicorn an upgrade URL with a viewer ticket in its query,
websockets (at DEBUG) the request headers with a bearer credential, on the server side and
on the client side. Those parts are removed before anything renders the line. Our own code
logs prefixes and ids only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_REDACTIONS = [
    # A query string: a viewer ticket travels there.
    (re.compile(r"\?[^\s\"']*"), "?…"),
    # Header values that carry credentials (websockets logs request headers at DEBUG).
    (re.compile(r"(?i)((?:authorization|cookie|sec-websocket-protocol):\s*)[^\r\n]*"), r"\1…"),
    # Anything shaped like one of our credentials, wherever it appears.
    (re.compile(r"\b(cak|cvt)_[A-Za-z0-9_-]{8,}"), r"\1_…"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "eyJ…"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactCredentials(logging.Filter):
    """Rewrites a record's message and string arguments through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redact_arg(a) for a in record.args)
        return True


def _redact_arg(arg: object) -> object:
    """A string is redacted. A websockets ``Frame`` shows its payload (as text, or as hex
    bytes) and an ``AgentHello`` carries the key or the support code: only its type and
    size are kept. Another object is replaced by its redacted text when that held a
    credential."""
    if isinstance(arg, str):
        return redact(arg)
    if isinstance(arg, int | float | bool) or arg is None:
        return arg
    opcode, data = getattr(arg, "opcode", None), getattr(arg, "data", None)
    if opcode is not None and isinstance(data, bytes | bytearray | memoryview):
        return f"{getattr(opcode, 'name', opcode)} [{len(data)} bytes]"
    text = str(arg)
    cleaned = redact(text)
    return arg if cleaned == text else cleaned


def install_filter(names: Iterable[str]) -> None:
    """Idempotent: attach :class:`RedactCredentials` to each named logger."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())

"""structlog for our code and the standard library's loggers (uvicorn's) alike.

JSON lines when stderr is not a terminal (a service), readable colours when it is.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Literal

import structlog

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(level: str = "INFO", fmt: Literal["auto", "json", "console"] = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    # Our access log (middleware) omits query strings; uvicorn's would print them.
    logging.getLogger("uvicorn.access").disabled = True


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
    """Third-party loggers (uvicorn, websockets) print what they see: upgrade URLs with a
    viewer ticket in the query, request headers with a bearer credential. Those parts are
    removed before anything renders the line. Our own code logs prefixes and ids only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_redaction() -> None:
    """Idempotent: attach the filter to the loggers that print what they receive."""
    for name in ("uvicorn.error", "uvicorn.access", "uvicorn", "websockets.server"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())

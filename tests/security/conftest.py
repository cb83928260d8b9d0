"""Security tests reuse the relay's fixtures (a live server with an admin and a technician)
and watch everything the server logs at ERROR: a handler that raised is a bug."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.relay.conftest import admin_api, relay, relay_factory

__all__ = ["ServerErrors", "admin_api", "relay", "relay_factory", "server_errors"]


class ServerErrors(logging.Handler):
    """Every record at ERROR or above, from any thread (the server runs in its own)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()[:300]}" for r in self.records]


@pytest.fixture
def server_errors() -> Iterator[ServerErrors]:
    handler = ServerErrors()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)

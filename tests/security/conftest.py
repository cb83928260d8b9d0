"""Security tests reuse the relay's fixtures: a live server with an admin and a technician."""

from tests.relay.conftest import admin_api, relay, relay_factory

__all__ = ["admin_api", "relay", "relay_factory"]

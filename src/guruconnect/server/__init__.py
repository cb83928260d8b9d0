"""The relay server: REST API, WebSocket relay and the dashboard, in one ASGI app."""

"""Only configured host names are served, over HTTP and WebSocket alike (DNS rebinding).

A page on ``evil.test`` whose name an attacker re-points at this server's address makes
the browser send ``Host: evil.test``; without this check the server would answer it as
its own origin. Accepted: the public URL's host and ``GURUCONNECT_ALLOWED_HOSTS`` (or,
without a public URL, the listen address and localhost), and always loopback address
literals (an address cannot be rebound). See ``Settings.trusted_hosts``.

Pure ASGI (Starlette's ``TrustedHostMiddleware`` answers WebSocket upgrades with an HTTP
response a websocket scope cannot carry): HTTP gets 400, a WebSocket upgrade is refused
before it is accepted (403 from the server, or 400 where the server supports denial
responses). Each refusal is logged and audited.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from guruconnect.server.db.events import Event

log = structlog.get_logger(__name__)

BODY = b"invalid host header"


def host_name(header: str) -> str:
    """The host part of a ``Host`` header, lower-case, IPv6 literals in brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[: end + 1] if end != -1 else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_matches(name: str, allowed: list[str]) -> bool:
    for pattern in allowed:
        if pattern.startswith("*."):
            if name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
                return True
        elif name == pattern:
            return True
    return False


class TrustedHosts:
    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"host")
        if header is not None and host_matches(host_name(header), self.allowed):
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, receive, send, header)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, header: str | None) -> None:
        client = scope.get("client")
        source = client[0] if client else "unknown"
        shown = (header or "")[:200]
        plane = "http" if scope["type"] == "http" else "websocket"
        log.warning("host not allowed", host=shown, path=scope.get("path"), source=source)
        if scope["type"] == "http":
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": BODY})
        else:
            await receive()  # websocket.connect
            if "websocket.http.response" in scope.get("extensions", {}):
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": 400,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send({"type": "websocket.http.response.body", "body": BODY})
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": ""})
        await _audit(scope, source, plane, shown)


async def _audit(scope: Scope, source: str, plane: str, host: str) -> None:
    state: Any = getattr(getattr(scope.get("app"), "state", None), "guruconnect", None)
    if state is None:
        return
    with contextlib.suppress(Exception):
        await state.audit.record(
            Event(
                "request.host_refused",
                source_address=source,
                detail={"host": host, "plane": plane, "path": str(scope.get("path", ""))[:200]},
            )
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None

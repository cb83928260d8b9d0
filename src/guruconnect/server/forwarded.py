"""``X-Real-IP`` from a trusted proxy: the client's address, as ``X-Forwarded-For`` is.

uvicorn rewrites the client address from ``X-Forwarded-For`` when the peer is one of the
trusted proxies, and ignores ``X-Real-IP`` (which nginx sets by default). This middleware
sits inside uvicorn's: when the connection still comes from a trusted proxy (no
``X-Forwarded-For`` was applied) and it sent a valid ``X-Real-IP``, that address becomes the
client. From anyone else the header changes nothing.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send


class RealIpFromTrustedProxies:
    def __init__(self, app: ASGIApp, trusted: list[str]) -> None:
        self.app = app
        # The same notation uvicorn's forwarded_allow_ips takes: addresses, networks, "*".
        self.everyone = "*" in trusted
        self.networks = [
            ipaddress.ip_network(entry, strict=False) for entry in trusted if _is_network(entry)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if client and self._trusted(client[0]):
                real = _header(scope, b"x-real-ip")
                if real is not None and _is_ip(real):
                    scope = {**scope, "client": (real, 0)}
        await self.app(scope, receive, send)

    def _trusted(self, host: str) -> bool:
        if self.everyone:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1").strip())
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""Refuse request paths with an encoded slash, backslash or NUL.

The ASGI server decodes ``%2F`` before routing, so ``/api/auth%2Flogout`` reaches
``/api/auth/logout``. A reverse proxy that allows or denies by path prefix sees the
encoded form and cannot know that; refusing such paths keeps the set of URLs that reach
a route exactly the documented one (Apache's ``AllowEncodedSlashes Off`` does the same).
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

#: Percent-encoded ``/``, ``\`` and NUL, in either case.
_ENCODED = re.compile(rb"%(?:2f|5c|00)", re.IGNORECASE)


class EncodedSlashes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            if _ENCODED.search(raw.partition(b"?")[0]):
                if scope["type"] == "http":
                    await JSONResponse({"detail": "Not Found"}, status_code=404)(
                        scope, receive, send
                    )
                else:
                    # Before the handshake completes: the upgrade is refused (HTTP 403).
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)

"""Request bodies over a limit are refused with 413 before the app reads them.

Without it a 24 MiB JSON body to ``/api/auth/login`` was read and parsed (about 640 MiB of
server memory) before authentication said 401. A declared ``Content-Length`` over the limit
is answered at once, without reading a byte of the body; a body without one (chunked) is
counted as it is read and refused as soon as the count passes the limit. Either way the
connection is closed after the answer, so the rest of the body is never read.

The limit is ``GURUCONNECT_MAX_BODY_BYTES`` (1 MiB); a route that needs more (an upload)
gets its own with an entry in ``overrides`` (path prefix -> bytes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, overrides: Mapping[str, int] | None = None):
        self.app = app
        self.limit = limit
        # Longest prefix first, so a more specific entry wins.
        self.overrides = sorted((overrides or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides:
            if path.startswith(prefix):
                return limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return

        received = 0
        answered = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now (the app is still reading, so nothing was sent yet) and
                    # tell the app the client went away; whatever it sends is dropped.
                    answered = True
                    if not started:
                        await _too_large(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not answered:
                raise
            # The app read on after the disconnect it was told of (Starlette raises
            # ClientDisconnect): the client has its answer, nothing went wrong here.


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server's parser refuses a malformed one itself
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body too large (limit {limit} bytes)"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The unread rest of the body must not be taken for the next request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

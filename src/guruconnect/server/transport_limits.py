"""uvicorn's protocols with the two limits they lack, for peers that stall on purpose.

- **Request headers in time.** uvicorn arms no timer until a first response is sent: a
  connection that sends half a request line (or nothing) and waits is kept for ever, and
  a few thousand of them exhaust the process (slowloris). :func:`http_protocol` returns the
  httptools protocol with a deadline from the connection (or from the first byte of a
  keep-alive request) to the end of the headers.
- **Request headers in bounds.** httptools has no size limit on a request line and
  headers: a 1 MiB header was read, parsed and answered. :func:`http_protocol` counts the
  bytes of each request head as they arrive and answers 431 (and closes) once they pass
  ``max_header_bytes``, before the parser has buffered more.
- **Each plane's message limit, while reading.** uvicorn has one ``ws_max_size`` (the
  agent plane's 8 MiB); a viewer's 64 KiB limit checked by the app only after the whole
  message was buffered let any viewer make the server hold 8 MiB. :func:`ws_protocol`
  sets the limit per path as the handshake arrives, so the parser refuses (1009) as soon
  as a message passes it.
- **A refused upgrade is answered.** When websockets' own parser refuses an upgrade (a
  request line or header over 8 KiB) it queues a 414/431 answer that uvicorn never sends,
  and the connection hangs; it is sent and the connection closed.
- **A WebSocket really ends.** When the app is done with a socket, uvicorn closes the
  transport, and asyncio's ``close()`` first waits for the write buffer to drain: a peer
  that stopped reading keeps it (and its file descriptor) for ever. :class:`RelayWebSocketProtocol`
  aborts a transport still open a few seconds after the app returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

log = structlog.get_logger(__name__)

#: After the app returned, how long a WebSocket transport may take to flush and close.
ABORT_AFTER_SECONDS = 3.0


_END_OF_HEAD = b"\r\n\r\n"
#: Set (true) in a request's ``scope["state"]`` (``request.state``) by an endpoint whose
#: response never ends by itself: the server cuts it when it shuts down.
ENDLESS_RESPONSE = "guruconnect_endless_response"


def http_protocol(
    header_timeout: float, max_header_bytes: int = 64 * 1024
) -> type[HttpToolsProtocol]:
    """The httptools protocol, closing a connection whose request headers are not
    complete ``header_timeout`` seconds after it opened (or its next request began), and
    answering 431 to a request head (line and headers) over ``max_header_bytes``."""
    too_large = f"request line and headers over {max_header_bytes} bytes\n".encode()
    answer_431 = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(too_large)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + too_large
    )

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        #: Reading a request head (line and headers); its size so far; its last 3 bytes.
        _in_head = True
        _head_bytes = 0
        _head_tail = b""

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                seen = self._head_tail + data
                end = seen.find(_END_OF_HEAD)
                size = self._head_bytes + (
                    len(data) if end < 0 else end + len(_END_OF_HEAD) - len(self._head_tail)
                )
                if size > max_header_bytes:
                    self._refuse_head()
                    return
                self._head_bytes = size
                self._head_tail = seen[-3:]
            super().data_received(data)

        def _refuse_head(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                log.info("request head too large; answering 431", client=self.client)
                self.transport.write(answer_431)
                self.transport.close()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes, self._head_tail = True, 0, b""

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                log.info("request headers not complete in time; closing", client=self.client)
                self.transport.abort()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            self._in_head = False
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def shutdown(self) -> None:
            # An endless response (the console's event stream) would hold the server's
            # shutdown forever: it is cut, and its browser reconnects.
            cycle = self.cycle
            if (
                cycle is not None
                and not cycle.response_complete
                and cycle.scope.get("state", {}).get(ENDLESS_RESPONSE)
            ):
                self.transport.close()
                return
            super().shutdown()

    return HeaderDeadlineProtocol


def ws_protocol(message_limits: Mapping[str, int]) -> type[WebSocketsSansIOProtocol]:
    """The websockets-sansio protocol with a message limit per path (others keep
    uvicorn's ``ws_max_size``) and a hard end for sockets whose peer stopped reading."""

    class PerPlaneLimits(RelayWebSocketProtocol):
        def handle_connect(self, event: Request) -> None:
            limit = message_limits.get(urlsplit(event.path).path)
            if limit is not None:
                self.conn.max_message_size = limit
            super().handle_connect(event)

    return PerPlaneLimits


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.handshake_exc is not None and not self.transport.is_closing():
            # websockets refused the upgrade itself (a request line or a header over 8 KiB)
            # and queued its 414/431 answer, which uvicorn never sends: the connection
            # would hang for ever. Send it and close.
            log.info("upgrade refused by the parser", error=str(self.conn.handshake_exc))
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()

    async def run_asgi(self) -> None:
        await super().run_asgi()
        self.loop.call_later(ABORT_AFTER_SECONDS, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self.disconnected:
            log.info("websocket did not close in time; aborting", client=self.client)
            self.transport.abort()

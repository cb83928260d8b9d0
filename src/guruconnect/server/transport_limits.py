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
from typing import Any
from urllib.parse import urlsplit

import structlog
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import Protocol

log = structlog.get_logger(__name__)

#: After the app returned, how long a WebSocket transport may take to flush and close.
ABORT_AFTER_SECONDS = 3.0
#: The ASGI extension (in the WebSocket scope) that writes one binary message at once,
#: without a task switch: returns False, having written nothing, when the socket cannot
#: take it now (not yet accepted, closing, or the transport asked to pause writing).
SEND_NOW = "guruconnect.send_now"


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


class _Mailbox:
    """What uvicorn uses of its per-socket ``asyncio.Queue`` (``put_nowait``, ``get``,
    ``empty``; one consumer, the app), without the queue's three deques and Event: an
    idle agent's socket is mostly this kind of bookkeeping."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Flag:
    """``asyncio.Event`` as uvicorn uses it for "the transport may be written", whose
    waiters' list is made only when someone waits (rarely: on backpressure)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class RelayWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Mailbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # uvicorn keeps the upgrade request for the life of the socket; it is only read
        # here (the scope has its headers). Thousands of idle agents each held a copy.
        del self.request
        scope = self.__dict__.get("scope")
        if scope is None:
            return  # refused
        scope["extensions"][SEND_NOW] = self.send_now
        conn = self.conn
        if not conn.reader.buffer:
            # websockets' handshake parser keeps the request alive in its generator's
            # frame for as long as the socket lives. Nothing is buffered, so the parser
            # waits at a frame boundary: a fresh frame parser there is the same parser
            # without that request.
            old, conn.parser = conn.parser, Protocol.parse(conn)
            next(conn.parser)
            old.close()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            self.__dict__.pop("response", None)  # the handshake's answer has gone out

    def send_now(self, data: bytes) -> bool:
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.conn.send_binary(data)
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

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

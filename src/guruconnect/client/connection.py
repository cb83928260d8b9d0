"""One protobuf-over-WebSocket connection, client side."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from ssl import SSLContext
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from guruconnect.protocol import Envelope, Heartbeat, decode, encode, payload
from guruconnect.protocol.envelope import PayloadMessage
from guruconnect.redaction import install_filter

# websockets logs the upgrade's headers at DEBUG: the agent key's among them.
install_filter(("websockets.client",))

#: The relay's agent-plane limit; a client must accept frames that large.
DEFAULT_MAX_SIZE = 8 * 1024 * 1024


class ClientError(Exception):
    """The connection cannot go on."""


class Refused(ClientError):
    """The relay closed the connection; ``code``/``reason`` are its close code and reason."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed by the relay: {code} {reason}".strip())
        self.code = code
        self.reason = reason


class Connection:
    """Send payload messages, receive envelopes; heartbeats are answered automatically."""

    def __init__(self, ws: ClientConnection, *, answer_heartbeats: bool = True) -> None:
        self.ws = ws
        self.answer_heartbeats = answer_heartbeats

    @staticmethod
    async def open(
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        origin: str | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        open_timeout: float = 10,
        ssl: SSLContext | None = None,
    ) -> ClientConnection:
        """``ssl``: the context for ``wss://`` (None: the system's default verification)."""
        try:
            return await connect(
                url,
                ssl=ssl if url.startswith("wss://") else None,
                additional_headers=dict(headers or {}),
                origin=Origin(origin) if origin else None,
                # Frames are compressed already; deflate would only burn CPU both ends.
                compression=None,
                max_size=max_size,
                open_timeout=open_timeout,
                proxy=None,
                # The relay's own heartbeats carry liveness; no extra pings.
                ping_interval=None,
            )
        except InvalidStatus as exc:
            raise Refused(exc.response.status_code, "upgrade refused") from exc
        except (OSError, TimeoutError) as exc:
            raise ClientError(f"cannot connect to {url}: {exc}") from exc

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason

    def _closed(self) -> Refused:
        return Refused(self.ws.close_code, self.ws.close_reason or "")

    async def send(self, message: PayloadMessage | Envelope, *, seq: int = 0) -> None:
        await self.send_raw(encode(message, seq=seq))

    async def send_raw(self, data: bytes) -> None:
        try:
            await self.ws.send(data)
        except ConnectionClosed:
            raise self._closed() from None

    async def recv_raw(self, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                data = await self.ws.recv()
        except ConnectionClosed:
            raise self._closed() from None
        if isinstance(data, str):
            raise ClientError("the relay sent a text message")
        return data

    async def recv(self, timeout: float | None = None, *, idle: float | None = None) -> Envelope:
        """The next envelope that is not a heartbeat (those are answered here), within
        ``timeout`` seconds in all, however many heartbeats arrive meanwhile. ``idle``:
        TimeoutError as soon as nothing at all (heartbeats included) arrives for that long,
        the sign of a peer that is gone without closing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if idle is not None:
                remaining = idle if remaining is None else min(remaining, idle)
            envelope = decode(await self.recv_raw(remaining))
            if self.answer_heartbeats and envelope.HasField("heartbeat"):
                if not envelope.heartbeat.reply:
                    await self.send(Heartbeat(sent_at_ms=envelope.heartbeat.sent_at_ms, reply=True))
                continue
            return envelope

    async def expect(self, kind: str, timeout: float = 10.0) -> Any:
        """Skip other messages until one of ``kind`` arrives; return its payload."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} within {timeout} s")
            try:
                envelope = await self.recv(remaining)
            except TimeoutError:
                raise TimeoutError(f"no {kind} within {timeout} s") from None
            name, message = payload(envelope)
            if name == kind:
                return message

    async def wait_closed(self, timeout: float = 10.0) -> tuple[int | None, str]:
        """Read (and discard) until the relay closes; return its code and reason."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed:
            pass
        return self.ws.close_code, self.ws.close_reason or ""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

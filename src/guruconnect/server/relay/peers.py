"""One connected WebSocket peer: a reader, a writer fed by an :class:`Outbox`, a heartbeat.

Any task may ask a peer to close (a revocation, a replaced agent, a slow viewer); the
close travels through the writer so that it is never interleaved with a frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from starlette.websockets import WebSocket

from guruconnect.protocol import Codec, Display, Heartbeat, encode
from guruconnect.protocol.close_codes import CloseCode, reason
from guruconnect.server.relay.agent_limits import ChatThrottle
from guruconnect.server.relay.outbox import Outbox
from guruconnect.server.relay.throttle import TokenBucket

log = structlog.get_logger(__name__)

#: How long a close handshake may take before the socket is simply dropped.
CLOSE_TIMEOUT = 2.0

Handler = Callable[[bytes], Awaitable[None]]


class Peer:
    def __init__(
        self,
        ws: WebSocket,
        *,
        source: str,
        video_limit: int,
        video_bytes_limit: int | None = None,
    ) -> None:
        self.ws = ws
        self.source = source
        self.outbox = Outbox(video_limit=video_limit, video_bytes_limit=video_bytes_limit)
        self.close_code: int | None = None
        self.close_reason = ""
        #: Set by the remote side closing (its close code), or None.
        self.remote_close_code: int | None = None
        self.on_caught_up: Callable[[], None] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._give_up: asyncio.TimerHandle | None = None
        self.connected_at = self.last_received = self.last_beat = time.monotonic()

    # -- sending (never blocks the caller) ------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue a message that must arrive; a peer that stopped reading is closed."""
        if not self.outbox.put_control(data) and not self.outbox.is_shut:
            self.close(CloseCode.RATE_LIMITED, "too slow: not reading its messages")

    def send_video(self, data: bytes) -> bool:
        return self.outbox.put_video(data)

    def close(self, code: int, why: str, *, flush: bool = False) -> None:
        """Ask for the socket to close with ``code``; the first request wins. ``flush``
        delivers the control messages already queued first (not on a revocation)."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason(why)
        self.outbox.shut(flush=flush)
        # A peer that stopped reading leaves the writer blocked in a send for ever, and
        # the close frame can never go out: past the close handshake's time, the loops
        # are stopped and the socket is dropped (the transport is aborted after that).
        if self._loops:
            self._give_up = asyncio.get_running_loop().call_later(
                2 * CLOSE_TIMEOUT + 1, self._stop_loops
            )

    def _stop_loops(self) -> None:
        for task in self._loops:
            task.cancel()

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    # -- the loops ----------------------------------------------------------------------

    async def _write(self) -> None:
        try:
            while (data := await self.outbox.get()) is not None:
                if self.close_code is None:
                    await self.ws.send_bytes(data)
                else:  # last words before a close: a peer that does not read gets none
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await self.ws.send_bytes(data)
                if (
                    self.outbox.needs_keyframe
                    and self.outbox.video_backlog == 0
                    and self.on_caught_up is not None
                ):
                    self.outbox.needs_keyframe = False
                    self.on_caught_up()
        except Exception as exc:  # the socket went away under us
            log.debug("writer stopped", error=repr(exc))
        finally:
            if self.close_code is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await self.ws.close(self.close_code, self.close_reason)

    async def _read(self, handle: Handler) -> None:
        while not self.closing:
            message = await self.ws.receive()
            self.last_received = time.monotonic()
            if message["type"] == "websocket.disconnect":
                self.remote_close_code = int(message.get("code") or 1005)
                return
            data = message.get("bytes")
            if data is None:
                self.close(CloseCode.PROTOCOL_ERROR, "binary protobuf messages only")
                return
            await handle(data)

    async def _beat(self, interval: float) -> None:
        """Send a heartbeat every ``interval``; close a peer silent for two of them, or
        one whose writer has not moved for two of them with messages waiting.

        The watch lives here rather than as a timeout around every receive, which would
        arm and cancel a timer per frame on the hot path."""
        while True:
            await asyncio.sleep(interval / 2)
            now = time.monotonic()
            if now - self.last_received > 2 * interval:
                self.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout: peer silent")
                return
            if self.outbox.backlog and now - self.outbox.last_progress > 2 * interval:
                # It talks but does not read: its writer has been stuck in one send.
                self.close(CloseCode.RATE_LIMITED, "too slow: not reading its messages")
                return
            if now - self.last_beat >= interval:
                self.last_beat = now
                self.send(encode(Heartbeat(sent_at_ms=int(time.time() * 1000))))

    async def run(self, handle: Handler, *, heartbeat_interval: float) -> None:
        """Pump the socket until either side closes it."""
        writer = asyncio.create_task(self._write(), name="ws-writer")
        reader = asyncio.create_task(self._read(handle), name="ws-reader")
        beat = asyncio.create_task(self._beat(heartbeat_interval), name="ws-heartbeat")
        self._loops = [reader, writer]
        if self.closing:  # closed before the loops started
            self._give_up = asyncio.get_running_loop().call_later(
                2 * CLOSE_TIMEOUT + 1, self._stop_loops
            )
        try:
            done, _ = await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done and not reader.cancelled():
                if (exc := reader.exception()) is not None:
                    log.exception("reader failed", exc_info=exc)
                    self.close(CloseCode.INTERNAL_ERROR, "internal error")
                elif self.close_code is None:
                    self.outbox.shut()  # the remote side closed; stop writing
                # wait(), not await: the writer may have been stopped by _stop_loops.
                await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT + 1)
        finally:
            if self._give_up is not None:
                self._give_up.cancel()
            for task in (reader, writer, beat):
                task.cancel()
            await asyncio.gather(reader, writer, beat, return_exceptions=True)


@dataclass(eq=False)
class AgentPeer:
    peer: Peer
    machine_id: uuid.UUID
    tenant_id: uuid.UUID
    machine_name: str
    key_id: uuid.UUID | None = None
    #: Set when the agent came in with a support code: the session it opened.
    support_session_id: uuid.UUID | None = None
    encoders: list[Codec] = field(default_factory=lambda: [Codec.CODEC_RAW_ZSTD])
    displays: list[Display] = field(default_factory=list)
    user_name: str = ""
    #: (hostname, os, version) as last written to the machine's row.
    stored_status: tuple[str, str, str] | None = None
    #: The agent's chat rate (set when it connects).
    chat: ChatThrottle | None = None
    #: From AgentStatus: what the agent's own file is, for update offers ("" : unknown).
    agent_version: str = ""
    platform: str = ""
    arch: str = ""
    #: The agent said it is stopping (Disconnect) before closing: its session ends at once.
    leaving: bool = False


@dataclass(eq=False)
class ViewerPeer:
    peer: Peer
    user_id: uuid.UUID
    username: str
    tenant_id: uuid.UUID
    token_id: uuid.UUID
    session_id: uuid.UUID
    scope: str  # "view" | "control"
    bucket: TokenBucket
    codecs: list[Codec] = field(default_factory=lambda: [Codec.CODEC_RAW_ZSTD])
    #: Throttled-input and view-only-input counters, audited at most every few seconds.
    dropped_input: int = 0
    dropped_view_input: int = 0
    last_drop_audit: float = 0.0
    #: Video frames dropped for this viewer that the agent has been told about.
    dropped_reported: int = 0

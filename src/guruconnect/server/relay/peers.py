"""One connected WebSocket peer: a reader and a writer fed by an :class:`Outbox`; and
:class:`Heartbeats`, one task that keeps time for every peer of the process.

Any task may ask a peer to close (a revocation, a replaced agent, a slow viewer); the
close travels through the writer so that it is never interleaved with a frame.

A message for a peer whose queue is empty and whose transport takes bytes at once is
written straight away by the caller (``send_now``, an ASGI extension of our uvicorn
protocol): the writer task only runs when there is a backlog, which saves the task hop
on every small message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from starlette.websockets import WebSocket

from guruconnect.protocol import Codec, Display, Heartbeat, encode
from guruconnect.protocol.close_codes import CloseCode, reason
from guruconnect.server.relay.agent_limits import ChatThrottle
from guruconnect.server.relay.outbox import Outbox
from guruconnect.server.relay.throttle import TokenBucket
from guruconnect.server.transport_limits import SEND_NOW

log = structlog.get_logger(__name__)

#: How long a close handshake may take before the socket is simply dropped.
CLOSE_TIMEOUT = 2.0

Handler = Callable[[bytes], Awaitable[None]]


class Beating(Protocol):
    def pulse(self, now: float, beat: bool, interval: float) -> bool:
        """Check liveness at ``now`` (and send a heartbeat when ``beat``); False when the
        peer is gone or has just been closed, so it needs no more pulses."""


class Heartbeats:
    """Every peer's heartbeat and liveness checks, from one task.

    All peers share one interval, so a FIFO of (due time, peer) stays sorted: adding at the
    tail with ``now + step`` and taking from the head is all the scheduling there is, O(1)
    per pulse whatever the number of peers. A peer has a pulse every half interval: every
    other one sends a heartbeat (so beats are exactly ``interval`` apart), and each checks
    that the peer is alive, which keeps the silence timeout as tight as it was with a
    task per peer. ``tick`` is the I/O-free core; ``_run`` only sleeps until the next due.
    """

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._step = interval / 2
        self._clock = clock
        self._due: deque[tuple[float, bool, Beating]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self._due)

    def add(self, peer: Beating) -> None:
        """Start pulses for ``peer``: a check half an interval from now, the first beat one
        interval from now. A peer leaves by answering False to a pulse."""
        self._due.append((self._clock() + self._step, False, peer))
        if self._wake is not None:
            self._wake.set()
        if self._task is None:
            with contextlib.suppress(RuntimeError):  # no running loop: tick() by hand
                self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeats")

    def tick(self, now: float) -> float | None:
        """Pulse every peer that is due at ``now``; seconds until the next one is due
        (None: no peers)."""
        due = self._due
        step = self._step
        while due and due[0][0] <= now:
            at, beat, peer = due.popleft()
            if peer.pulse(now, beat, self.interval):
                # Anchored to the schedule, not to ``now``: spacing stays exact when a tick
                # runs late; a tick that fell more than a step behind starts again from now.
                following = at + step
                due.append((following if following > now else now + step, not beat, peer))
        return due[0][0] - now if due else None

    async def _run(self) -> None:
        while True:
            delay = self.tick(self._clock())
            if delay is None:
                self._wake = asyncio.Event()
                await self._wake.wait()
                self._wake = None
            else:
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class Peer:
    __slots__ = (
        "_give_up",
        "_reader",
        "_send_now",
        "_writer",
        "close_code",
        "close_reason",
        "connected_at",
        "finished",
        "last_received",
        "on_caught_up",
        "outbox",
        "remote_close_code",
        "source",
        "ws",
    )

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
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._give_up: asyncio.TimerHandle | None = None
        #: Set once ``run`` has returned: no more pulses.
        self.finished = False
        self._send_now: Callable[[bytes], bool] | None = None
        self.connected_at = self.last_received = time.monotonic()

    # -- sending (never blocks the caller) ------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue a message that must arrive; a peer that stopped reading is closed."""
        if self._write_through(data):
            return
        if not self.outbox.put_control(data) and not self.outbox.is_shut:
            self.close(CloseCode.RATE_LIMITED, "too slow: not reading its messages")

    def send_video(self, data: bytes) -> bool:
        return self._write_through(data) or self.outbox.put_video(data)

    def _write_through(self, data: bytes) -> bool:
        """Write now when nothing waits before this message and the writer is idle (so
        order is kept) and the transport takes it without waiting."""
        send_now = self._send_now
        outbox = self.outbox
        if send_now is None or not outbox.idle or self.close_code is not None:
            return False
        try:
            if not send_now(data):
                return False
        except Exception as exc:  # the socket went away: the reader will see it
            log.debug("write failed", error=repr(exc))
            return False
        outbox.last_progress = time.monotonic()
        return True

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
        if self._writer is not None:
            self._give_up = asyncio.get_running_loop().call_later(
                2 * CLOSE_TIMEOUT + 1, self._stop_loops
            )

    def _stop_loops(self) -> None:
        for task in (self._reader, self._writer):
            if task is not None:
                task.cancel()

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    # -- the loops ----------------------------------------------------------------------

    async def _write(self) -> None:
        outbox = self.outbox
        try:
            while (data := await outbox.get()) is not None:
                if self.close_code is None:
                    await self.ws.send_bytes(data)
                else:  # last words before a close: a peer that does not read gets none
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await self.ws.send_bytes(data)
                if (
                    outbox.needs_keyframe
                    and outbox.video_backlog == 0
                    and self.on_caught_up is not None
                ):
                    outbox.needs_keyframe = False
                    self.on_caught_up()
        except Exception as exc:  # the socket went away under us
            log.debug("writer stopped", error=repr(exc))
        finally:
            if self.close_code is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await self.ws.close(self.close_code, self.close_reason)

    async def _read(self, handle: Handler) -> None:
        receive = self.ws.receive
        while not self.closing:
            message = await receive()
            self.last_received = time.monotonic()
            if message["type"] == "websocket.disconnect":
                self.remote_close_code = int(message.get("code") or 1005)
                return
            data = message.get("bytes")
            if data is None:
                self.close(CloseCode.PROTOCOL_ERROR, "binary protobuf messages only")
                return
            await handle(data)

    def pulse(self, now: float, beat: bool, interval: float) -> bool:
        """For :class:`Heartbeats`: close a peer silent for two intervals, or one whose
        writer has not moved for two of them with messages waiting; on a beat, send a
        heartbeat. False once the peer needs no more pulses."""
        if self.finished or self.close_code is not None:
            return False
        if now - self.last_received > 2 * interval:
            self.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout: peer silent")
            return False
        if self.outbox.backlog and now - self.outbox.last_progress > 2 * interval:
            # It talks but does not read: its writer has been stuck in one send.
            self.close(CloseCode.RATE_LIMITED, "too slow: not reading its messages")
            return False
        if beat:
            self.send(encode(Heartbeat(sent_at_ms=int(time.time() * 1000))))
        return True

    async def run(self, handle: Handler, *, heartbeats: Heartbeats) -> None:
        """Pump the socket until either side closes it."""
        extensions = self.ws.scope.get("extensions") or {}
        self._send_now = extensions.get(SEND_NOW)
        writer = self._writer = asyncio.create_task(self._write(), name="ws-writer")
        reader = self._reader = asyncio.create_task(self._read(handle), name="ws-reader")
        heartbeats.add(self)
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
            self.finished = True
            self._send_now = None
            if self._give_up is not None:
                self._give_up.cancel()
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            self._reader = self._writer = None


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

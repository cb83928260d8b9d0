"""The heartbeat sweep and the outbox's write-through, without sockets or sleeps: one
schedule for every peer, driven by an injected clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from guruconnect.protocol import decode
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.server.relay.outbox import Outbox
from guruconnect.server.relay.peers import Heartbeats, Peer
from tests.timing import async_wait_until

INTERVAL = 15.0


@dataclass(eq=False)
class FakePeer:
    """Answers pulses like a peer; records when it was sent a heartbeat."""

    beats: list[float] = field(default_factory=list)
    checks: list[float] = field(default_factory=list)
    gone: bool = False

    def pulse(self, now: float, beat: bool, interval: float) -> bool:
        if self.gone:
            return False
        self.checks.append(now)
        if beat:
            self.beats.append(now)
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_until(beats: Heartbeats, clock: Clock, end: float) -> int:
    """Advance the clock from due time to due time, as the task would; returns ticks."""
    ticks = 0
    while (delay := beats.tick(clock.now)) is not None and clock.now + delay <= end:
        clock.now += delay
        ticks += 1
    return ticks


def test_beats_are_exactly_the_interval_apart_for_every_peer() -> None:
    clock = Clock()
    beats = Heartbeats(INTERVAL, clock=clock)
    peers = []
    for offset in (0.0, 0.1, 7.3, 14.99):
        run_until(beats, clock, 1000.0 + offset)
        clock.now = 1000.0 + offset
        peer = FakePeer()
        beats.add(peer)
        peers.append((offset, peer))
    run_until(beats, clock, 1000.0 + 10 * INTERVAL)
    for offset, peer in peers:
        assert peer.beats[0] == pytest.approx(1000.0 + offset + INTERVAL)
        gaps = {round(b - a, 9) for a, b in zip(peer.beats, peer.beats[1:], strict=False)}
        assert gaps == {INTERVAL}, (offset, gaps)
        # Liveness is checked twice per interval (at the beat and half way between).
        check_gaps = {round(b - a, 9) for a, b in zip(peer.checks, peer.checks[1:], strict=False)}
        assert check_gaps == {INTERVAL / 2}


def test_a_late_tick_keeps_the_schedule_and_a_very_late_one_restarts_it() -> None:
    clock = Clock()
    beats = Heartbeats(INTERVAL, clock=clock)
    peer = FakePeer()
    beats.add(peer)
    clock.now += INTERVAL / 2
    beats.tick(clock.now)  # the first liveness check, on time
    clock.now += INTERVAL / 2 + 0.2  # the loop was busy for 0.2 s past the first beat
    beats.tick(clock.now)
    assert peer.beats == [pytest.approx(clock.now)]
    # The next pulses stay on the original grid: spacing does not drift by the delay.
    assert beats.tick(clock.now) == pytest.approx(INTERVAL / 2 - 0.2)
    clock.now += 3 * INTERVAL  # stalled for longer than a step: no burst of catch-up beats
    beats.tick(clock.now)
    assert len(peer.beats) == 1
    assert beats.tick(clock.now) == pytest.approx(INTERVAL / 2)


def test_a_peer_that_answers_false_leaves_the_schedule() -> None:
    clock = Clock()
    beats = Heartbeats(INTERVAL, clock=clock)
    staying, leaving = FakePeer(), FakePeer()
    beats.add(staying)
    beats.add(leaving)
    assert len(beats) == 2
    leaving.gone = True
    run_until(beats, clock, clock.now + INTERVAL)
    assert len(beats) == 1
    assert leaving.checks == []
    assert staying.beats
    staying.gone = True
    assert beats.tick(clock.now + INTERVAL) is None  # nothing left: the task parks


def _peer() -> Peer:
    return Peer(None, source="127.0.0.1", video_limit=2)  # type: ignore[arg-type]


def test_peer_pulse_beats_and_closes_a_silent_peer() -> None:
    peer = _peer()
    start = peer.last_received
    assert peer.pulse(start + INTERVAL / 2, False, INTERVAL)
    assert peer.outbox.backlog == 0
    assert peer.pulse(start + INTERVAL, True, INTERVAL)
    [beat] = [peer.outbox._control.popleft()]
    assert decode(beat).HasField("heartbeat")
    # Silent for more than two intervals: closed, and no more pulses.
    assert not peer.pulse(start + 2 * INTERVAL + 0.01, False, INTERVAL)
    assert peer.close_code == CloseCode.HEARTBEAT_TIMEOUT


def test_peer_pulse_closes_a_peer_that_talks_but_does_not_read() -> None:
    peer = _peer()
    peer.outbox.put_control(b"waiting")
    now = peer.outbox.last_progress + 2 * INTERVAL + 0.01
    peer.last_received = now  # it keeps talking
    assert not peer.pulse(now, False, INTERVAL)
    assert peer.close_code == CloseCode.RATE_LIMITED


def test_peer_pulse_stops_once_the_peer_is_closed_or_finished() -> None:
    peer = _peer()
    peer.finished = True
    assert not peer.pulse(peer.last_received, True, INTERVAL)
    other = _peer()
    other.close_code = CloseCode.NORMAL
    assert not other.pulse(other.last_received, True, INTERVAL)
    assert other.outbox.backlog == 0


def test_idle_outbox_allocates_no_queue() -> None:
    a, b = Outbox(video_limit=2), Outbox(video_limit=2)
    assert a._control is b._control is a._video  # the shared empty deque
    a.put_control(b"x")
    assert a._control is not b._control
    assert len(b._control) == 0


@pytest.mark.asyncio
async def test_write_through_only_when_the_writer_is_idle_and_keeps_order() -> None:
    written: list[bytes] = []
    accept = True

    def send_now(data: bytes) -> bool:
        if accept:
            written.append(data)
        return accept

    peer = _peer()
    peer._send_now = send_now
    peer.send(b"early")  # no writer waiting yet: queued
    assert written == []
    assert peer.outbox.backlog == 1
    got: list[bytes | None] = []

    async def writer() -> None:
        while (data := await peer.outbox.get()) is not None:
            got.append(data)

    async def writer_idle() -> bool:
        return peer.outbox.idle

    task = asyncio.create_task(writer())
    await async_wait_until(writer_idle, 5, "the writer waits")
    assert got == [b"early"]
    peer.send(b"direct")
    assert peer.send_video(b"frame")
    assert written == [b"direct", b"frame"]
    assert peer.outbox.backlog == 0
    accept = False  # the transport asked to pause: queued for the writer instead
    peer.send(b"queued")
    assert peer.outbox.backlog == 1
    assert not peer.outbox.idle
    accept = True
    peer.send(b"after")  # must not overtake the queued one
    assert written == [b"direct", b"frame"]
    await async_wait_until(writer_idle, 5, "the writer drained its queue")
    assert got == [b"early", b"queued", b"after"]
    peer.close(CloseCode.NORMAL, "done")
    peer.send(b"too late")
    assert written == [b"direct", b"frame"]
    await task

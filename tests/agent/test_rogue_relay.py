"""The agent does not trust the relay to enforce consent and scope: a relay (compromised or
buggy) that sends input before consent, or to a view-only session, gets nothing injected.

The relay here is a real WebSocket server on loopback speaking the protocol by hand; the
agent runs in-process with a recording injector and a synthetic screen.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from websockets.asyncio.server import ServerConnection, serve

from guruconnect.agent.capture import DisplayInfo, Frame
from guruconnect.agent.capture.cursor import NoCursor, Pointer
from guruconnect.agent.runner import Agent, AgentConfig
from guruconnect.protocol import (
    AuthResult,
    Codec,
    ConsentRequest,
    CursorShape,
    DisplaySwitch,
    KeyEvent,
    KeyframeRequest,
    MouseButton,
    MouseEvent,
    Scope,
    SessionRequest,
    decode,
    encode,
    payload,
)
from guruconnect.protocol import keys as keytable


class StillScreen:
    name = "still"

    def displays(self) -> list[DisplayInfo]:
        return [DisplayInfo(1, 0, 0, 128, 64, True)]

    def bounds(self) -> DisplayInfo:
        return DisplayInfo(0, 0, 0, 128, 64)

    def grab(self, display: DisplayInfo, into: Frame) -> None:
        into[...] = 90

    def close(self) -> None:
        pass


@dataclass
class Recorder:
    name: str = "recorder"
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def key(self, key: keytable.Key, down: bool) -> None:
        self.events.append(("key", key.code, down))

    def text(self, text: str) -> None:
        self.events.append(("text", text))

    def move(self, x: int, y: int) -> None:
        self.events.append(("move", x, y))

    def button(self, button: MouseButton, down: bool) -> None:
        self.events.append(("button", button, down))

    def wheel(self, dx: int, dy: int) -> None:
        self.events.append(("wheel", dx, dy))

    def special(self, key: int) -> None:
        self.events.append(("special", key))

    def release_all(self) -> None:
        self.events.append(("release_all",))

    def close(self) -> None:
        pass


@dataclass
class RogueRelay:
    url: str
    agents: asyncio.Queue[ServerConnection]
    received: list[str] = field(default_factory=list)
    #: Agents started against this relay: stopped at teardown even when a test failed.
    tasks: list[asyncio.Task[int]] = field(default_factory=list)


@pytest_asyncio.fixture
async def rogue() -> AsyncIterator[RogueRelay]:
    agents: asyncio.Queue[ServerConnection] = asyncio.Queue()
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(encode(AuthResult(ok=True, machine_id="m-1")))
        await agents.put(ws)
        await done.wait()

    # max_queue=1: when the test stops reading, so does the socket (a relay holding back).
    async with serve(
        handler, "127.0.0.1", 0, compression=None, max_size=None, max_queue=1
    ) as server:
        port = server.sockets[0].getsockname()[1]
        relay = RogueRelay(f"ws://127.0.0.1:{port}", agents)
        yield relay
        for task in relay.tasks:
            task.cancel()
        await asyncio.gather(*relay.tasks, return_exceptions=True)
        done.set()


async def launch(
    rogue: RogueRelay,
    *,
    capturer: Callable[[], Any] = StillScreen,
    cursor: Callable[[], Any] = NoCursor,
    recorder: Recorder | None = None,
    **config: Any,
) -> tuple[Agent, Recorder, ServerConnection, asyncio.Task[int]]:
    """The agent in this process, connected to the rogue relay; returns it, its input
    recorder, the relay's side of the socket and the agent's task."""
    recorder = recorder or Recorder()
    agent = Agent(
        AgentConfig(server=rogue.url, key="cak_x", desktop_ui=False, **config),
        capturer=capturer,
        cursor=cursor,
        injector=lambda: recorder,
    )
    task = asyncio.create_task(agent.run())
    rogue.tasks.append(task)
    ws = await asyncio.wait_for(rogue.agents.get(), 10)
    return agent, recorder, ws, task


async def until(ws: ServerConnection, kind: str) -> Any:
    while True:
        name, message = payload(decode(await asyncio.wait_for(ws.recv(), 10)))
        if name == kind:
            return message


async def stop(agent_task: Any) -> None:
    agent_task.cancel()
    await asyncio.gather(agent_task, return_exceptions=True)


INPUT = [
    encode(KeyEvent(scan_code=0x1E, down=True)),
    encode(KeyEvent(text="rm -rf /\n", down=True)),
    encode(MouseEvent(x=5, y=5, button=MouseButton.MOUSE_BUTTON_LEFT, down=True)),
]


@pytest.mark.asyncio
async def test_input_before_consent_is_not_injected(rogue: RogueRelay) -> None:
    _agent, recorder, ws, task = await launch(rogue, unattended=False)
    await ws.send(
        encode(SessionRequest(session_id="s1", scope=Scope.SCOPE_CONTROL, consent_required=True))
    )
    for data in INPUT:  # before even asking
        await ws.send(data)
    await ws.send(encode(ConsentRequest(session_id="s1", technician="t", timeout_s=5)))
    answer = await until(ws, "consent_response")
    assert not answer.granted  # nobody at this machine can be asked: denied
    for data in INPUT:  # after the denial
        await ws.send(data)
    await asyncio.sleep(0.3)
    assert [e for e in recorder.events if e[0] != "release_all"] == []
    await stop(task)


@pytest.mark.asyncio
async def test_server_policy_alone_does_not_make_an_agent_unattended(rogue: RogueRelay) -> None:
    """The relay says no consent is needed; the agent was not installed --unattended, so it
    asks its user anyway (here nobody can answer: the session is refused)."""
    _agent, recorder, ws, task = await launch(rogue, unattended=False)
    await ws.send(
        encode(SessionRequest(session_id="s1", scope=Scope.SCOPE_CONTROL, consent_required=False))
    )
    response = await until(ws, "session_response")
    assert not response.accepted
    for data in INPUT:
        await ws.send(data)
    await asyncio.sleep(0.3)
    assert [e for e in recorder.events if e[0] != "release_all"] == []
    await stop(task)


@pytest.mark.asyncio
async def test_view_scope_gets_no_input_and_control_scope_does(rogue: RogueRelay) -> None:
    _agent, recorder, ws, task = await launch(rogue, unattended=True)
    await ws.send(encode(SessionRequest(session_id="s1", scope=Scope.SCOPE_VIEW)))
    assert (await until(ws, "session_response")).accepted
    frame = await until(ws, "video_frame")
    assert (frame.width, frame.height, frame.keyframe) == (128, 64, True)
    for data in INPUT:
        await ws.send(data)
    await asyncio.sleep(0.3)
    assert [e for e in recorder.events if e[0] != "release_all"] == []

    await ws.send(encode(SessionRequest(session_id="s2", scope=Scope.SCOPE_CONTROL)))
    assert (await until(ws, "session_response")).accepted
    for data in INPUT:
        await ws.send(data)
    await asyncio.sleep(0.3)
    injected = [e for e in recorder.events if e[0] != "release_all"]
    assert injected == [
        ("key", "KeyA", True),
        ("text", "rm -rf /\n"),
        ("move", 5, 5),
        ("button", MouseButton.MOUSE_BUTTON_LEFT, True),
    ]
    await stop(task)


class TwoScreens(StillScreen):
    def displays(self) -> list[DisplayInfo]:
        return [DisplayInfo(1, 0, 0, 128, 64, True), DisplayInfo(2, 128, 0, 64, 32)]

    def bounds(self) -> DisplayInfo:
        return DisplayInfo(0, 0, 0, 192, 64)


@pytest.mark.asyncio
async def test_display_switch_changes_the_picture_and_where_clicks_land(
    rogue: RogueRelay,
) -> None:
    recorder = Recorder()
    _agent, _recorder, ws, task = await launch(
        rogue, capturer=TwoScreens, recorder=recorder, unattended=True
    )
    status = await until(ws, "agent_status")
    assert [(d.id, d.x, d.width) for d in status.displays] == [(1, 0, 128), (2, 128, 64)]
    await ws.send(encode(SessionRequest(session_id="s", scope=Scope.SCOPE_CONTROL)))
    assert (await until(ws, "video_frame")).display_id == 1

    await ws.send(encode(DisplaySwitch(display_id=2)))
    frame = await until(ws, "video_frame")
    assert (frame.display_id, frame.width, frame.height, frame.keyframe) == (2, 64, 32, True)
    await ws.send(encode(MouseEvent(display_id=2, x=5, y=5)))
    await ws.send(encode(MouseEvent(display_id=2, x=500, y=500)))  # clamped to the display
    await ws.send(encode(MouseEvent(display_id=1, x=5, y=5)))  # not the one shown: ignored
    await ws.send(encode(DisplaySwitch(all=True)))
    frame = await until(ws, "video_frame")
    assert (frame.display_id, frame.width, frame.height) == (0, 192, 64)
    moves = [e for e in recorder.events if e[0] == "move"]
    assert moves == [("move", 133, 5), ("move", 191, 31)]
    await stop(task)


class BusyScreen(StillScreen):
    """Every grab is new noise: each frame is ~3 MB that zstd cannot shrink."""

    def __init__(self) -> None:
        self.grabs = 0
        self._rng = np.random.default_rng(1)

    def displays(self) -> list[DisplayInfo]:
        return [DisplayInfo(1, 0, 0, 1024, 768, True)]

    def grab(self, display: DisplayInfo, into: Frame) -> None:
        self.grabs += 1
        into[...] = self._rng.integers(0, 256, into.shape, dtype=np.uint8)


@pytest.mark.asyncio
async def test_a_relay_that_stops_reading_holds_the_agent_back(rogue: RogueRelay) -> None:
    screen = BusyScreen()
    _agent, _recorder, ws, task = await launch(
        rogue, capturer=lambda: screen, unattended=True, fps=30
    )
    await ws.send(encode(SessionRequest(session_id="s", scope=Scope.SCOPE_VIEW)))
    await until(ws, "video_frame")
    # Stop reading. At 30 fps that would be 30 frames (90 MB) a second queued somewhere;
    # instead the socket buffers fill and the capture stops: no frame for 1.5 s.
    loop = asyncio.get_running_loop()
    before = last = screen.grabs
    quiet_since = started = loop.time()
    while loop.time() - quiet_since < 1.5:
        assert loop.time() - started < 15, f"still capturing: {screen.grabs - before} frames"
        await asyncio.sleep(0.1)
        if screen.grabs != last:
            last, quiet_since = screen.grabs, loop.time()
    stalled = screen.grabs - before
    # What the socket buffers hold (a few frames; more on a loaded machine), not a queue
    # that grows with time: unbounded, this would be 30 frames for every second waited.
    assert stalled <= 30, f"{stalled} frames captured while nobody read"
    # Reading again, frames flow again.
    for _ in range(5):
        await until(ws, "video_frame")
    assert screen.grabs > before + stalled
    await stop(task)


@pytest.mark.asyncio
async def test_a_still_screen_sends_a_keyframe_now_and_then(rogue: RogueRelay) -> None:
    _agent, _recorder, ws, task = await launch(rogue, unattended=True, keyframe_interval=0.3)
    await ws.send(encode(SessionRequest(session_id="s", scope=Scope.SCOPE_VIEW)))
    frames = [await until(ws, "video_frame") for _ in range(3)]
    assert all(f.keyframe and len(f.tiles) == 2 for f in frames)  # 128x64: two tiles
    gaps = [b.timestamp_us - a.timestamp_us for a, b in itertools.pairwise(frames)]
    assert all(250_000 <= gap <= 1_500_000 for gap in gaps), gaps
    await stop(task)


class WideDesktop(StillScreen):
    """Display 1 is ordinary; the whole desktop is wider than H.264 allows (17000 px, as
    five 4K monitors side by side would be)."""

    def displays(self) -> list[DisplayInfo]:
        return [DisplayInfo(1, 0, 0, 320, 192, True)]

    def bounds(self) -> DisplayInfo:
        return DisplayInfo(0, 0, 0, 17000, 64)


@pytest.mark.asyncio
async def test_h264_failing_mid_session_falls_back_to_raw_and_the_session_goes_on(
    rogue: RogueRelay,
) -> None:
    agent, _recorder, ws, task = await launch(rogue, capturer=WideDesktop, unattended=True)
    status = await until(ws, "agent_status")
    assert list(status.encoders) == [Codec.CODEC_H264, Codec.CODEC_RAW_ZSTD]
    await ws.send(
        encode(SessionRequest(session_id="s", scope=Scope.SCOPE_VIEW, codecs=[Codec.CODEC_H264]))
    )
    assert (await until(ws, "session_response")).codec == Codec.CODEC_H264
    frame = await until(ws, "video_frame")
    assert (frame.codec, frame.keyframe, frame.width) == (Codec.CODEC_H264, True, 320)
    assert frame.data.startswith(b"\x00\x00\x00\x01")  # Annex B

    await ws.send(encode(DisplaySwitch(all=True)))  # no H.264 encoder opens that wide
    while (frame := await until(ws, "video_frame")).width != 17000:
        pass
    assert (frame.codec, frame.keyframe) == (Codec.CODEC_RAW_ZSTD, True)
    assert agent.session is not None
    assert agent.session.task is not None
    assert not agent.session.task.done()
    await stop(task)


@pytest.mark.asyncio
async def test_no_h264_encoder_means_raw_only(rogue: RogueRelay) -> None:
    _agent, _recorder, ws, task = await launch(
        rogue,
        unattended=True,
        h264_encoders=("h264_nvenc", "h264_qsv"),  # absent here
    )
    assert list((await until(ws, "agent_status")).encoders) == [Codec.CODEC_RAW_ZSTD]
    # Even a relay that asks for H.264 gets raw tiles.
    await ws.send(
        encode(SessionRequest(session_id="s", scope=Scope.SCOPE_VIEW, codecs=[Codec.CODEC_H264]))
    )
    assert (await until(ws, "session_response")).codec == Codec.CODEC_RAW_ZSTD
    assert (await until(ws, "video_frame")).codec == Codec.CODEC_RAW_ZSTD
    await stop(task)


@pytest.mark.asyncio
async def test_dropped_frames_lower_the_rate_and_open_a_smaller_encoder(
    rogue: RogueRelay,
) -> None:
    screen = BusyScreen()
    agent, _recorder, ws, task = await launch(
        rogue, capturer=lambda: screen, unattended=True, max_rate_kbps=8000
    )
    await ws.send(
        encode(SessionRequest(session_id="s", scope=Scope.SCOPE_VIEW, codecs=[Codec.CODEC_H264]))
    )
    await until(ws, "video_frame")
    assert agent.session is not None
    assert agent.session.streamer is not None
    streamer = agent.session.streamer
    await ws.send(encode(KeyframeRequest(session_id="s", dropped_frames=12)))
    await ws.send(encode(KeyframeRequest(session_id="s", dropped_frames=5)))
    keyframe = await until(ws, "video_frame")
    while not keyframe.keyframe:
        keyframe = await until(ws, "video_frame")
    assert streamer.rate.congestions >= 2
    assert streamer.rate.rate_kbps <= 8000 * 0.6 * 0.6 + 1
    assert streamer.rate.fps < 30
    assert streamer._h264 is not None
    assert streamer._h264.max_rate_kbps == streamer.rate.rate_kbps
    await stop(task)


@pytest.mark.asyncio
async def test_a_relay_that_goes_silent_is_left_and_reconnected() -> None:
    """A dead link does not always close the socket: three heartbeat periods of silence
    and the agent connects again."""
    connections: asyncio.Queue[ServerConnection] = asyncio.Queue()
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(encode(AuthResult(ok=True, machine_id="m", heartbeat_interval_s=1)))
        await connections.put(ws)
        await done.wait()  # never a heartbeat, never a close

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        agent = Agent(
            AgentConfig(server=f"ws://127.0.0.1:{port}", key="cak_x", desktop_ui=False),
            capturer=StillScreen,
            cursor=NoCursor,
            injector=Recorder,
        )
        agent.backoff.base = 0.1
        task = asyncio.create_task(agent.run())
        try:
            first = await asyncio.wait_for(connections.get(), 10)
            started = asyncio.get_running_loop().time()
            second = await asyncio.wait_for(connections.get(), 10)
            waited = asyncio.get_running_loop().time() - started
            assert 2.5 < waited < 6, waited
            assert first is not second
            done.set()
        finally:
            done.set()
            await stop(task)


@pytest.mark.asyncio
async def test_a_session_the_relay_does_not_offer_again_after_a_reconnect_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from guruconnect.agent import runner

    monkeypatch.setattr(runner, "RESUME_WAIT_SECONDS", 0.5)
    connections: asyncio.Queue[ServerConnection] = asyncio.Queue()
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(encode(AuthResult(ok=True, machine_id="m")))
        await connections.put(ws)
        await done.wait()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        recorder = Recorder()
        agent = Agent(
            AgentConfig(
                server=f"ws://127.0.0.1:{port}", key="cak_x", unattended=True, desktop_ui=False
            ),
            capturer=StillScreen,
            cursor=NoCursor,
            injector=lambda: recorder,
        )
        agent.backoff.base = 0.1
        task = asyncio.create_task(agent.run())
        try:
            first = await asyncio.wait_for(connections.get(), 10)
            await first.send(encode(SessionRequest(session_id="s", scope=Scope.SCOPE_CONTROL)))
            await until(first, "video_frame")
            await first.close()  # the link drops; the session is paused, not ended
            second = await asyncio.wait_for(connections.get(), 10)
            assert agent.session is not None
            assert agent.session.id == "s"
            await asyncio.sleep(1.0)  # the relay never offers "s" again
            assert agent.session is None
            await second.send(encode(KeyEvent(scan_code=0x1E, down=True)))
            await asyncio.sleep(0.2)
            assert [e for e in recorder.events if e[0] == "key"] == []
            done.set()
        finally:
            done.set()
            await stop(task)


class OneCursor:
    """A cursor that never changes: its shape is news once, unless asked again."""

    def __init__(self) -> None:
        self.sent = False

    def position(self) -> Pointer:
        return Pointer(10, 20)

    def shape(self, *, again: bool = False) -> CursorShape | None:
        if self.sent and not again:
            return None
        self.sent = True
        return CursorShape(id=7, width=1, height=1, bgra=b"\x00\x00\x00\xff")

    def close(self) -> None:
        pass


@pytest.mark.asyncio
async def test_every_keyframe_carries_the_cursor_for_viewers_that_joined_late(
    rogue: RogueRelay,
) -> None:
    _agent, _recorder, ws, task = await launch(rogue, cursor=OneCursor, unattended=True)
    await ws.send(encode(SessionRequest(session_id="s", scope=Scope.SCOPE_VIEW)))
    assert (await until(ws, "cursor_shape")).id == 7
    assert (await until(ws, "cursor_position")).x == 10
    await ws.send(encode(KeyframeRequest(session_id="s")))  # a viewer joined
    assert (await until(ws, "video_frame")).keyframe
    assert (await until(ws, "cursor_shape")).id == 7
    assert (await until(ws, "cursor_position")).y == 20
    await stop(task)

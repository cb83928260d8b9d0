"""The real agent process on a real X server, through the real relay, to a Python viewer.

What a technician would check: the picture is exactly the screen, small changes send only
the tiles that changed, keys and clicks land where they should, the person at the machine
decides, chat goes both ways, and the agent comes back after the server restarts.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from guruconnect.client import ApiClient, ViewerClient
from guruconnect.client.h264 import H264Decoder, psnr
from guruconnect.client.screen import TileDecoder
from guruconnect.protocol import (
    ChatMessage,
    Codec,
    KeyEvent,
    MouseButton,
    MouseEvent,
    SessionState,
    SpecialKey,
    SpecialKeyEvent,
)
from guruconnect.protocol import keys as keytable
from tests.agent.conftest import SCREEN, AgentProcess, XServer, admin_api
from tests.agent.test_h264 import desktop as h264_desktop
from tests.conftest import LiveServer
from tests.timing import scaled

pytestmark = pytest.mark.timeout(120)

TILE = 64
#: See tests/agent/test_h264.py for why 35 dB.
PSNR_DB = 35.0


def write_ppm(path: Path, rgb: np.ndarray[Any, np.dtype[np.uint8]]) -> Path:
    height, width, _ = rgb.shape
    path.write_bytes(f"P6 {width} {height} 255\n".encode() + rgb.tobytes())
    return path


def desktop_like(width: int, height: int, seed: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Gradients, flat panels and a noisy block: content a tile diff must get exactly right."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), ((x + y) % 256)], axis=-1
    ).astype(np.uint8)
    rgb[height // 4 : height // 2, width // 5 : width // 2] = (240, 240, 235)
    rgb[-60:, :] = (30, 30, 40)
    rgb[height // 2 : height // 2 + 50, width // 2 : width // 2 + 90] = rng.integers(
        0, 256, (50, 90, 3), dtype=np.uint8
    )
    return rgb


async def wait_online(api: ApiClient, timeout: float | None = None) -> str:
    """``timeout`` in seconds (callers scale it); by default 20 time units."""
    deadline = time.monotonic() + (scaled(20) if timeout is None else timeout)
    while time.monotonic() < deadline:
        machines = await api._call("GET", "/api/machines")
        items = machines["items"] if isinstance(machines, dict) else machines
        online = [m for m in items if m.get("online")]
        if online:
            return str(online[0]["id"])
        await asyncio.sleep(0.2)
    raise AssertionError("the agent did not come online")


async def open_session(
    api: ApiClient, machine_id: str, scope: str = "control"
) -> tuple[str, ViewerClient]:
    session = await api.request_session(machine_id, scope)
    ticket = await api.viewer_ticket(session["id"], scope)
    viewer = await ViewerClient.connect(api.base_url, session["id"], ticket)
    return str(session["id"]), viewer


async def next_state(viewer: ViewerClient, wanted: int, timeout: float = 20) -> SessionState:
    deadline = time.monotonic() + scaled(timeout)
    while True:
        state = await viewer.expect("session_state", max(0.1, deadline - time.monotonic()))
        if state.state == wanted:
            return state  # type: ignore[no-any-return]


async def picture_until(
    viewer: ViewerClient,
    decoder: TileDecoder,
    done: Callable[[], bool],
    timeout: float = 20,
    on_frame: Callable[[Any], None] | None = None,
    others: list[Any] | None = None,
) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not (decoder.frames and done()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"the picture did not arrive: {decoder.frames} frames, {decoder.tiles} tiles"
            )
        try:
            envelope = await viewer.recv(remaining)
        except TimeoutError:
            continue
        if envelope.HasField("video_frame"):
            if envelope.video_frame.codec != Codec.CODEC_RAW_ZSTD:
                continue  # sent before the relay told the agent what this viewer decodes
            decoder.apply(envelope.video_frame)
            if on_frame is not None:
                on_frame(envelope.video_frame)
        elif others is not None:
            others.append(envelope)


async def quiet(
    viewer: ViewerClient, decoder: TileDecoder, seconds: float, others: list[Any] | None = None
) -> None:
    """Apply frames until none has come for ``seconds``."""
    while True:
        try:
            envelope = await viewer.recv(seconds)
        except TimeoutError:
            return
        if envelope.HasField("video_frame"):
            decoder.apply(envelope.video_frame)
        elif others is not None:
            others.append(envelope)


@pytest.fixture
def relay(sqlite_server: Callable[..., LiveServer]) -> LiveServer:
    server = sqlite_server(consent_timeout_seconds=20)
    server.create_user("root", is_admin=True)
    return server


@pytest.fixture
def background(xserver: XServer, tmp_path: Path) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """The whole screen covered by a known picture."""
    rgb = desktop_like(*SCREEN, seed=1)
    xserver.app("picture.py", write_ppm(tmp_path / "bg.ppm", rgb), 0, 0)
    yield rgb
    xserver.stop_children()


async def unattended_agent(
    relay: LiveServer, start_agent: Callable[..., AgentProcess], *extra: str
) -> tuple[ApiClient, AgentProcess, str]:
    api = await admin_api(relay)
    key = await api.issue_agent_key("pc")
    agent = start_agent(relay.url, key=key["key"], extra=("--unattended", *extra))
    machine_id = await wait_online(api)
    await api.set_consent_policy(machine_id, "unattended")
    return api, agent, machine_id


def test_screen_arrives_bit_for_bit_and_updates_send_only_changed_tiles(
    relay: LiveServer,
    xserver: XServer,
    background: np.ndarray[Any, np.dtype[np.uint8]],
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        # No windows: the session indicator would cover part of the known picture.
        api, agent, machine_id = await unattended_agent(
            relay, start_agent, "--keyframe-interval", "600", "--no-windows"
        )
        _session_id, viewer = await open_session(api, machine_id)
        decoder = TileDecoder()
        others: list[Any] = []
        await picture_until(
            viewer,
            decoder,
            lambda: np.array_equal(decoder.rgb(), background),
            timeout=20,
            others=others,
        )
        # Independently of the agent: the X server's own pixels, alpha byte and all.
        assert np.array_equal(decoder.picture, xserver.screenshot())

        # Let the keyframes asked for at the session's start go by: then the screen is still.
        await quiet(viewer, decoder, 1.0, others)
        # The cursor travels on its own, not burned into the picture.
        shape = next(e.cursor_shape for e in others if e.HasField("cursor_shape"))
        assert shape.width > 0
        assert len(shape.bgra) == shape.width * shape.height * 4

        # A 40x40 change at (500, 500) touches tiles (448|512) x (448|512): four of them.
        patch = np.full((40, 40, 3), (250, 10, 120), np.uint8)
        seen: list[tuple[int, int]] = []
        frames_before = decoder.frames

        def record(frame: Any) -> None:
            assert not frame.keyframe
            seen.extend((t.x, t.y) for t in frame.tiles)

        xserver.app("picture.py", write_ppm(tmp_path / "patch.ppm", patch), 500, 500)
        expected = background.copy()
        expected[500:540, 500:540] = patch
        await picture_until(
            viewer, decoder, lambda: np.array_equal(decoder.rgb(), expected), on_frame=record
        )
        assert decoder.frames > frames_before
        assert set(seen) == {(448, 448), (512, 448), (448, 512), (512, 512)}
        xserver.run("xdotool", "mousemove", "321", "123")
        while True:
            envelope = await viewer.recv(10)
            if envelope.HasField("cursor_position") and envelope.cursor_position.x == 321:
                assert (envelope.cursor_position.y, envelope.cursor_position.visible) == (123, True)
                break
        await viewer.close()
        await api.aclose()
        assert agent.process.poll() is None, agent.log()

    asyncio.run(scenario())


@pytest.fixture
def textfield(xserver: XServer) -> Any:
    app = xserver.app("textfield.py", "field", 600, 100, 400, 200)
    yield app
    xserver.stop_children()


def key_events(code: str) -> list[KeyEvent]:
    key = keytable.by_code()[code]
    return [
        KeyEvent(scan_code=key.scan, extended=key.extended, down=True),
        KeyEvent(scan_code=key.scan, extended=key.extended, down=False),
    ]


def typed(text: str) -> list[KeyEvent]:
    """Physical keys for plain US-layout text: what a browser viewer sends."""
    events: list[KeyEvent] = []
    shift = keytable.by_code()["ShiftLeft"]
    for char in text:
        code = (
            "Space" if char == " " else f"Digit{char}" if char.isdigit() else f"Key{char.upper()}"
        )
        if char.isupper():
            events.append(KeyEvent(scan_code=shift.scan, down=True))
        events += key_events(code)
        if char.isupper():
            events.append(KeyEvent(scan_code=shift.scan, down=False))
    return events


def test_keys_by_scan_code_text_mode_clicks_and_special_keys_reach_the_desktop(
    relay: LiveServer,
    xserver: XServer,
    textfield: Any,
    start_agent: Callable[..., AgentProcess],
) -> None:
    async def scenario() -> None:
        api, _agent, machine_id = await unattended_agent(relay, start_agent)
        _session_id, viewer = await open_session(api, machine_id)
        await viewer.expect("video_frame")
        # Click into the field at a known place: the click lands there, on the left button.
        await viewer.send(MouseEvent(x=650, y=150))
        await viewer.send(MouseEvent(x=650, y=150, button=MouseButton.MOUSE_BUTTON_LEFT, down=True))
        await viewer.send(MouseEvent(x=650, y=150, button=MouseButton.MOUSE_BUTTON_LEFT))
        await asyncio.to_thread(textfield.wait_for, lambda line: line == "click 650 150 1")

        for event in typed("Hello 42"):
            await viewer.send(event)
        await asyncio.to_thread(textfield.wait_for, lambda line: line == "text 'Hello 42'")

        # Text mode types what the layout has no key for (the US layout has no ü or €).
        await viewer.send(KeyEvent(text=" ü€", down=True))
        await asyncio.to_thread(textfield.wait_for, lambda line: line == "text 'Hello 42 ü€'")

        # A German layout on the machine: the key right of T types z (the same scan code
        # that types y on a US layout), because keys travel as physical keys.
        xserver.run("setxkbmap", "de")
        try:
            await asyncio.sleep(0.3)
            for event in key_events("KeyY"):
                await viewer.send(event)
            await asyncio.to_thread(textfield.wait_for, lambda line: line == "text 'Hello 42 ü€z'")
        finally:
            xserver.run("setxkbmap", "us")

        await viewer.send(SpecialKeyEvent(key=SpecialKey.SPECIAL_KEY_CTRL_ALT_DEL))
        for keysym in ("Control_L", "Alt_L", "Delete"):
            await asyncio.to_thread(textfield.wait_for, lambda line, k=keysym: line == f"key {k}")
        await viewer.close()
        await api.aclose()

    asyncio.run(scenario())


CONSENT = "GuruConnect: connection request"
INDICATOR = "GuruConnect: session active"
CHAT = "GuruConnect: chat"


async def attended_agent(
    relay: LiveServer, start_agent: Callable[..., AgentProcess]
) -> tuple[ApiClient, AgentProcess, str]:
    api = await admin_api(relay)
    key = await api.issue_agent_key("pc")
    agent = start_agent(relay.url, key=key["key"])
    return api, agent, await wait_online(api)


def test_the_person_at_the_machine_allows_chats_and_ends_the_session(
    relay: LiveServer, xserver: XServer, start_agent: Callable[..., AgentProcess]
) -> None:
    async def scenario() -> None:
        api, _agent, machine_id = await attended_agent(relay, start_agent)
        session_id, viewer = await open_session(api, machine_id)
        assert viewer.state.state == SessionState.STATE_AWAITING_CONSENT
        dialog = await asyncio.to_thread(xserver.window, CONSENT)
        # Nothing travels before the answer.
        with pytest.raises(TimeoutError):
            await viewer.expect("video_frame", timeout=0.5)
        await asyncio.to_thread(xserver.press, dialog, "alt+a")
        await next_state(viewer, SessionState.STATE_ACTIVE)
        await viewer.expect("video_frame")
        indicator = await asyncio.to_thread(xserver.window, INDICATOR)
        assert xserver.no_window(CONSENT)

        # Chat: the technician writes, the window opens at the machine, the person answers.
        await viewer.send(ChatMessage(session_id=session_id, text="Hello, I am looking now"))
        chat = await asyncio.to_thread(xserver.window, CHAT)
        await asyncio.to_thread(xserver.press, chat, "Tab")  # focus: log -> entry
        await asyncio.to_thread(xserver.run, "xdotool", "type", "--delay", "20", "thanks")
        await asyncio.to_thread(xserver.run, "xdotool", "key", "Return")
        echo = await viewer.expect("chat")  # the relay shows every viewer the whole chat
        assert (echo.sender, echo.text) == ("root", "Hello, I am looking now")
        answer = await viewer.expect("chat")
        assert answer.text == "thanks"
        assert answer.sender == getpass.getuser()  # the user logged in at the machine

        # The person ends it: the viewer hears why, the indicator goes away.
        await asyncio.to_thread(xserver.press, indicator, "alt+e")
        ended = await next_state(viewer, SessionState.STATE_ENDED)
        assert ended.reason == "ended_at_machine"
        deadline = time.monotonic() + scaled(10)
        while not xserver.no_window(INDICATOR):
            assert time.monotonic() < deadline, "the indicator stayed"
            await asyncio.sleep(0.1)
        await viewer.close()
        await api.aclose()

    asyncio.run(scenario())


def test_denial_ends_the_request_and_nothing_is_sent(
    relay: LiveServer, xserver: XServer, start_agent: Callable[..., AgentProcess]
) -> None:
    async def scenario() -> None:
        api, _agent, machine_id = await attended_agent(relay, start_agent)
        session_id, viewer = await open_session(api, machine_id)
        dialog = await asyncio.to_thread(xserver.window, CONSENT)
        await asyncio.to_thread(xserver.press, dialog, "alt+d")
        deadline = time.monotonic() + scaled(15)
        kinds = []
        while True:
            envelope = await viewer.recv(max(0.1, deadline - time.monotonic()))
            kinds.append(envelope.WhichOneof("payload"))
            if envelope.HasField("session_state") and envelope.session_state.state == (
                SessionState.STATE_ENDED
            ):
                assert envelope.session_state.reason == "consent_denied"
                break
        assert "video_frame" not in kinds
        assert "cursor_position" not in kinds
        session = await api._call("GET", f"/api/sessions/{session_id}")
        assert session["state"] == "ended"
        denied = await asyncio.to_thread(relay.events, "consent.denied")
        assert len(denied) == 1
        assert "denied by the local user" in str(denied[0].detail)
        await viewer.close()
        await api.aclose()

    asyncio.run(scenario())


def test_agent_comes_back_after_the_server_restarts(
    sqlite_server: Callable[..., LiveServer],
    xserver: XServer,
    start_agent: Callable[..., AgentProcess],
) -> None:
    first = sqlite_server()
    first.create_user("root", is_admin=True)

    async def before() -> None:
        api, _agent, _machine = await unattended_agent(first, start_agent, "--no-windows")
        await api.aclose()

    asyncio.run(before())
    port = int(first.url.rsplit(":", 1)[1])
    first.stop()
    time.sleep(1.0)  # the agent notices and starts backing off
    second = sqlite_server(port=port)

    async def after() -> None:
        api = await admin_api(second)
        machine_id = await wait_online(api, timeout=scaled(30))
        _session_id, viewer = await open_session(api, machine_id)
        frame = await viewer.expect("video_frame", timeout=15)
        assert frame.width == SCREEN[0]
        assert frame.height == SCREEN[1]
        await viewer.close()
        await api.aclose()

    asyncio.run(after())
    connected = second.events("agent.connected")
    assert len(connected) == 2  # once before the restart, once after (same database)
    assert connected[0].machine_id == connected[1].machine_id


def test_revoked_key_and_used_code_end_the_agent_with_a_message(
    relay: LiveServer, xserver: XServer, start_agent: Callable[..., AgentProcess]
) -> None:
    async def scenario() -> tuple[AgentProcess, AgentProcess]:
        api = await admin_api(relay)
        key = await api.issue_agent_key("pc")
        agent = start_agent(relay.url, key=key["key"], extra=("--no-windows",))
        await wait_online(api)
        await api._call("DELETE", f"/api/agent-keys/{key['id']}")

        code = await api.create_support_code()
        from guruconnect.client import AgentClient

        first = await AgentClient.connect(relay.url, code=code["code"])
        await first.close()
        used = start_agent(relay.url, code=code["code"], extra=("--no-windows",))
        await api.aclose()
        return agent, used

    revoked, used = asyncio.run(scenario())
    assert revoked.wait(20) == 3
    assert "revoked" in revoked.log()
    assert used.wait(20) == 3
    assert "refused this support code" in used.log()
    # No retry storm: one connection attempt each, not a loop.
    assert used.log().count("relay refused") <= 1


def test_h264_session_shows_the_screen_within_the_psnr_threshold(
    relay: LiveServer,
    xserver: XServer,
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
) -> None:
    """Agent -> relay -> Python viewer that decodes H.264: the session moves to H.264 once
    the viewer has said it decodes it, and the decoded picture matches the X screen.

    The screen shows a desktop (wallpaper, a window of text, a photo), not the raw-path
    fixture's block of pure noise, which no lossy codec keeps and which alone would hold
    the PSNR of the whole screen near 31 dB."""
    rgb = h264_desktop(*SCREEN)[:, :, 2::-1]
    xserver.app("picture.py", write_ppm(tmp_path / "desk.ppm", np.ascontiguousarray(rgb)), 0, 0)

    async def scenario() -> None:
        api, _agent, machine_id = await unattended_agent(relay, start_agent, "--no-windows")
        session = await api.request_session(machine_id, "control")
        ticket = await api.viewer_ticket(session["id"], "control")
        viewer = await ViewerClient.connect(
            api.base_url, session["id"], ticket, codecs=[Codec.CODEC_H264, Codec.CODEC_RAW_ZSTD]
        )
        decoder = H264Decoder()
        screen = xserver.screenshot()[:, :, 2::-1]
        best = 0.0
        deadline = time.monotonic() + scaled(30)
        while best < PSNR_DB or decoder.frames < 5:
            assert time.monotonic() < deadline, f"best PSNR {best:.1f} dB"
            envelope = await viewer.recv(10)
            frame = envelope.video_frame if envelope.HasField("video_frame") else None
            if frame is not None and frame.codec == Codec.CODEC_H264 and decoder.apply(frame):
                best = max(best, psnr(decoder.rgb(), screen))
        assert decoder.keyframes >= 1
        assert decoder.picture.shape == (SCREEN[1], SCREEN[0], 4)
        await viewer.close()
        await api.aclose()

    try:
        asyncio.run(scenario())
    finally:
        xserver.stop_children()

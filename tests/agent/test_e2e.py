"""The real agent process on a real X server, through the real relay, to a Python viewer.

What a technician would check: the picture is exactly the screen, small changes send only
the tiles that changed, keys and clicks land where they should, the person at the machine
decides, chat goes both ways, and the agent comes back after the server restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from guruconnect.client import ApiClient, ViewerClient
from guruconnect.client.screen import TileDecoder
from guruconnect.protocol import (
    KeyEvent,
    MouseButton,
    MouseEvent,
    SessionState,
    SpecialKey,
    SpecialKeyEvent,
)
from guruconnect.protocol import keys as keytable
from tests.agent.conftest import SCREEN, AgentProcess, XServer, admin_api
from tests.conftest import LiveServer

pytestmark = pytest.mark.timeout(120)

TILE = 64


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


async def wait_online(api: ApiClient, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
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
    deadline = time.monotonic() + timeout
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
) -> None:
    deadline = time.monotonic() + timeout
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
            decoder.apply(envelope.video_frame)
            if on_frame is not None:
                on_frame(envelope.video_frame)


async def quiet(viewer: ViewerClient, decoder: TileDecoder, seconds: float) -> None:
    """Apply frames until none has come for ``seconds``."""
    while True:
        try:
            envelope = await viewer.recv(seconds)
        except TimeoutError:
            return
        if envelope.HasField("video_frame"):
            decoder.apply(envelope.video_frame)


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
        await picture_until(
            viewer, decoder, lambda: np.array_equal(decoder.rgb(), background), timeout=20
        )
        # Independently of the agent: the X server's own pixels, alpha byte and all.
        assert np.array_equal(decoder.picture, xserver.screenshot())

        # Let the keyframes asked for at the session's start go by: then the screen is still.
        await quiet(viewer, decoder, 1.0)

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

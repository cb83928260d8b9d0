"""The technician's whole session in Chromium against the real relay, with a scripted agent
(the reference AgentClient): connect from the machines page, consent, the canvas shows
exactly the pixels the agent sent, keys arrive as the agent's scan codes, Ctrl+Alt+Del
from the toolbar, mouse in remote coordinates, chat both ways, held keys released on blur,
and the states a technician must see (waiting for consent, denied, ended)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from guruconnect.protocol import (
    ClipboardText,
    Codec,
    CursorPosition,
    CursorShape,
    MouseButton,
    SpecialKey,
    VideoFrame,
)
from guruconnect.protocol.keys import browser_table
from tests.conftest import LiveServer
from tests.web.agents import ScriptedAgent, screen_picture
from tests.web.conftest import PHONE, UNIT_MS, Browsing, LoopThread, open_page, wait_js

WIDTH, HEIGHT = 256, 128


@pytest.fixture
def agent(web_server: LiveServer, loop_thread: LoopThread) -> Iterator[ScriptedAgent]:
    token = web_server.login("root")
    key = web_server.client(token=token).post("/api/agent-keys", json={"label": "kiosk"})
    assert key.status_code == 201, key.text
    scripted = ScriptedAgent.connect(
        loop_thread, web_server.url, key=key.json()["key"], width=WIDTH, height=HEIGHT
    )
    yield scripted
    scripted.close()


def canvas_pixels(web: Browsing) -> np.ndarray:
    """The screen canvas as an RGBA array, read in the page."""
    data: dict[str, Any] = web.page.evaluate(
        """() => {
            const c = document.getElementById("screen");
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height);
            return {w: c.width, h: c.height, px: Array.from(d.data)};
        }"""
    )
    return np.array(data["px"], dtype=np.uint8).reshape(data["h"], data["w"], 4)


def open_session(web: Browsing, agent: ScriptedAgent, scope: str = "Control") -> str:
    """Log in, click Connect on the agent's machine row; return the session id."""
    web.login()
    row = web.page.locator(f"tr[data-machine-id='{agent.machine_id}']")
    expect(row.locator(".badge")).to_have_text("Online")
    row.get_by_role("button", name=re.compile(f"^{scope} ")).click()
    web.page.wait_for_url(re.compile(r"/viewer/[0-9a-f-]{36}"))
    return web.page.url.split("/viewer/")[1].split("?")[0]


def test_session_end_to_end(web: Browsing, agent: ScriptedAgent) -> None:
    page = web.page
    session_id = open_session(web, agent)

    # Consent: nothing is shown until the person at the machine allows it.
    request = agent.wait_for("session_request", lambda m: m.session_id == session_id)
    assert request.consent_required
    expect(page.locator("#status")).to_have_text("Waiting for consent…")
    expect(page.locator("#overlay")).to_contain_text("allow this session")
    expect(page.locator("#cad")).to_be_disabled()  # nothing to act on yet
    web.shot("viewer-waiting-for-consent")
    assert page.locator("body").get_attribute("data-codecs")  # announced what it decodes
    agent.grant_consent(session_id)
    agent.wait_for("keyframe_request")
    expect(page.locator("#status")).to_have_text("Connected · you have control")

    # The canvas shows exactly what the agent sent (lossless path, BGRA -> RGBA).
    picture = screen_picture(WIDTH, HEIGHT)
    agent.show(picture, session_id)
    agent.cursor(40, 30)
    expect(page.locator("#overlay")).to_be_hidden()
    drawn = canvas_pixels(web)
    assert drawn.shape == (HEIGHT, WIDTH, 4)
    expected = picture[..., [2, 1, 0, 3]]
    assert np.array_equal(drawn, expected), "canvas differs from the agent's pixels"
    web.shot("viewer-connected")

    # Keys travel as the agent's own scan codes.
    table = browser_table()
    # Fit scales the 256x128 screen up to the window; a click lands in remote pixels.
    box = page.locator("#screen").bounding_box()
    assert box is not None
    assert box["width"] > 2 * WIDTH
    page.locator("#screen").click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.5})
    down = agent.wait_for("mouse_event", lambda m: m.button == MouseButton.MOUSE_BUTTON_LEFT)
    assert (down.x, down.y, down.down) == (192, 64, True)
    # 1:1 shows remote pixels as they are.
    page.locator("#scale").click()
    box = page.locator("#screen").bounding_box()
    assert box is not None
    assert (box["width"], box["height"]) == (WIDTH, HEIGHT)
    page.locator("#screen").click(position={"x": 100, "y": 50}, button="right")
    down = agent.wait_for("mouse_event", lambda m: m.button == MouseButton.MOUSE_BUTTON_RIGHT)
    assert (down.x, down.y, down.down) == (100, 50, True)
    page.locator("#scale").click()
    agent.clear()
    page.keyboard.type("hi")
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowLeft")
    expected_keys = [
        (code, down) for code in ("KeyH", "KeyI", "Enter", "ArrowLeft") for down in (True, False)
    ]
    agent.wait_for("key_event", lambda m: m.scan_code == table["ArrowLeft"][0] and not m.down)
    got = [(m.scan_code, m.extended, m.down) for m in agent.received("key_event")]
    assert got == [(*table[code], down) for code, down in expected_keys]
    assert table["ArrowLeft"][1] is True  # an extended key keeps its E0 flag

    # A key held down when the page loses focus is released on the remote machine.
    agent.clear()
    page.keyboard.down("Shift")
    shift_scan, _ = table["ShiftLeft"]
    agent.wait_for("key_event", lambda m: m.scan_code == shift_scan and m.down)
    page.locator("#chat-input").focus()
    agent.wait_for("key_event", lambda m: m.scan_code == shift_scan and not m.down)
    page.keyboard.up("Shift")

    # Ctrl+Alt+Del from the toolbar reaches the agent as the special key.
    page.locator("#cad").click()
    cad = agent.wait_for("special_key")
    assert cad.key == SpecialKey.SPECIAL_KEY_CTRL_ALT_DEL

    # Text mode sends characters, whatever the remote layout.
    page.locator("#text-mode").click()
    expect(page.locator("#text-mode")).to_have_attribute("aria-pressed", "true")
    page.locator("#screen").focus()
    page.keyboard.press("KeyQ")
    assert agent.wait_for("key_event", lambda m: m.text).text == "q"
    page.fill("#type-input", "Grüße")
    page.locator("#type-form button").click()
    agent.wait_for("key_event", lambda m: m.text == "Grüße")

    # Chat both ways; the relay names the sender, the page shows it as text.
    page.fill("#chat-input", "Hello, I am looking at your printer settings")
    page.locator("#chat-form button").click()
    sent = agent.wait_for("chat")
    assert (sent.text, sent.sender) == ("Hello, I am looking at your printer settings", "root")
    agent.chat(session_id, "<b>thanks</b>")
    expect(page.locator("#chat-log")).to_contain_text(
        "kiosk:<b>thanks</b>"
    )  # sender set by the relay
    assert page.locator("#chat-log b").count() == 0
    expect(page.locator("#stats")).to_contain_text("kbit/s")
    web.shot("viewer-chat")

    # Fullscreen locks the keyboard, so Esc (and Win, Alt+Tab) go to the remote machine.
    page.evaluate(
        """() => {
            window.__locks = [];
            const lock = navigator.keyboard.lock.bind(navigator.keyboard);
            navigator.keyboard.lock = (...a) => {
                window.__locks.push("lock");
                return lock(...a).then(() => window.__locks.push("locked"));
            };
            const unlock = navigator.keyboard.unlock.bind(navigator.keyboard);
            navigator.keyboard.unlock = () => { window.__locks.push("unlock"); unlock(); };
        }"""
    )
    page.locator("#text-mode").click()  # back to physical keys
    page.locator("#fullscreen").click()
    wait_js(page, "() => document.fullscreenElement !== null")
    wait_js(page, "() => window.__locks.join() === 'lock,locked'")
    expect(page.locator("#screen")).to_be_focused()
    agent.clear()
    page.keyboard.press("Escape")
    escape = agent.wait_for("key_event", lambda m: not m.down)
    assert (escape.scan_code, escape.extended) == tuple(table["Escape"])
    page.locator("#fullscreen").click()
    wait_js(page, "() => document.fullscreenElement === null")
    wait_js(page, "() => window.__locks.join() === 'lock,locked,unlock'")

    # Ending the session from the toolbar (two clicks) shows it plainly.
    page.locator("#end").click()
    page.locator("#end").click()
    expect(page.locator("#status")).to_have_text("Ended by a technician.")
    web.shot("viewer-ended")


def test_denied_consent_is_shown(web: Browsing, agent: ScriptedAgent) -> None:
    session_id = open_session(web, agent)
    expect(web.page.locator("#status")).to_have_text("Waiting for consent…")
    agent.grant_consent(session_id, granted=False)
    expect(web.page.locator("#status")).to_have_text(
        "Denied: the person at the machine declined.", timeout=5 * UNIT_MS
    )
    web.shot("viewer-denied")
    # Opening it again later says the same, not just "ended".
    web.page.reload()
    expect(web.page.locator("#status")).to_have_text("Denied: the person at the machine declined.")


def test_view_only_sends_no_input(web: Browsing, agent: ScriptedAgent) -> None:
    """A view-scoped viewer has no input handlers armed: clicks and keys go nowhere."""
    session_id = open_session(web, agent, scope="View")
    agent.grant_consent(session_id)
    agent.wait_for("keyframe_request")
    expect(web.page.locator("#status")).to_have_text("Connected · view only")
    for control in ("#cad", "#special", "#text-mode", "#clip-send"):
        expect(web.page.locator(control)).to_be_disabled()
    agent.show(screen_picture(WIDTH, HEIGHT), session_id)
    expect(web.page.locator("#overlay")).to_be_hidden()
    web.page.locator("#screen").click(position={"x": 10, "y": 10})
    web.page.keyboard.type("x")
    # A chat message after them: when it arrives, the input before it would have too.
    web.page.fill("#chat-input", "marker")
    web.page.locator("#chat-form button").click()
    agent.wait_for("chat")
    assert agent.received("mouse_event") == []
    assert agent.received("key_event") == []
    web.shot("viewer-view-only")

    # On a phone the side panel goes under the screen; nothing overflows sideways.
    web.page.set_viewport_size(PHONE)
    wait_js(web.page, "() => document.documentElement.scrollWidth <= window.innerWidth")
    box = web.page.locator("#screen").bounding_box()
    assert box is not None
    assert 0 < box["width"] <= PHONE["width"]
    expect(web.page.locator("#chat-input")).to_be_visible()
    web.shot("phone-viewer")


def cursor_pixel(web: Browsing, x: int, y: int) -> list[int]:
    return list(
        web.page.evaluate(
            """([x, y]) => Array.from(document.getElementById("cursor")
                .getContext("2d").getImageData(x, y, 1, 1).data)""",
            [x, y],
        )
    )


def test_displays_cursor_clipboard_and_agent_reconnect(
    web: Browsing, web_server: LiveServer, loop_thread: LoopThread
) -> None:
    page = web.page
    token = web_server.login("root")
    key = web_server.client(token=token).post("/api/agent-keys", json={"label": "two screens"})
    agent = ScriptedAgent.connect(
        loop_thread, web_server.url, key=key.json()["key"], width=WIDTH, height=HEIGHT, screens=2
    )
    try:
        session_id = open_session(web, agent)
        agent.grant_consent(session_id)
        agent.wait_for("keyframe_request")
        # The scripted agent answers no keyframe requests: show the picture once the page
        # has joined.
        expect(page.locator("#status")).to_have_text("Connected · you have control")
        agent.show(screen_picture(WIDTH, HEIGHT), session_id)
        expect(page.locator("#overlay")).to_be_hidden()

        # A display picker for a multi-monitor agent; choosing one asks the agent for it.
        picker = page.locator("#display")
        expect(picker).to_be_visible()
        expect(picker.locator("option")).to_have_text(
            ["Main (256\u00d7128) · primary", "Screen 2 (256\u00d7128)"]
        )
        picker.select_option("2")
        assert agent.wait_for("display_switch").display_id == 2

        # The remote cursor: its shape (BGRA, hotspot) drawn where the agent says.
        red = bytes([0, 0, 255, 255]) * 64
        agent.send(CursorShape(id=5, width=8, height=8, hotspot_x=2, hotspot_y=2, bgra=red))
        agent.send(CursorPosition(display_id=1, x=100, y=60, visible=True, shape_id=5))
        # The cursor canvas is the cursor's size cap, placed at position - hotspot.
        wait_js(
            page,
            """() => document.getElementById("cursor").getContext("2d")
                .getImageData(0, 0, 1, 1).data[3] === 255""",
        )
        placed = page.evaluate(
            """() => { const c = document.getElementById("cursor");
                return [c.width, c.height, c.dataset.left, c.dataset.top]; }"""
        )
        assert placed == [256, 256, "98", "58"]
        assert cursor_pixel(web, 0, 0) == [255, 0, 0, 255]
        assert cursor_pixel(web, 7, 7) == [255, 0, 0, 255]
        assert cursor_pixel(web, 8, 8) == [0, 0, 0, 0]
        agent.send(CursorPosition(display_id=1, x=100, y=60, visible=False, shape_id=5))
        wait_js(
            page,
            """() => document.getElementById("cursor").getContext("2d")
                .getImageData(0, 0, 1, 1).data[3] === 0""",
        )

        # Clipboard text both ways, on the user's action only.
        page.fill("#clip-out", "ticket #4711")
        page.locator("#clip-send").click()
        assert agent.wait_for("clipboard").text == "ticket #4711"
        agent.send(ClipboardText(text="C:\\Users\\anna\\report.docx"))
        expect(page.locator("#clip-in")).to_have_value("C:\\Users\\anna\\report.docx")

        # The agent drops: the page says it is reconnecting, and resumes when it is back.
        agent.close()
        expect(page.locator("#status")).to_have_text("Agent reconnecting…")
        web.shot("viewer-agent-reconnecting")
        agent = ScriptedAgent.connect(
            loop_thread, web_server.url, key=agent.key, width=WIDTH, height=HEIGHT
        )
        request = agent.wait_for("session_request", lambda m: m.session_id == session_id)
        assert not request.consent_required  # consent was given for this session already
        expect(page.locator("#status")).to_have_text("Connected · you have control")
    finally:
        agent.close()


def h264_frames(rgb: np.ndarray, count: int) -> list[bytes]:
    """``count`` access units (Annex B, constrained baseline) of a still picture."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = rgb.shape[1], rgb.shape[0]
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.options = {
        "profile": "baseline",
        "tune": "zerolatency",
        "preset": "ultrafast",
        # Say in the stream which matrix the pixels were converted with (PyAV's BT.601).
        "x264-params": "colormatrix=smpte170m:colorprim=smpte170m:transfer=smpte170m",
    }
    units = []
    for n in range(count):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = n
        units += [bytes(packet) for packet in encoder.encode(frame)]
    return units


def test_h264_is_announced_and_decoded_with_webcodecs(
    web: Browsing, web_server: LiveServer, loop_thread: LoopThread
) -> None:
    page = web.page
    token = web_server.login("root")
    key = web_server.client(token=token).post("/api/agent-keys", json={"label": "h264"})
    agent = ScriptedAgent.connect(
        loop_thread,
        web_server.url,
        key=key.json()["key"],
        width=WIDTH,
        height=HEIGHT,
        encoders=(Codec.CODEC_H264, Codec.CODEC_RAW_ZSTD),
    )
    try:
        session_id = open_session(web, agent)
        expect(page.locator("#status")).to_have_text("Waiting for consent…")
        # The page told the relay it decodes H.264 (WebCodecs) besides raw tiles, so the
        # relay settles on H.264 with this agent.
        assert page.locator("body").get_attribute("data-codecs") == "2,1"
        agent.wait_for("session_request", lambda m: list(m.codecs) == [Codec.CODEC_H264], timeout=5)
        agent.grant_consent(session_id)
        expect(page.locator("#status")).to_have_text("Connected · you have control")

        # Four flat quadrants: lossy, so each must come out close to its colour; a swapped
        # channel or a misplaced quadrant is off by ~170.
        colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (230, 230, 40)]
        rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        for i, colour in enumerate(colours):
            y, x = divmod(i, 2)
            rgb[y * 64 : (y + 1) * 64, x * 128 : (x + 1) * 128] = colour
        for n, unit in enumerate(h264_frames(rgb, 3)):
            agent.send(
                VideoFrame(
                    session_id=session_id,
                    display_id=1,
                    codec=Codec.CODEC_H264,
                    keyframe=n == 0,
                    width=WIDTH,
                    height=HEIGHT,
                    data=unit,
                    frame_number=n + 1,
                    timestamp_us=n * 33_333,
                )
            )
        expect(page.locator("#overlay")).to_be_hidden()
        drawn = canvas_pixels(web)
        assert drawn.shape == (HEIGHT, WIDTH, 4)
        for i, colour in enumerate(colours):
            y, x = divmod(i, 2)
            centre = drawn[y * 64 + 16 : y * 64 + 48, x * 128 + 32 : x * 128 + 96, :3]
            assert np.abs(centre.astype(int) - colour).max() <= 8, (colour, centre.mean((0, 1)))
        web.shot("viewer-h264")
    finally:
        agent.close()


def test_a_second_technician_takes_control(
    web: Browsing, browser: Browser, web_server: LiveServer, agent: ScriptedAgent
) -> None:
    """Two technicians in one session: one holds control at a time; the other sees who,
    gets a Take control button, and his input counts only once he has taken it."""
    admin = web_server.client(token=web_server.login("root"))
    tech_id = next(u["id"] for u in admin.get("/api/users").json() if u["username"] == "tech")
    granted = admin.put(
        f"/api/users/{tech_id}/client-access", json={"machine_ids": [agent.machine_id]}
    )
    assert granted.status_code == 200, granted.text
    session_id = open_session(web, agent)
    expect(web.page.locator("#status")).to_have_text("Waiting for consent…")
    agent.grant_consent(session_id)
    expect(web.page.locator("#status")).to_have_text("Connected · you have control")

    tech = open_page(browser, web_server.url)
    try:
        tech.login("tech")
        row = tech.page.locator(f"tr[data-machine-id='{agent.machine_id}']")
        row.get_by_role("button", name=re.compile(r"^Control ")).click()
        tech.page.wait_for_url(re.compile(f"/viewer/{session_id}"))  # joined the live one
        expect(tech.page.locator("#status")).to_have_text("Connected · root has control")
        expect(tech.page.locator("#cad")).to_be_disabled()
        tech.shot("viewer-someone-else-has-control")
        tech.page.locator("#take-control").click()
        expect(tech.page.locator("#status")).to_have_text("Connected · you have control")
        expect(tech.page.locator("#take-control")).to_be_hidden()
        expect(web.page.locator("#status")).to_have_text("Connected · tech has control")
        expect(web.page.locator("#take-control")).to_be_visible()

        agent.clear()
        web.page.locator("#screen").focus()
        web.page.keyboard.press("KeyR")  # root no longer has control: goes nowhere
        tech.page.locator("#screen").focus()
        tech.page.keyboard.press("KeyT")
        key_t = browser_table()["KeyT"][0]
        agent.wait_for("key_event", lambda m: m.scan_code == key_t and not m.down)
        assert [m.scan_code for m in agent.received("key_event")] == [key_t, key_t]
    finally:
        tech.context.close()
    assert not tech.log.errors

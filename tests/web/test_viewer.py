"""The technician's whole session in Chromium against the real relay, with a scripted agent
(the reference AgentClient): connect from the machines page, consent, the canvas shows
exactly the pixels the agent sent, keys arrive as the agent's scan codes, Ctrl+Alt+Del
from the toolbar, mouse in remote coordinates, chat both ways, held keys released on blur,
and the states a technician must see (waiting for consent, denied, ended)."""

from __future__ import annotations

import base64
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
    CloseCode,
    Codec,
    CursorPosition,
    CursorShape,
    Disconnect,
    MouseButton,
    SpecialKey,
    VideoFrame,
)
from guruconnect.protocol.end_reasons import END_REASON_TEXT, EndReason
from guruconnect.protocol.keys import browser_table
from guruconnect.server.web.routes import SPECIAL_KEY_MENU, STATIC_DIR
from tests.conftest import LiveServer
from tests.web.agents import ScriptedAgent, screen_picture
from tests.web.axe import assert_accessible
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
    """The screen canvas as an RGBA array, read in the page (base64: a JSON array of
    millions of numbers takes DevTools minutes on a loaded machine)."""
    data: dict[str, Any] = web.page.evaluate(
        """() => {
            const c = document.getElementById("screen");
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height);
            const bytes = new Uint8Array(d.data.buffer);
            let text = "";
            for (let i = 0; i < bytes.length; i += 0x8000) {
                text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
            }
            return {w: c.width, h: c.height, px: btoa(text)};
        }"""
    )
    pixels = np.frombuffer(base64.b64decode(data["px"]), dtype=np.uint8)
    return pixels.reshape(data["h"], data["w"], 4)


def start_viewer(web: Browsing, machine_id: str, scope: str) -> str:
    """Create a session the way the Machines list does (the page's own API call, cookie and
    CSRF) and open its viewer in this tab, as opened from the Machines list; return the
    session id. (Which tab the list opens it in is tested on its own.)"""
    session: dict[str, Any] = web.page.evaluate(
        """([machine, scope]) => import("/static/js/api.js")
            .then((m) => m.api("POST", `/api/machines/${machine}/sessions`, {scope}))""",
        [machine_id, scope],
    )
    web.goto(f"/viewer/{session['id']}?scope={scope}&from=machines")
    return str(session["id"])


def open_session(web: Browsing, agent: ScriptedAgent, scope: str = "Control") -> str:
    """Log in, connect to the agent's machine once it is online; return the session id."""
    web.login()
    row = web.page.locator(f"tr[data-machine-id='{agent.machine_id}']")
    expect(row.locator(".badge")).to_have_text("Online")
    return start_viewer(web, agent.machine_id, scope.lower())


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
    expect(page.locator("#end")).to_have_text("End for everyone?")
    page.locator("#end").click()
    expect(page.locator("#status")).to_have_text("Ended by a technician.")
    # Over is over: End says so and cannot be pressed, chat cannot send.
    expect(page.locator("#end")).to_have_text("Session ended")
    expect(page.locator("#end")).to_be_disabled()
    expect(page.locator("#chat-send")).to_be_disabled()
    expect(page.locator("#chat-input")).to_be_disabled()
    expect(page.locator("#ask-again")).to_be_hidden()  # a technician ended it: nobody to ask
    web.shot("viewer-ended")


def test_denied_consent_is_shown_and_can_be_asked_again(
    web: Browsing, agent: ScriptedAgent
) -> None:
    """While the prompt is up the viewer counts down the relay's consent timeout; after a
    denial it offers "Ask again", which asks the person at the machine in a new session."""
    page = web.page
    session_id = open_session(web, agent)
    expect(page.locator("#status")).to_have_text("Waiting for consent…")
    countdown = page.locator("#countdown")
    expect(countdown).to_be_visible()
    # The test settings' consent timeout, counted down in whole seconds.
    expect(countdown).to_have_text(
        re.compile(r"The prompt on the remote machine times out in \d+ s\.")
    )
    seconds = int(countdown.get_attribute("data-seconds") or "0")
    constants = page.evaluate("() => fetch('/web/constants.json').then((r) => r.json())")
    assert 0 < seconds <= constants["consentTimeoutSeconds"]
    web.shot("viewer-consent-countdown")
    agent.grant_consent(session_id, granted=False)
    expect(page.locator("#status")).to_have_text(
        "Denied: the person at the machine declined.", timeout=5 * UNIT_MS
    )
    expect(countdown).to_be_hidden()
    expect(page.locator("#end")).to_be_disabled()
    ask = page.get_by_role("button", name="Ask again")
    expect(ask).to_be_visible()
    web.shot("viewer-denied")
    # Opening it again later says the same, not just "ended", and still offers to ask.
    page.reload()
    expect(page.locator("#status")).to_have_text("Denied: the person at the machine declined.")
    ask.click()
    request = agent.wait_for("session_request", lambda m: m.session_id != session_id)
    assert request.consent_required
    expect(page).to_have_url(
        re.compile(f"/viewer/{request.session_id}\\?scope=control&from=machines")
    )
    expect(page.locator("#status")).to_have_text("Waiting for consent…")
    agent.grant_consent(request.session_id)
    expect(page.locator("#status")).to_have_text("Connected · you have control")


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
        assert start_viewer(tech, agent.machine_id, "control") == session_id  # the live one
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


def test_constants_are_served_from_python(web_server: LiveServer) -> None:
    """/web/constants.json is built from guruconnect.protocol, never copied by hand: close
    codes, end reasons and special keys equal Python's, and the consent countdown uses the
    server's own timeout."""
    response = web_server.client().get("/web/constants.json")
    assert response.status_code == 200, response.text
    served = response.json()
    assert served["closeCodes"] == {code.name: int(code) for code in CloseCode}
    assert served["endReasons"] == {str(r): text for r, text in END_REASON_TEXT.items()}
    assert set(served["endReasons"]) == {str(r) for r in EndReason}
    assert [(k["name"], k["value"]) for k in served["specialKeys"]] == [
        (name, SpecialKey.Value(name)) for name, _ in SPECIAL_KEY_MENU
    ]
    assert served["consentTimeoutSeconds"] == web_server.settings.consent_timeout_seconds
    # The viewer's modules hold none of these values themselves.
    viewer = STATIC_DIR / "js" / "viewer"
    for module in viewer.glob("*.js"):
        text = module.read_text()
        assert not re.search(r"\b(4410|4010|4004|4001)\b", text), f"a close code in {module.name}"
        assert "consent_denied:" not in text, f"end reasons copied into {module.name}"
        assert "// @ts-check" in text.split("\n", 1)[0], f"{module.name} is not type-checked"


@pytest.fixture
def wide_agent(web_server: LiveServer, loop_thread: LoopThread) -> Iterator[ScriptedAgent]:
    """An agent whose screen is wider than the browser window."""
    token = web_server.login("root")
    key = web_server.client(token=token).post("/api/agent-keys", json={"label": "wide"})
    scripted = ScriptedAgent.connect(
        loop_thread, web_server.url, key=key.json()["key"], width=WIDE[0], height=WIDE[1]
    )
    yield scripted
    scripted.close()


WIDE = (1920, 256)


def test_viewer_fixes_on_a_wide_screen(web: Browsing, wide_agent: ScriptedAgent) -> None:
    """Tiles decode in a worker (and the canvas still holds the exact pixels, readable by
    the page); 1:1 reaches the left edge of a screen wider than the window; Tab stays with
    the remote machine and Ctrl+Alt+Shift+Q leaves for the chat; a clean agent stop says
    so instead of "reconnecting"; axe finds nothing serious, connected or ended."""
    page = web.page
    agent = wide_agent
    session_id = open_session(web, agent)
    agent.grant_consent(session_id)
    expect(page.locator("#status")).to_have_text("Connected · you have control")
    picture = screen_picture(*WIDE)
    agent.show(picture, session_id)
    expect(page.locator("#overlay")).to_be_hidden()
    # Decoded off the page's thread, drawn on the visible 2D canvas.
    canvas = page.locator("#screen")
    expect(canvas).to_have_attribute("data-decoder", "worker")
    tiles = (WIDE[0] // 64) * (WIDE[1] // 64)
    assert int(canvas.get_attribute("data-worker-tiles") or "0") == tiles
    assert np.array_equal(canvas_pixels(web), picture[..., [2, 1, 0, 3]])
    assert_accessible(page)
    web.shot("viewer-wide-fit")

    # 1:1: the canvas is wider than its scroll box, and both edges can be scrolled to.
    page.locator("#scale").click()
    expect(page.locator("#scale")).to_have_text("1:1")
    edges = """() => {
        const wrap = document.getElementById("screen-wrap");
        const box = wrap.getBoundingClientRect();
        wrap.scrollLeft = 0;
        const atStart = document.getElementById("screen").getBoundingClientRect().left - box.left;
        wrap.scrollLeft = wrap.scrollWidth;
        const atEnd = box.right - document.getElementById("screen").getBoundingClientRect().right;
        return [atStart, atEnd, wrap.scrollWidth, wrap.clientWidth];
    }"""
    at_start, at_end, scroll_width, client_width = page.evaluate(edges)
    assert scroll_width >= WIDE[0] > client_width
    assert at_start >= 0, "the left of the remote screen cannot be scrolled to"
    assert at_end >= 0 or abs(at_end) < 1, "the right of the remote screen cannot be reached"
    web.shot("viewer-wide-one-to-one", full_page=False)

    # Tab goes to the remote machine; the documented chord leaves keyboard capture.
    hint = page.locator("#keyboard-hint")
    expect(hint).to_contain_text("Ctrl+Alt+Shift+Q")
    assert canvas.get_attribute("aria-describedby") == "keyboard-hint"
    canvas.focus()
    agent.clear()
    page.keyboard.press("Tab")
    tab_scan = browser_table()["Tab"][0]
    agent.wait_for("key_event", lambda m: m.scan_code == tab_scan and not m.down)
    expect(canvas).to_be_focused()
    page.keyboard.press("Control+Alt+Shift+KeyQ")
    expect(page.locator("#chat-input")).to_be_focused()
    # Every modifier pressed on the way was released on the remote machine; Q never went.
    shift_scan = browser_table()["ShiftLeft"][0]
    agent.wait_for("key_event", lambda m: m.scan_code == shift_scan and not m.down)
    q_scan = browser_table()["KeyQ"][0]
    keys = [m for m in agent.received("key_event") if m.scan_code != tab_scan]
    assert keys, "the chord's modifiers should have gone down (and up) remotely"
    assert all(m.scan_code != q_scan for m in keys)
    downs = {m.scan_code for m in keys if m.down}
    ups = {m.scan_code for m in keys if not m.down}
    assert downs == ups, "a modifier is left held down on the remote machine"

    # The agent stops on purpose (it says so before closing): ended, not "reconnecting".
    agent.send(Disconnect(reason="the agent is stopping"))
    expect(page.locator("#status")).to_have_text(
        "Ended: the agent was stopped on the remote machine."
    )
    expect(page.locator("#end")).to_be_disabled()
    expect(page.locator("#chat-send")).to_be_disabled()
    assert_accessible(page)
    web.shot("viewer-agent-stopped")
    page.set_viewport_size(PHONE)
    web.shot("phone-viewer-ended")


def test_end_confirmation_judges_clicks_by_when_they_happened(web: Browsing) -> None:
    """On a busy page the label's reset timer can run before a second click made in time is
    handled: the click's own time decides, so it still ends the session."""
    web.login()
    result = web.page.evaluate(
        """() => import("/static/js/viewer/toolbar.js").then(({ EndConfirm }) => {
            const slow = new EndConfirm(4000);
            const late = new EndConfirm(4000);
            return [
                slow.press(1000), slow.expired(5100), slow.press(4900),
                late.press(1000), late.press(5100), late.press(6000),
            ];
        })"""
    )
    assert result == ["armed", True, "confirmed", "armed", "armed", "confirmed"]


def test_machines_list_opens_the_viewer_in_its_own_tab(web: Browsing, agent: ScriptedAgent) -> None:
    """open.js (what the Machines list calls) opens the viewer in a new tab without an
    opener; the list stays; the viewer's back link goes to the Machines list."""
    web.login()
    session: dict[str, Any] = web.page.evaluate(
        """(machine) => import("/static/js/api.js")
            .then((m) => m.api("POST", `/api/machines/${machine}/sessions`, {scope: "control"}))""",
        agent.machine_id,
    )
    with web.context.expect_page() as opened:
        how = web.page.evaluate(
            """(id) => import("/static/js/viewer/open.js")
                .then((m) => m.openViewer(id, "control", "machines"))""",
            session["id"],
        )
    assert how == "tab"
    viewer = opened.value
    viewer.wait_for_load_state()
    assert f"/viewer/{session['id']}?scope=control&from=machines" in viewer.url
    assert web.page.url.endswith("/machines")  # the list is still there
    assert viewer.evaluate("() => window.opener") is None
    back = viewer.locator("#back")
    expect(back).to_have_text("← Machines")
    assert back.get_attribute("href") == "/machines"
    expect(viewer.locator("#status")).to_have_text("Waiting for consent…")
    viewer.close()

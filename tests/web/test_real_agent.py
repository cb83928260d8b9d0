"""The real agent on Xvfb, seen and driven from Chromium through the real relay: log in,
connect, the person at the machine allows it (xdotool on the consent window), the canvas
shows what the X server shows, typing in the viewer types into a Tk field there,
Ctrl+Alt+Del from the toolbar arrives as the key chord, and chat goes both ways."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from guruconnect.agent.desktop_ui import CHAT_TITLE, CONSENT_TITLE
from tests.agent.conftest import SCREEN, AgentProcess, App, XServer
from tests.agent.test_e2e import desktop_like, write_ppm
from tests.conftest import LiveServer
from tests.web.conftest import UNIT_MS, Browsing
from tests.web.test_viewer import start_viewer

pytestmark = pytest.mark.timeout(120)

#: Where the Tk text field sits on the agent's screen.
FIELD = (600, 100, 400, 200)
#: A screen region no window covers: compared pixel for pixel (raw) or nearly (H.264).
REGION = (slice(440, 600), slice(40, 296))  # rows, columns


@pytest.fixture
def desktop(xserver: XServer, tmp_path: Path) -> Iterator[App]:
    """A known picture over the whole screen and a text field on it."""
    rgb = desktop_like(*SCREEN, seed=7)
    xserver.app("picture.py", write_ppm(tmp_path / "bg.ppm", rgb), 0, 0)
    yield xserver.app("textfield.py", "field", *FIELD)
    xserver.stop_children()


def canvas_region(web: Browsing) -> np.ndarray | None:
    """The region of the screen canvas, or None while the canvas is not the screen's size."""
    rows, cols = REGION
    data: dict[str, Any] = web.page.evaluate(
        """([x, y, w, h]) => {
            const c = document.getElementById("screen");
            return {w: c.width, h: c.height,
                    px: Array.from(c.getContext("2d").getImageData(x, y, w, h).data)};
        }""",
        [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start],
    )
    if (data["w"], data["h"]) != SCREEN:
        return None
    shape = (rows.stop - rows.start, cols.stop - cols.start, 4)
    return np.array(data["px"], dtype=np.uint8).reshape(shape)


@pytest.mark.parametrize("codec", ["raw", "h264"])
def test_real_agent_from_the_browser(
    codec: str,
    web: Browsing,
    web_server: LiveServer,
    xserver: XServer,
    desktop: App,
    start_agent: Callable[..., AgentProcess],
) -> None:
    page = web.page
    token = web_server.login("root")
    key = web_server.client(token=token).post("/api/agent-keys", json={"label": f"xvfb {codec}"})
    key = key.json()
    extra = ("--h264-encoders", "none") if codec == "raw" else ()
    agent = start_agent(web_server.url, key=key["key"], extra=extra)

    web.login()
    row = page.locator("tr", has_text=f"xvfb {codec}")
    expect(row.locator(".badge")).to_have_text("Online", timeout=20 * UNIT_MS)
    start_viewer(web, str(row.get_attribute("data-machine-id")), "control")
    expect(page.locator("#status")).to_have_text("Waiting for consent…")

    # The person at the machine allows it, with the keyboard, as a person would.
    xserver.answer(CONSENT_TITLE, "alt+a")
    expect(page.locator("#status")).to_have_text(
        "Connected · you have control", timeout=10 * UNIT_MS
    )

    # The canvas shows what the X server shows (read independently, with mss).
    rows, cols = REGION
    expected = xserver.screenshot()[rows, cols][..., [2, 1, 0, 3]]
    expected[..., 3] = 255

    def close_enough(drawn: np.ndarray | None) -> bool:
        if drawn is None:
            return False
        if codec == "raw":  # lossless: bit for bit
            return bool(np.array_equal(drawn, expected))
        error = np.abs(drawn.astype(int) - expected.astype(int))[..., :3]
        return bool(error.mean() < 3 and np.percentile(error, 99) <= 16)

    drawn = None
    for _ in range(100):
        drawn = canvas_region(web)
        if close_enough(drawn):
            break
        page.wait_for_timeout(100)
    assert drawn is not None, "no picture of the screen's size arrived"
    error = np.abs(drawn.astype(int) - expected.astype(int))[..., :3]
    assert close_enough(drawn), (error.mean(), np.percentile(error, 99), agent.log()[-2000:])
    assert page.locator("body").get_attribute("data-codecs") == "2,1"
    web.shot(f"real-agent-connected-{codec}", full_page=False)

    # Click into the field through the scaled canvas, then type on the page's keyboard.
    box = page.locator("#screen").bounding_box()
    assert box is not None
    x, y = 700, 200
    page.mouse.click(
        box["x"] + x * box["width"] / SCREEN[0], box["y"] + y * box["height"] / SCREEN[1]
    )
    click = desktop.wait_for(lambda line: line.startswith("click "))
    cx, cy, button = map(int, click.split()[1:])
    assert abs(cx - x) <= 2
    assert abs(cy - y) <= 2
    assert button == 1
    # Physical keys, as a person presses them (Playwright's type() would not press Shift).
    page.keyboard.down("Shift")
    page.keyboard.press("KeyH")
    page.keyboard.up("Shift")
    page.keyboard.type("ello 42")
    desktop.wait_for(lambda line: line == "text 'Hello 42'")

    # Ctrl+Alt+Del from the toolbar arrives as the chord.
    page.locator("#cad").click()
    for keysym in ("Control_L", "Alt_L", "Delete"):
        desktop.wait_for(lambda line, k=keysym: line == f"key {k}")

    # Chat: the agent opens its chat window with the message; its answer comes back.
    page.fill("#chat-input", "Hi, this is support")
    page.locator("#chat-form button").click()
    chat = xserver.window(CHAT_TITLE)
    # Click into its answer line (bottom left of the window), type, press Return.
    geometry = xserver.run("xdotool", "getwindowgeometry", "--shell", chat)
    height = int(re.search(r"HEIGHT=(\d+)", geometry).group(1))  # type: ignore[union-attr]
    xserver.run("xdotool", "mousemove", "--window", chat, "30", str(height - 22), "click", "1")
    xserver.run("xdotool", "type", "--delay", "20", "thank you")
    xserver.run("xdotool", "key", "Return")
    expect(page.locator("#chat-log")).to_contain_text("thank you", timeout=10 * UNIT_MS)
    # The machine's user may share the technician's name; only the page's own line is "me".
    expect(page.locator("#chat-log .line.me")).to_have_text("root:Hi, this is support")
    web.shot(f"real-agent-chat-{codec}", full_page=False)
    assert agent.process.poll() is None, agent.log()[-2000:]

    # Ctrl+C on the agent is a clean stop: it tells the relay, which ends the session at
    # once (no "Agent reconnecting…" for a reconnect that will never come).
    agent.process.send_signal(signal.SIGINT)
    expect(page.locator("#status")).to_have_text(
        "Ended: the agent was stopped on the remote machine.", timeout=10 * UNIT_MS
    )
    assert agent.wait() == 0, agent.log()[-2000:]
    expect(page.locator("#end")).to_be_disabled()

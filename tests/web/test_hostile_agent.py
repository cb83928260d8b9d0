"""A hostile agent against the technician's tab (issue 15, item 8): one small message must
not take the tab to gigabytes or stall it.

The server here has the relay's own agent caps (display list, cursor shape, chat rate) set
out of the way, so each case reaches the page and the viewer's defence is tested alone;
tests/relay/test_agent_limits.py tests the relay's half. Each test measures the tab:
memory as the resident size of Chromium's processes (the canvas backing stores are not in
the JavaScript heap) or the page's JavaScript heap through CDP, responsiveness as the longest
gap an in-page timer saw. Each bound is far from both the figure with the defence (tens of
MB, tens of ms) and the figure without it (hundreds of MB to GB, seconds).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from guruconnect.protocol import (
    ChatMessage,
    Codec,
    CursorPosition,
    CursorShape,
    Display,
    DisplayList,
    Tile,
    VideoFrame,
)
from tests.conftest import Database, LiveServer, make_settings
from tests.timing import scaled
from tests.web.agents import ScriptedAgent, screen_picture
from tests.web.conftest import Browsing, LoopThread, off_loop, open_page, wait_js
from tests.web.test_viewer import start_viewer

WIDTH, HEIGHT = 256, 128
MB = 1024 * 1024


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The relay's agent caps out of the way: only the viewer defends."""
    path = tmp_path_factory.mktemp("hostile") / "guruconnect.db"
    database = Database("sqlite", f"sqlite+aiosqlite:///{path}")
    settings = make_settings(
        database,
        agent_max_displays=10**6,
        display_max_side=10**6,
        cursor_max_side=10**4,
        agent_chat_per_second=10**6,
    )
    server = LiveServer(settings, database).start()
    off_loop(server.create_user, "root", is_admin=True)
    yield server
    server.stop()


@pytest.fixture
def tab(browser: Browser, hostile_server: LiveServer) -> Iterator[Browsing]:
    browsing = open_page(browser, hostile_server.url)
    yield browsing
    browsing.context.close()
    assert not browsing.log.errors, f"JavaScript errors: {browsing.log.errors}"


def new_agent(server: LiveServer, loop: LoopThread, **kw: Any) -> ScriptedAgent:
    token = server.login("root")
    key = server.client(token=token).post("/api/agent-keys", json={"label": kw.pop("label", "")})
    assert key.status_code == 201, key.text
    return ScriptedAgent.connect(loop, server.url, key=key.json()["key"], **kw)


@pytest.fixture
def agent(hostile_server: LiveServer, loop_thread: LoopThread) -> Iterator[ScriptedAgent]:
    scripted = new_agent(hostile_server, loop_thread, width=WIDTH, height=HEIGHT, label="pc")
    yield scripted
    scripted.close()


def session_on_screen(tab: Browsing, agent: ScriptedAgent) -> str:
    """Log in, connect, consent, first picture on screen; the gap recorder running."""
    page = tab.page
    tab.login()
    row = page.locator(f"tr[data-machine-id='{agent.machine_id}']")
    expect(row.locator(".badge")).to_have_text("Online")
    session_id = start_viewer(tab, agent.machine_id, "control")
    agent.grant_consent(session_id)
    agent.wait_for("keyframe_request")
    expect(page.locator("#status")).to_have_text("Connected · you have control")
    agent.show(screen_picture(WIDTH, HEIGHT), session_id)
    expect(page.locator("#overlay")).to_be_hidden()
    start_gap_recorder(page)
    return session_id


def start_gap_recorder(page: Page) -> None:
    """An in-page timer every 10 ms recording the longest gap between two ticks: how long
    the page's main thread was busy at a stretch."""
    page.evaluate(
        """() => {
            window.__gap = 0;
            let last = performance.now();
            setInterval(() => {
                const now = performance.now();
                window.__gap = Math.max(window.__gap, now - last);
                last = now;
            }, 10);
        }"""
    )


def longest_gap_s(page: Page) -> float:
    return float(page.evaluate("() => window.__gap")) / 1000


def chromium_rss() -> int:
    """Resident bytes of every Chromium process this test run started."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total = 0
    todo = list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if "chrom" not in name:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total += int(match.group(1)) * 1024
    return total


class PeakRss:
    """The highest Chromium RSS seen (sampled every 20 ms) while the block runs, above the
    figure at its start."""

    def __init__(self) -> None:
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, chromium_rss())

    def __enter__(self) -> PeakRss:
        self.base = self.peak = chromium_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, chromium_rss())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def js_heap(page: Page) -> int:
    """The page's JavaScript heap in use after a full garbage collection (CDP)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("HeapProfiler.collectGarbage")
        cdp.send("Performance.enable")
        metrics = cdp.send("Performance.getMetrics")["metrics"]
    finally:
        cdp.detach()
    return int(next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize"))


def report(name: str, **figures: float) -> None:
    """The measured figures, for the log (-s) and the report."""
    text = " ".join(f"{k}={v:.1f}" for k, v in figures.items())
    print(f"\n[hostile] {name}: {text} load={os.getloadavg()[0]:.1f}")


def toast_says(page: Page, pattern: str) -> None:
    expect(page.locator("#toast")).to_contain_text(re.compile(pattern), timeout=scaled(15) * 1000)


def frame(
    session_id: str, width: int, height: int, tiles: list[Tile], keyframe: bool = True
) -> VideoFrame:
    return VideoFrame(
        session_id=session_id,
        display_id=1,
        codec=Codec.CODEC_RAW_ZSTD,
        keyframe=keyframe,
        width=width,
        height=height,
        tiles=tiles,
        frame_number=2,
    )


# -- zstd bombs ---------------------------------------------------------------------------

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 128 * 1024


def rle_blocks(count: int) -> bytes:
    """``count`` RLE blocks of 128 KiB each (4 bytes apiece), the last one marked last."""
    out = bytearray()
    for n in range(count):
        header = (1 if n == count - 1 else 0) | (1 << 1) | (BLOCK << 3)
        out += header.to_bytes(3, "little") + b"\x00"
    return bytes(out)


def declared_bomb(size: int) -> bytes:
    """One zstd frame declaring (and holding) ``size`` bytes of zeros in RLE blocks."""
    header = bytes([0xA0]) + size.to_bytes(4, "little")  # single segment, 4-byte size
    return ZSTD_MAGIC + header + rle_blocks(size // BLOCK)


def streaming_bomb(size: int) -> bytes:
    """One zstd frame with no declared size (as a streaming compressor writes it)."""
    header = bytes([0x00, 7 << 3])  # no content size; a 128 KiB window
    return ZSTD_MAGIC + header + rle_blocks(size // BLOCK)


def test_bomb_frames_are_real_zstd() -> None:
    """The bombs below are valid zstd (so the tests measure decompression, not a parse
    error): a small one decompresses to what it declares."""
    import zstandard

    assert zstandard.ZstdDecompressor().decompress(declared_bomb(4 * BLOCK)) == bytes(4 * BLOCK)
    reader = zstandard.ZstdDecompressor().stream_reader(streaming_bomb(4 * BLOCK))
    assert reader.read(8 * BLOCK) == bytes(4 * BLOCK)


def test_zstd_bomb_tiles_are_refused_without_allocating(
    tab: Browsing, agent: ScriptedAgent
) -> None:
    """A 64x64 tile whose data declares 1 GiB (32 KiB of RLE blocks), and one that streams
    256 MiB with no declared size (8 KiB): both refused before decompressing. Without the
    bounded decompression the tab grows by about 1 GB and 0.5 GB."""
    page = tab.page
    session_id = session_on_screen(tab, agent)
    declared = declared_bomb(1024 * MB)
    streaming = streaming_bomb(256 * MB)
    assert len(declared) < 40 * 1024
    assert len(streaming) < 9 * 1024
    with PeakRss() as rss:
        agent.send(
            frame(
                session_id,
                WIDTH,
                HEIGHT,
                [Tile(x=0, y=0, width=64, height=64, data=declared)],
                False,
            )
        )
        toast_says(page, "refused|expected|cannot draw")
        page.evaluate("() => document.getElementById('toast').textContent = ''")
        agent.send(
            frame(
                session_id,
                WIDTH,
                HEIGHT,
                [Tile(x=64, y=0, width=64, height=64, data=streaming)],
                False,
            )
        )
        toast_says(page, "refused|expected|cannot draw")
    report("zstd bombs", rss_growth_mb=rss.growth / MB, stall_s=longest_gap_s(page))
    assert rss.growth < 200 * MB, f"the tab grew by {rss.growth / MB:.0f} MB"


# -- screen size, cursor --------------------------------------------------------------------


def test_huge_keyframe_is_refused_and_cursor_canvas_is_small(
    tab: Browsing, agent: ScriptedAgent
) -> None:
    """A keyframe declaring a 12288x12288 screen from one tile: refused (over the viewer's
    limit and the displays the agent declared); the cursor canvas is the cursor cap, not the
    screen. Without the caps both canvases take the size: about +3.5 GB."""
    page = tab.page
    session_id = session_on_screen(tab, agent)
    tile = Tile(x=0, y=0, width=64, height=64, data=b"")
    with PeakRss() as rss:
        agent.send(frame(session_id, 12288, 12288, [tile]))
        toast_says(page, "refused|expected|cannot draw")
        page.evaluate("() => document.getElementById('toast').textContent = ''")
        # Within the hard limit but bigger than the declared 256x128 display.
        agent.send(frame(session_id, 4096, 4096, [tile]))
        toast_says(page, "refused|expected|cannot draw")
    sizes = page.evaluate(
        """() => ["screen", "cursor"].map((id) => {
            const c = document.getElementById(id); return [c.width, c.height]; })"""
    )
    report("huge keyframe", rss_growth_mb=rss.growth / MB, stall_s=longest_gap_s(page))
    assert rss.growth < 300 * MB, f"the tab grew by {rss.growth / MB:.0f} MB"
    assert sizes == [[WIDTH, HEIGHT], [256, 256]]


def test_cursor_shape_cache_is_bounded(tab: Browsing, agent: ScriptedAgent) -> None:
    """400 different 256x256 cursor shapes: the viewer keeps the last 32. Without eviction
    every one stays (+90 MB here; the outside run saw +437 MB)."""
    page = tab.page
    session_on_screen(tab, agent)
    pixels = bytes([0, 0, 255, 255]) * (256 * 256)
    base = chromium_rss()

    async def flood() -> None:
        for n in range(1, 401):
            await agent.client.send(CursorShape(id=n, width=256, height=256, bgra=pixels))
        await agent.client.send(
            CursorPosition(display_id=1, x=10, y=10, visible=True, shape_id=400)
        )

    agent.loop.run(flood(), timeout=scaled(60))
    # Drawn: at the cursor canvas's corner (or, without the cap, at 10,10 of a screen-sized one).
    wait_js(
        page,
        """() => { const c = document.getElementById("cursor").getContext("2d");
            return c.getImageData(0, 0, 1, 1).data[3] === 255
                || c.getImageData(10, 10, 1, 1).data[3] === 255; }""",
        int(scaled(60) * 1000),
    )
    js_heap(page)  # collect the garbage the messages left
    kept = page.evaluate("() => Number(document.getElementById('cursor').dataset.shapes)")
    growth = chromium_rss() - base
    report("cursor shapes", rss_growth_mb=growth / MB, kept=kept, stall_s=longest_gap_s(page))
    assert growth < 45 * MB, f"the tab kept {growth / MB:.0f} MB more"
    assert kept <= 32


# -- display list, tiles ------------------------------------------------------------------


def test_display_list_is_capped(tab: Browsing, agent: ScriptedAgent) -> None:
    """A display list of 100k entries is refused before decoding, with a visible note.
    Without the cap: 100k <option>s, a stall of seconds and hundreds of MB."""
    page = tab.page
    session_on_screen(tab, agent)
    base = chromium_rss()
    displays = [Display(id=n, width=64, height=64, name="d") for n in range(1, 100_001)]
    agent.send(DisplayList(displays=displays))
    # Refused with a note, or (without the cap) applied.
    wait_js(
        page,
        """() => document.getElementById("display").options.length > 16
            || /displays/.test(document.getElementById("toast").textContent)""",
        int(scaled(60) * 1000),
    )
    options = page.locator("#display option").count()
    js_heap(page)  # collect the garbage
    growth = chromium_rss() - base
    stall = longest_gap_s(page)
    report("display list", rss_growth_mb=growth / MB, options=options, stall_s=stall)
    assert stall < scaled(1.5), f"the page stalled for {stall:.1f} s"
    assert growth < 100 * MB, f"the tab kept {growth / MB:.0f} MB more"
    assert options <= 16


def test_tile_count_is_bounded_by_the_screen(tab: Browsing, agent: ScriptedAgent) -> None:
    """Three frames of 4 million empty tiles for a 256x128 screen (8 tiles): refused on the
    count before a tile object is built. Without it: +270 MB or more, and a long stall."""
    page = tab.page
    session_id = session_on_screen(tab, agent)
    header = frame(session_id, WIDTH, HEIGHT, [])
    body = header.SerializeToString() + b"\x42\x00" * 4_000_000  # field 8, empty Tile
    # Envelope field 20 (video_frame), length-delimited.
    data = b"\xa2\x01" + _varint(len(body)) + body
    with PeakRss() as rss:
        for _ in range(3):
            page.evaluate("() => document.getElementById('toast').textContent = ''")
            agent.loop.run(agent.client.send_raw(data))
            toast_says(page, "tiles|cannot draw")
    stall = longest_gap_s(page)
    report("4M tiles", rss_growth_mb=rss.growth / MB, stall_s=stall)
    assert rss.growth < 150 * MB, f"the tab grew by {rss.growth / MB:.0f} MB"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# -- chat -----------------------------------------------------------------------------------


def flood_chat(agent: ScriptedAgent, session_id: str, count: int, length: int) -> None:
    async def flood() -> None:
        for n in range(count):
            text = f"{n:06d}" + "x" * (length - 6)
            await agent.client.send(ChatMessage(session_id=session_id, sender="x", text=text))

    agent.loop.run(flood(), timeout=scaled(120))


def chat_works(page: Page, agent: ScriptedAgent, last: str, timeout: float) -> float:
    """Wait until the flood's last line is shown, then chat from the technician; the
    seconds until both are in the log."""
    started = time.monotonic()
    wait_js(
        page,
        f"""() => (document.getElementById("chat-log").lastElementChild || {{}})
            .textContent?.includes("{last}")""",
        int(timeout * 1000),
    )
    page.fill("#chat-input", "still here")
    page.locator("#chat-form button[type=submit]").click()
    wait_js(
        page,
        """() => (document.getElementById("chat-log").lastElementChild || {})
            .textContent?.includes("still here")""",
        int(timeout * 1000),
    )
    return time.monotonic() - started


def test_chat_flood_does_not_stall_or_bloat_the_tab(tab: Browsing, agent: ScriptedAgent) -> None:
    """4k chat lines of 200 characters, then 400 of 4096, at once: the log keeps the last
    500, adds them once a frame with one scroll, and stays usable. Without that: a layout
    per line (a stall of many seconds) and every line kept (+1 GB)."""
    page = tab.page
    session_id = session_on_screen(tab, agent)
    base = chromium_rss()
    flood_chat(agent, session_id, 4_000, 200)
    flood_chat(agent, session_id, 400, 4096)
    took = chat_works(page, agent, "000399", scaled(100))
    js_heap(page)
    growth = chromium_rss() - base
    stall = longest_gap_s(page)
    lines = page.locator("#chat-log .line").count()
    report("chat flood", rss_growth_mb=growth / MB, stall_s=stall, usable_after_s=took, lines=lines)
    assert stall < scaled(3), f"the page stalled for {stall:.1f} s"
    assert growth < 250 * MB, f"the tab kept {growth / MB:.0f} MB more"
    assert lines <= 500


# -- lost canvas ----------------------------------------------------------------------------


def test_lost_canvas_asks_for_a_keyframe(tab: Browsing, agent: ScriptedAgent) -> None:
    """A screen canvas whose context was lost and restored (memory pressure, a huge frame)
    is blank: the viewer asks the agent for a whole picture."""
    page = tab.page
    session_on_screen(tab, agent)
    agent.clear()
    page.evaluate(
        """() => {
            const c = document.getElementById("screen");
            c.dispatchEvent(new Event("contextlost"));
            c.dispatchEvent(new Event("contextrestored"));
        }"""
    )
    agent.wait_for("keyframe_request", timeout=scaled(10))


# -- the machines table ---------------------------------------------------------------------


def test_long_and_right_to_left_hostnames_stay_in_their_cell(
    tab: Browsing, hostile_server: LiveServer, loop_thread: LoopThread
) -> None:
    """A 255-character hostname does not push Control off-screen; a right-to-left override
    in a name cannot reorder the text around it; the title shows the whole name."""
    long_name = "a" * 255
    spoof = "\u202eexe.cod-eciovni"  # shows as "invoice-doc.exe" without isolation
    agents = [
        new_agent(hostile_server, loop_thread, hostname=long_name),
        new_agent(hostile_server, loop_thread, hostname=spoof),
    ]
    try:
        page = tab.page
        tab.login()
        viewport = page.viewport_size
        assert viewport is not None
        for scripted, name in zip(agents, (long_name, spoof), strict=True):
            row = page.locator(f"tr[data-machine-id='{scripted.machine_id}']")
            expect(row.locator(".badge")).to_have_text("Online")
            button = row.get_by_role("button", name=re.compile(r"^Control "))
            box = button.bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= viewport["width"], "Control is off-screen"
            shown = row.locator("td[data-label='Hostname'] bdi")
            assert shown.get_attribute("title") == name
            assert shown.get_attribute("dir") == "auto"
            assert shown.evaluate("(e) => getComputedStyle(e).unicodeBidi") == "isolate"
        tab.shot("machines-hostile-hostnames")
    finally:
        for scripted in agents:
            scripted.close()

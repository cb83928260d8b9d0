"""H.264 from the agent's encoder, decoded by Chromium's WebCodecs: colours survive.

Without the VUI saying which matrix and range, Chromium showed a flat (200, 0, 0) from
libx264 as (217, 19, 0); with BT.709 signalled, its software path still showed
(0, 0, 200) as (0, 0, 190), which is why the agent encodes BT.601. The page is served
from 127.0.0.1 (WebCodecs needs a secure context), decodes one keyframe with
``VideoDecoder``, draws it on a canvas and reads the pixels back.
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from guruconnect.agent.encode.h264 import H264Encoder
from tests.conftest import IN_CI

PAGE = b"""<!doctype html><meta charset="utf-8"><canvas id="c" width="96" height="64"></canvas>
<script type="module">
const data = new Uint8Array(await (await fetch("stream.h264")).arrayBuffer());
const canvas = document.getElementById("c");
const context = canvas.getContext("2d", { willReadFrequently: true });
const decoded = new Promise((resolve, reject) => {
  const decoder = new VideoDecoder({
    output: (frame) => { context.drawImage(frame, 0, 0); frame.close(); resolve(); },
    error: reject,
  });
  decoder.configure({ codec: "avc1.42E01F", optimizeForLatency: true });
  decoder.decode(new EncodedVideoChunk({ type: "key", timestamp: 0, data }));
  decoder.flush().catch(reject);
});
try {
  await decoded;
  window.result = Array.from(context.getImageData(48, 32, 1, 1).data.slice(0, 3));
} catch (error) {
  window.result = String(error);
}
</script>"""


class Stream:
    data = b""


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = (PAGE, "text/html") if self.path == "/" else (Stream.data, "video/h264")
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which("chromium") is None and not IN_CI:
        pytest.skip("chromium not installed (make system installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.mark.parametrize(
    "rgb", [(200, 0, 0), (0, 200, 0), (0, 0, 200), (128, 128, 128), (250, 250, 250), (20, 20, 20)]
)
def test_chromium_shows_the_colours_the_agent_encoded(
    rgb: tuple[int, int, int], page_server: str, browser: Any
) -> None:
    frame = np.zeros((64, 96, 4), np.uint8)
    frame[..., :3] = rgb[::-1]  # BGRA
    frame[..., 3] = 255
    picture = H264Encoder("libx264", 96, 64).encode(frame, keyframe=True)
    assert picture.keyframe
    Stream.data = picture.data
    page = browser.new_page()
    try:
        page.goto(page_server)
        page.wait_for_function("window.result !== undefined", timeout=15_000)
        result = page.evaluate("window.result")
    finally:
        page.close()
    assert isinstance(result, list), result
    assert max(abs(a - b) for a, b in zip(result, rgb, strict=True)) <= 3, (result, rgb)

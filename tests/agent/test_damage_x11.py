"""X DAMAGE on a real X server: another client draws, the agent's capture sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from Xlib import X
from Xlib import display as xdisplay

from guruconnect.agent.capture.cursor import NoCursor
from guruconnect.agent.capture.mss_backend import MssCapturer
from guruconnect.agent.stream import CaptureWorker, Streamer
from guruconnect.client.screen import TileDecoder
from guruconnect.protocol import decode, payload
from tests.agent.conftest import XServer
from tests.timing import async_wait_until


@pytest.fixture
def painter(xserver: XServer) -> Iterator[Any]:
    """A separate X client that draws on the root window."""
    client = xdisplay.Display(xserver.display)
    yield client
    client.close()


def fill(client: Any, x: int, y: int, width: int, height: int, rgb: int) -> None:
    root = client.screen().root
    gc = root.create_gc(foreground=rgb, subwindow_mode=X.IncludeInferiors)
    root.fill_rectangle(gc, x, y, width, height)
    gc.free()
    client.sync()


@pytest.mark.asyncio
async def test_a_drawing_reaches_the_capture_through_damage(xserver: XServer, painter: Any) -> None:
    worker = CaptureWorker(lambda: MssCapturer(xserver.display), NoCursor)
    decoder = TileDecoder()

    async def send(data: bytes) -> None:
        name, message = payload(decode(data))
        if name == "video_frame":
            decoder.apply(message)

    # No whole-frame check and no keyframe for an hour: after the first frame, only
    # damage can bring a drawing to the capture.
    streamer = Streamer(worker, send, "damage", fps=30.0, keyframe_interval=3600, full_check=3600)
    task = asyncio.create_task(streamer.run())
    try:
        await async_wait_until(lambda: asyncio.sleep(0, decoder.frames), 10, "the first frame")
        assert worker.damage_fd is not None, "Xvfb has DAMAGE: the agent must use it"

        def shows(x: int, y: int, bgr: tuple[int, int, int]) -> Any:
            async def check() -> bool:
                picture = decoder.picture
                return picture.size > 0 and tuple(int(v) for v in picture[y, x, :3]) == bgr

            return check

        fill(painter, 300, 200, 50, 40, 0xFF8040)
        await async_wait_until(shows(320, 220, (0x40, 0x80, 0xFF)), 10, "the drawing")
        fill(painter, 900, 700, 8, 8, 0x10E0A0)
        await async_wait_until(shows(903, 703, (0xA0, 0xE0, 0x10)), 10, "the second drawing")
        assert streamer.stats.partial >= 2
        assert streamer.stats.keyframes == 1
        # Only the drawn tiles travelled after the first frame, and the picture is exact.
        screen = np.asarray(decoder.picture[:, :, :3])
        assert (screen[200:240, 300:350] == (0x40, 0x80, 0xFF)).all()
        assert (screen[700:708, 900:908] == (0xA0, 0xE0, 0x10)).all()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        worker.close()

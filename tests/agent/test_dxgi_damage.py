"""The Windows damage source off Windows: DXGI rectangles to damage, and the source's
bookkeeping against a stand-in for dxcam (the real duplication has never run here)."""

from __future__ import annotations

from typing import Any

import numpy as np

from guruconnect.agent.capture import DisplayInfo
from guruconnect.agent.capture.damage import DamageTracker, Rect
from guruconnect.agent.capture.dxgi import DxgiDamage, damage_rects
from guruconnect.agent.encode.tiles import TileRect

LEFT = DisplayInfo(1, 0, 0, 1920, 1080, primary=True)
RIGHT = DisplayInfo(2, 1920, 0, 1280, 1024)


def test_dirty_and_move_rectangles_become_damage_on_the_virtual_desktop() -> None:
    dirty = [(10, 20, 110, 70), (5, 5, 5, 9)]  # the second is empty
    moves = [(0, 100, 0, 80, 300, 280)]  # a scroll up by 20 pixels
    assert damage_rects(dirty, moves, (1920, 0)) == [
        Rect(1920, 80, 300, 200),  # where the pixels went
        Rect(1920, 100, 300, 200),  # where they came from
        Rect(1930, 20, 100, 50),
    ]


class Outputs:
    """Stands in for dxcam: per output, the next frame and its rectangles."""

    def __init__(self) -> None:
        self.next: dict[int, tuple[Any, Any]] = {}

    def acquire(self, display: DisplayInfo) -> tuple[Any, Any]:
        return self.next.pop(display.id, (None, None))


def test_a_read_acquires_every_output_and_keeps_the_frames_for_the_capture() -> None:
    outputs = Outputs()
    source = DxgiDamage(lambda: [LEFT, RIGHT], outputs.acquire)
    assert source.fileno() is None
    assert source.read() == []  # nothing new anywhere: nothing to capture

    frame = np.zeros((1024, 1280, 4), np.uint8)
    outputs.next[2] = (frame, ([(0, 0, 64, 64)], []))
    rects = source.read()
    assert rects == [Rect(1920, 0, 64, 64)]
    assert source.fresh == {2: frame}

    tracker = DamageTracker(1280, 1024, origin=(1920, 0), period=0.0)
    tracker.take(0.0)
    tracker.add(rects)
    assert tracker.take(0.1) == [TileRect(0, 0, 1, 1)]


def test_rectangles_that_could_not_be_read_mean_unknown_damage() -> None:
    outputs = Outputs()
    source = DxgiDamage(lambda: [LEFT], outputs.acquire)
    outputs.next[1] = (np.zeros((1080, 1920, 4), np.uint8), None)
    assert source.read() is None
    source.close()
    assert source.fresh == {}

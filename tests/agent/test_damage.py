"""The damage tracker without a screen: rectangles in, blocks of tiles and times out."""

from __future__ import annotations

import math

from guruconnect.agent.capture import damage
from guruconnect.agent.capture.damage import DamageTracker, Rect
from guruconnect.agent.encode.tiles import TILE, TileRect

PERIOD = 1 / 30


def tracker(width: int = 1920, height: int = 1080, **kw: object) -> DamageTracker:
    t = DamageTracker(width, height, period=PERIOD, full_check=1.0, **kw)  # type: ignore[arg-type]
    assert t.take(0.0) is None  # the first capture is always whole
    return t


def test_the_first_capture_is_whole_and_a_still_screen_waits_for_the_safety_net() -> None:
    t = DamageTracker(640, 480, period=PERIOD)
    assert t.pending
    assert t.due(5.0) == 5.0
    assert t.take(5.0) is None
    assert not t.pending
    assert t.due(5.1) == 6.0  # nothing drawn: the next look is the whole-frame check
    assert t.take(6.0) is None


def test_damage_is_captured_at_once_after_a_quiet_period() -> None:
    t = tracker()
    t.add([Rect(10, 10, 5, 5)])
    assert t.due(0.5) == 0.5
    assert t.take(0.5) == [TileRect(0, 0, 1, 1)]


def test_damage_within_a_frame_period_waits_for_the_cap_and_is_coalesced() -> None:
    t = tracker()
    t.add([Rect(0, 0, 1, 1)])
    t.take(0.5)
    t.add([Rect(100, 0, 1, 1)])
    t.add([Rect(130, 0, 1, 1)])
    assert math.isclose(t.due(0.51), 0.5 + PERIOD)
    assert t.take(0.5 + PERIOD) == [TileRect(0, 1, 1, 3)]  # both in one capture


def test_rectangles_map_to_the_tiles_they_touch_relative_to_the_display() -> None:
    t = tracker(1000, 500, origin=(1920, 0))  # a second monitor right of the first
    t.add([Rect(1920 + 63, 64, 2, 1)])  # straddles tile columns 0 and 1
    t.add([Rect(0, 0, 1920, 1080)])  # the other monitor: not ours
    t.add([Rect(1920 + 990, 490, 500, 500)])  # sticks out: clipped to the edge tile
    assert t.take(0.5) == [TileRect(1, 0, 2, 2), TileRect(7, 15, 8, 16)]


def test_near_tiles_in_a_band_are_one_block_far_ones_separate() -> None:
    t = tracker()
    t.add([Rect(0, 0, 1, 1), Rect(3 * TILE, TILE, 1, 1), Rect(20 * TILE, 0, 1, 1)])
    assert t.take(0.5) == [TileRect(0, 0, 2, 4), TileRect(0, 20, 2, 21)]


def test_many_scattered_blocks_merge_into_bands_then_one() -> None:
    t = tracker()
    t.add([Rect(c * 4 * TILE, r * 2 * TILE, 1, 1) for r in range(2) for c in range(8)])
    assert t.take(0.5) == [TileRect(0, 0, 1, 29), TileRect(2, 0, 3, 29)]
    tall = tracker(1920, 2000)
    tall.add([Rect(c * TILE, r * 2 * TILE, 1, 1) for r in range(13) for c in (0, 3)])
    assert tall.take(0.5) == [TileRect(0, 0, 25, 4)]


def test_damage_over_most_of_the_screen_or_of_unknown_extent_is_a_whole_capture() -> None:
    t = tracker()
    t.add([Rect(0, 0, 1920, 800)])
    assert t.take(0.5) is None
    t.add_all()
    assert t.pending
    assert t.take(0.6) is None
    assert not t.pending


def test_the_safety_net_runs_even_while_damage_keeps_coming() -> None:
    t = tracker()
    now = 0.0
    wholes = 0
    while now < 3.5:
        now += PERIOD
        t.add([Rect(0, 0, 10, 10)])
        assert t.due(now) <= now + 1e-9
        wholes += t.take(now) is None
    assert wholes == 3


def test_runs_join_across_small_gaps() -> None:
    flags = [True, False, False, True, False, False, False, False, True]
    assert damage._runs(flags, 2) == [(0, 4), (8, 9)]
    assert damage._runs([False, False], 2) == []

"""What changed on the screen and when: damage rectangles in, captures planned out.

A platform source (X DAMAGE on X11, DXGI dirty and move rectangles on Windows) reports
rectangles that were drawn to. ``DamageTracker`` holds no I/O: it turns those rectangles
into the blocks of tiles the next capture has to read and compare, and says when that
capture should start:

- as soon as damage arrives, but never sooner than one frame period after the last
  capture (the frame-rate cap is a ceiling, not a tick: drawing within a period is
  coalesced into one capture);
- with no damage, a whole-frame check every ``full_check`` seconds anyway, a safety net
  for drawing a source does not report (a compositor's overlay, a lost event).

A capture of the whole frame is planned (``None`` blocks) for the safety net, when damage
is unknown (``add_all``: an overflow, a resize, a source that cannot tell) and when the
damage covers most of the screen (one grab beats many).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from guruconnect.agent.encode.tiles import TILE, TileRect

#: Damaged tiles further apart than this in a row band are captured as separate blocks.
MERGE_GAP = 2
#: More blocks than this and they are merged into one per row band, then into one.
MAX_BLOCKS = 12
#: Damage over this share of the tiles is captured as a whole frame.
WHOLE_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class Rect:
    """A damaged rectangle in pixels, in the source's coordinates (the X root window)."""

    x: int
    y: int
    width: int
    height: int


class DamageSource(Protocol):
    """Where a capture backend reports drawing (X11 DAMAGE, DXGI dirty rectangles)."""

    def fileno(self) -> int | None:
        """A descriptor that becomes readable when damage may be waiting, or None when
        the source can only be read at each capture (the caller then polls)."""
        ...

    def read(self) -> list[Rect] | None:
        """Without blocking: the rectangles drawn to since the last read; None when that
        is unknown and everything must be taken as changed."""
        ...

    def close(self) -> None: ...


class DamageTracker:
    """Damage of one display of a fixed size in, blocks of tiles and capture times out."""

    def __init__(
        self,
        width: int,
        height: int,
        *,
        origin: tuple[int, int] = (0, 0),
        period: float,
        full_check: float = 1.0,
    ) -> None:
        self.width, self.height = width, height
        self.origin = origin
        self.period = period
        self.full_check = full_check
        self.rows, self.cols = -(-height // TILE), -(-width // TILE)
        self._mask = np.zeros((self.rows, self.cols), np.bool_)
        self._all = True  # nothing captured yet: the first capture is whole
        self._last_capture = -math.inf
        self._last_whole = -math.inf

    @property
    def pending(self) -> bool:
        """Damage was reported since the last capture."""
        return self._all or bool(self._mask.any())

    def add(self, rects: Iterable[Rect]) -> None:
        """Damage in the source's coordinates; what falls outside the display is dropped."""
        ox, oy = self.origin
        mask = self._mask
        for rect in rects:
            x0, y0 = max(rect.x - ox, 0), max(rect.y - oy, 0)
            x1 = min(rect.x - ox + rect.width, self.width)
            y1 = min(rect.y - oy + rect.height, self.height)
            if x0 < x1 and y0 < y1:
                mask[y0 // TILE : -(-y1 // TILE), x0 // TILE : -(-x1 // TILE)] = True

    def add_all(self) -> None:
        """Damage of unknown extent: the next capture is whole."""
        self._all = True

    def due(self, now: float) -> float:
        """When the next capture should start (``now`` or earlier: at once)."""
        ceiling = self._last_capture + self.period
        return max(ceiling, now if self.pending else self._last_whole + self.full_check)

    def take(self, now: float) -> list[TileRect] | None:
        """Plan the capture that starts ``now`` and forget the damage it covers: the
        blocks of tiles to read and compare, or None for the whole frame."""
        whole = self._all or now >= self._last_whole + self.full_check
        blocks = None if whole else self.blocks()
        if blocks is not None and sum(b.tiles for b in blocks) > WHOLE_SHARE * self._mask.size:
            blocks = None
        self._mask[:] = False
        self._all = False
        self._last_capture = now
        if blocks is None:
            self._last_whole = now
        return blocks

    def blocks(self) -> list[TileRect]:
        """The damaged tiles as few rectangular blocks (a block may hold a few undamaged
        tiles: one grab of a rectangle is cheaper than several)."""
        mask = self._mask
        bands = _runs(mask.any(axis=1), 0)
        blocks = [
            TileRect(r0, c0, r1, c1)
            for r0, r1 in bands
            for c0, c1 in _runs(mask[r0:r1].any(axis=0), MERGE_GAP)
        ]
        if len(blocks) > MAX_BLOCKS:
            blocks = []
            for r0, r1 in bands:
                cols = np.flatnonzero(mask[r0:r1].any(axis=0))
                blocks.append(TileRect(r0, int(cols[0]), r1, int(cols[-1]) + 1))
        if len(blocks) > MAX_BLOCKS:
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            blocks = [TileRect(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)]
        return blocks


def _runs(flags: object, gap: int) -> list[tuple[int, int]]:
    """[start, end) of each run of True, runs at most ``gap`` apart joined."""
    index = np.flatnonzero(np.asarray(flags, np.bool_))
    if not len(index):
        return []
    breaks = np.flatnonzero(np.diff(index) > gap + 1)
    starts = [int(index[0]), *(int(index[b + 1]) for b in breaks)]
    ends = [*(int(index[b]) + 1 for b in breaks), int(index[-1]) + 1]
    return list(zip(starts, ends, strict=True))

"""Windows: DXGI Desktop Duplication through dxcam (a GPU-side copy, cheap when idle).

Needs Windows 8+ and an interactive desktop; a service in session 0 has no desktop to
duplicate, which is why the Windows service runs the agent in the user's session (see
docs/agent.md). The monitor geometry comes from mss (GDI), which lists monitors in the same
order as DXGI outputs; the pixels come from dxcam. ``open_capturer`` falls back to mss
altogether when dxcam cannot start.

Damage: DXGI hands out, with each new desktop frame, the rectangles that changed (dirty
rectangles) and the ones that were moved (move rectangles: a scroll, a dragged window).
``DxgiDamage`` is the same ``DamageSource`` interface as X11's: its ``read`` acquires the
next frame of every output in use (dxcam's grab), collects those rectangles while the
frame is held, and the capture that follows copies from that frame instead of acquiring
another. DXGI has no descriptor to wait on, so the streamer ticks at the frame-rate cap;
damage spares it the grab, the diff and the encode of what did not change.

NEVER RUN: this module has not run on Windows (the project's CI and development machines
are Linux). What runs everywhere and is unit-tested: ``damage_rects`` (DXGI rectangles to
damage) and ``DxgiDamage`` against a stand-in for the frame source. Reading the rectangles
through dxcam's duplicator (``_frame_rects``) is written against the documented
IDXGIOutputDuplication API and dxcam's internals, and is the part most likely to need a fix
on a real machine; when it fails the source reports "unknown" and every capture is whole,
which is today's behaviour.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import structlog

from guruconnect.agent.capture import CaptureError, DisplayInfo, Frame
from guruconnect.agent.capture.damage import DamageSource, Rect
from guruconnect.agent.capture.mss_backend import MssCapturer

log = structlog.get_logger(__name__)

#: (left, top, right, bottom) of a changed area, relative to the output.
DirtyRect = tuple[int, int, int, int]
#: (source x, source y, left, top, right, bottom): pixels moved from the source point.
MoveRect = tuple[int, int, int, int, int, int]


def damage_rects(
    dirty: Iterable[DirtyRect], moves: Iterable[MoveRect], origin: tuple[int, int]
) -> list[Rect]:
    """DXGI's rectangles of one output as damage on the virtual desktop (``origin`` is
    where the output sits on it). A move damages its destination; its source is reported
    as a dirty rectangle by DXGI when it was uncovered, but is added too, as the cost of a
    few more tiles compared is nothing against a stale area."""
    ox, oy = origin
    rects = []
    for sx, sy, left, top, right, bottom in moves:
        width, height = right - left, bottom - top
        rects.append(Rect(ox + left, oy + top, width, height))
        rects.append(Rect(ox + sx, oy + sy, width, height))
    for left, top, right, bottom in dirty:
        rects.append(Rect(ox + left, oy + top, right - left, bottom - top))
    return [r for r in rects if r.width > 0 and r.height > 0]


#: Acquire the next frame of one output: (the frame or None when nothing changed, and the
#: output's dirty and move rectangles or None when they could not be read).
Acquire = Callable[
    [DisplayInfo], tuple[Frame | None, tuple[list[DirtyRect], list[MoveRect]] | None]
]


class DxgiDamage:
    """``DamageSource`` over DXGI: reading acquires the outputs' next frames."""

    def __init__(self, displays: Callable[[], list[DisplayInfo]], acquire: Acquire) -> None:
        self._displays = displays
        self._acquire = acquire
        #: Frames acquired by the last read, by display id, for the capture that follows.
        self.fresh: dict[int, Frame] = {}

    def fileno(self) -> int | None:
        return None  # DXGI has nothing to wait on: the streamer ticks

    def read(self) -> list[Rect] | None:
        rects: list[Rect] = []
        known = True
        self.fresh.clear()
        for display in self._displays():
            frame, found = self._acquire(display)
            if frame is None:
                continue  # no new frame: nothing changed on this output
            self.fresh[display.id] = frame
            if found is None:
                known = False
            else:
                rects.extend(damage_rects(*found, (display.x, display.y)))
        return rects if known else None

    def close(self) -> None:
        self.fresh.clear()


class _Rect(ctypes.Structure):
    _fields_ = (
        ("left", ctypes.c_long),
        ("top", ctypes.c_long),
        ("right", ctypes.c_long),
        ("bottom", ctypes.c_long),
    )


class _MoveRect(ctypes.Structure):
    _fields_ = (("x", ctypes.c_long), ("y", ctypes.c_long), ("rect", _Rect))


def _frame_rects(duplication: Any) -> tuple[list[DirtyRect], list[MoveRect]]:  # pragma: no cover
    """Windows, while a frame is acquired: IDXGIOutputDuplication's move and dirty
    rectangles (each call asked again with a bigger buffer when DXGI says so)."""
    moves: list[MoveRect] = []
    dirty: list[DirtyRect] = []
    needed = ctypes.c_uint(0)
    size = 64
    while True:
        buffer = (_MoveRect * size)()
        try:
            duplication.GetFrameMoveRects(ctypes.sizeof(buffer), buffer, ctypes.byref(needed))
            break
        except OSError:
            if needed.value <= ctypes.sizeof(buffer):
                raise
            size = needed.value // ctypes.sizeof(_MoveRect) + 1
    for m in buffer[: needed.value // ctypes.sizeof(_MoveRect)]:
        moves.append((m.x, m.y, m.rect.left, m.rect.top, m.rect.right, m.rect.bottom))
    size = 64
    while True:
        rects = (_Rect * size)()
        try:
            duplication.GetFrameDirtyRects(ctypes.sizeof(rects), rects, ctypes.byref(needed))
            break
        except OSError:
            if needed.value <= ctypes.sizeof(rects):
                raise
            size = needed.value // ctypes.sizeof(_Rect) + 1
    for r in rects[: needed.value // ctypes.sizeof(_Rect)]:
        dirty.append((r.left, r.top, r.right, r.bottom))
    return dirty, moves


class DxgiCapturer:  # pragma: no cover - needs Windows and a GPU output
    name = "dxgi"

    def __init__(self) -> None:
        import dxcam  # type: ignore[import-not-found, unused-ignore]  # Windows only

        self._dxcam: Any = dxcam
        self._geometry = MssCapturer()
        self._cameras: dict[int, Any] = {}
        self._last: dict[int, Frame] = {}
        self._rects: dict[int, tuple[list[DirtyRect], list[MoveRect]] | None] = {}
        self._damage: DxgiDamage | None = None
        self._camera(self.displays()[0])  # fail now, not at the first session

    def _camera(self, display: DisplayInfo) -> Any:
        camera = self._cameras.get(display.id)
        if camera is None:
            camera = self._dxcam.create(output_idx=display.id - 1, output_color="BGRA")
            if camera is None:
                raise CaptureError(f"dxcam cannot open output {display.id - 1}")
            self._hook(display.id, camera)
            self._cameras[display.id] = camera
        return camera

    def _hook(self, display_id: int, camera: Any) -> None:
        """Read the rectangles while dxcam holds the frame: just before it releases it."""
        duplicator = getattr(camera, "_duplicator", None)
        release = getattr(duplicator, "release_frame", None)
        if duplicator is None or release is None:
            return

        def release_frame() -> Any:
            try:
                self._rects[display_id] = _frame_rects(duplicator.duplicator)
            except Exception as exc:
                log.debug("no dxgi rectangles", error=str(exc))
                self._rects[display_id] = None
            return release()

        duplicator.release_frame = release_frame

    def _acquire(
        self, display: DisplayInfo
    ) -> tuple[Frame | None, tuple[list[DirtyRect], list[MoveRect]] | None]:
        if display.id not in self._cameras:
            return None, None  # not captured yet: the first capture is whole anyway
        self._rects[display.id] = None
        frame = self._cameras[display.id].grab()
        if frame is None:
            return None, None
        self._last[display.id] = frame
        return frame, self._rects.get(display.id)

    def damage(self) -> DamageSource | None:
        self._damage = DxgiDamage(self.displays, self._acquire)
        return self._damage

    def displays(self) -> list[DisplayInfo]:
        return self._geometry.displays()

    def bounds(self) -> DisplayInfo:
        return self._geometry.bounds()

    def _frame(self, display: DisplayInfo) -> Frame | None:
        fresh = self._damage.fresh.get(display.id) if self._damage is not None else None
        if fresh is not None:
            return fresh  # acquired by the damage read just before this capture
        frame: Frame | None = self._camera(display).grab()
        if frame is None:  # dxcam returns None when nothing changed since the last grab
            return self._last.get(display.id)
        self._last[display.id] = frame
        return frame

    def grab(self, display: DisplayInfo, into: Frame) -> None:
        if display.id not in {d.id for d in self.displays()}:
            # The virtual desktop spans outputs; DXGI duplicates one output at a time.
            self._geometry.grab(display, into)
            return
        frame = self._frame(display)
        if frame is None:
            self._geometry.grab(display, into)
            return
        np.copyto(into, frame)

    def grab_area(
        self, display: DisplayInfo, x: int, y: int, width: int, height: int, into: Frame
    ) -> None:
        frame = self._frame(display) if display.id in self._cameras else None
        if frame is None:
            self._geometry.grab_area(display, x, y, width, height, into)
            return
        np.copyto(into, frame[y : y + height, x : x + width])

    def close(self) -> None:
        for camera in self._cameras.values():
            camera.release()
        self._geometry.close()

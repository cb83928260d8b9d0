"""Screen capture behind one interface; one backend per platform.

``open_capturer()`` picks the best backend that works here: DXGI (dxcam) on Windows, with
GDI (mss) as the fallback; mss on X11 and macOS.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import structlog

from guruconnect.protocol import Display

log = structlog.get_logger(__name__)

Frame = npt.NDArray[np.uint8]

#: The id of the pseudo-display that covers every monitor at once.
ALL_DISPLAYS = 0


@dataclass(frozen=True, slots=True)
class DisplayInfo:
    id: int
    x: int
    y: int
    width: int
    height: int
    primary: bool = False
    name: str = ""

    def message(self) -> Display:
        return Display(
            id=self.id,
            x=self.x,
            y=self.y,
            width=self.width,
            height=self.height,
            primary=self.primary,
            name=self.name,
        )

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.width and self.y <= y < self.y + self.height


class CaptureError(RuntimeError):
    """The screen cannot be read (display gone, access denied, backend broken)."""


class Capturer(Protocol):
    name: str

    def displays(self) -> list[DisplayInfo]:
        """The monitors, ids from 1; the first is the primary one."""
        ...

    def bounds(self) -> DisplayInfo:
        """The whole desktop (every monitor), with id ALL_DISPLAYS."""
        ...

    def grab(self, display: DisplayInfo, into: Frame) -> None:
        """Copy the display's pixels (BGRA) into ``into`` (height x width x 4)."""
        ...

    def close(self) -> None: ...


def open_capturer(display_name: str | None = None) -> Capturer:
    if sys.platform == "win32":  # pragma: no cover - needs Windows
        from guruconnect.agent.capture.dxgi import DxgiCapturer

        try:
            return DxgiCapturer()
        except Exception as exc:
            log.warning("dxgi capture unavailable, using gdi", error=str(exc))
    from guruconnect.agent.capture.mss_backend import MssCapturer

    return MssCapturer(display_name)

"""Capture through mss: X11 (XShmGetImage, XGetImage fallback), Windows GDI, macOS."""

from __future__ import annotations

import sys
from typing import Any

import mss
import numpy as np
import structlog

from guruconnect.agent.capture import ALL_DISPLAYS, CaptureError, DisplayInfo, Frame
from guruconnect.agent.capture.damage import DamageSource

log = structlog.get_logger(__name__)


class MssCapturer:
    name = "mss"

    def __init__(self, display_name: str | None = None) -> None:
        self._display_name = display_name
        kwargs: dict[str, Any] = {}
        if sys.platform.startswith("linux") and display_name:
            kwargs["display"] = display_name
        try:
            # mss 10 renamed the factory (the old name warns); 9 has only the old one.
            self._mss = getattr(mss, "MSS", mss.mss)(**kwargs)
        except Exception as exc:
            raise CaptureError(f"cannot open the screen: {exc}") from exc

    def _monitor(self, display: DisplayInfo) -> dict[str, int]:
        return {
            "left": display.x,
            "top": display.y,
            "width": display.width,
            "height": display.height,
        }

    def displays(self) -> list[DisplayInfo]:
        monitors = self._mss.monitors[1:] or self._mss.monitors[:1]
        return [
            DisplayInfo(
                id=index,
                x=int(m["left"]),
                y=int(m["top"]),
                width=int(m["width"]),
                height=int(m["height"]),
                primary=index == 1,
                name=f"Display {index}",
            )
            for index, m in enumerate(monitors, start=1)
        ]

    def bounds(self) -> DisplayInfo:
        m = self._mss.monitors[0]
        return DisplayInfo(
            ALL_DISPLAYS, int(m["left"]), int(m["top"]), int(m["width"]), int(m["height"])
        )

    def grab(self, display: DisplayInfo, into: Frame) -> None:
        try:
            shot = self._mss.grab(self._monitor(display))
        except Exception as exc:
            raise CaptureError(f"capture failed: {exc}") from exc
        if (shot.width, shot.height) != (display.width, display.height):
            raise CaptureError("the display changed size")
        pixels = np.frombuffer(shot.raw, np.uint8).reshape(display.height, display.width, 4)
        np.copyto(into, pixels)

    def grab_area(
        self, display: DisplayInfo, x: int, y: int, width: int, height: int, into: Frame
    ) -> None:
        """Copy part of the display (``x``, ``y`` relative to it) into ``into``."""
        area = {"left": display.x + x, "top": display.y + y, "width": width, "height": height}
        try:
            shot = self._mss.grab(area)
        except Exception as exc:
            raise CaptureError(f"capture failed: {exc}") from exc
        if (shot.width, shot.height) != (width, height):
            raise CaptureError("the display changed size")
        np.copyto(into, np.frombuffer(shot.raw, np.uint8).reshape(height, width, 4))

    def damage(self) -> DamageSource | None:
        """X DAMAGE where the server has it; None elsewhere (the caller polls)."""
        if not sys.platform.startswith("linux"):
            return None
        from guruconnect.agent.capture.x11_damage import X11Damage

        try:
            return X11Damage(self._display_name)
        except CaptureError as exc:
            log.info("no damage reports, polling the screen", reason=str(exc))
            return None

    def close(self) -> None:
        self._mss.close()

"""Windows: DXGI Desktop Duplication through dxcam (a GPU-side copy, cheap when idle).

Needs Windows 8+ and an interactive desktop; a service in session 0 has no desktop to
duplicate, which is why the Windows service runs the agent in the user's session (see
docs/agent.md). The monitor geometry comes from mss (GDI), which lists monitors in the same
order as DXGI outputs; the pixels come from dxcam. ``open_capturer`` falls back to mss
altogether when dxcam cannot start.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from guruconnect.agent.capture import CaptureError, DisplayInfo, Frame
from guruconnect.agent.capture.mss_backend import MssCapturer


class DxgiCapturer:  # pragma: no cover - needs Windows and a GPU output
    name = "dxgi"

    def __init__(self) -> None:
        import dxcam  # type: ignore[import-not-found, unused-ignore]  # Windows only

        self._dxcam: Any = dxcam
        self._geometry = MssCapturer()
        self._cameras: dict[int, Any] = {}
        self._last: dict[int, Frame] = {}
        self._camera(self.displays()[0])  # fail now, not at the first session

    def _camera(self, display: DisplayInfo) -> Any:
        camera = self._cameras.get(display.id)
        if camera is None:
            camera = self._dxcam.create(output_idx=display.id - 1, output_color="BGRA")
            if camera is None:
                raise CaptureError(f"dxcam cannot open output {display.id - 1}")
            self._cameras[display.id] = camera
        return camera

    def displays(self) -> list[DisplayInfo]:
        return self._geometry.displays()

    def bounds(self) -> DisplayInfo:
        return self._geometry.bounds()

    def grab(self, display: DisplayInfo, into: Frame) -> None:
        if display.id not in {d.id for d in self.displays()}:
            # The virtual desktop spans outputs; DXGI duplicates one output at a time.
            self._geometry.grab(display, into)
            return
        frame = self._camera(display).grab()
        if frame is None:  # dxcam returns None when nothing changed since the last grab
            last = self._last.get(display.id)
            if last is None:
                self._geometry.grab(display, into)
                return
            frame = last
        np.copyto(into, frame)
        self._last[display.id] = frame

    def close(self) -> None:
        for camera in self._cameras.values():
            camera.release()
        self._geometry.close()

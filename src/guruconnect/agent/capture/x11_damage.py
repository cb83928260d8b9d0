"""X11: the DAMAGE extension on the root window, read on its own connection.

The damage object reports raw rectangles (``DamageReportRawRectangles``): one event per
drawing request, with the area it touched, and no region on the server to subtract. That
keeps the bookkeeping race-free across connections: an event that was read means the
drawing was done before any grab sent after it, so the grab sees it; drawing after a grab
sends a new event, which wakes the agent again. (The region-based levels need a
DamageSubtract and an XFixes region fetch per capture, a round trip each, and drawing
between the subtract and the grab on the capture connection could be lost.)

The connection is used by one thread only (the capture worker); the event loop only
watches its socket for readability.
"""

from __future__ import annotations

from typing import Any

from guruconnect.agent.capture import CaptureError
from guruconnect.agent.capture.damage import Rect

#: More events than this in one read and the damage is taken as "everything": parsing
#: them would cost more than a whole-frame capture.
MAX_EVENTS = 4096


class X11Damage:
    """A ``DamageSource`` for the whole X screen."""

    def __init__(self, display_name: str | None = None) -> None:
        from Xlib import display as xdisplay
        from Xlib.ext import damage

        try:
            self._display: Any = xdisplay.Display(display_name)
        except Exception as exc:
            raise CaptureError(f"cannot open the display for damage: {exc}") from exc
        extension = self._display.query_extension("DAMAGE")
        if extension is None or not self._display.has_extension("DAMAGE"):
            self._display.close()
            raise CaptureError("the X server has no DAMAGE extension")
        # By event code, not class: python-xlib may load its extension modules twice.
        self._event_code = int(extension.first_event) + damage.DamageNotifyCode
        self._display.damage_query_version()
        self._damage = self._display.screen().root.damage_create(damage.DamageReportRawRectangles)
        self._display.sync()  # the damage object exists before the first capture

    def fileno(self) -> int | None:
        return int(self._display.fileno())

    def read(self) -> list[Rect] | None:
        display = self._display
        rects: list[Rect] = []
        overflow = False
        # Everything the socket holds now; what arrives later leaves the socket readable.
        for _ in range(display.pending_events()):
            event = display.next_event()
            if event.type & 0x7F == self._event_code and not overflow:
                area = event.area
                rects.append(Rect(area.x, area.y, area.width, area.height))
                overflow = len(rects) > MAX_EVENTS
        return None if overflow else rects

    def close(self) -> None:
        try:
            self._display.damage_destroy(self._damage)
        finally:
            self._display.close()

"""The pointer, sent as its own messages: a position, and a shape when it changes.

X11 reads both through python-xlib (QueryPointer, XFixes GetCursorImage). Other platforms
report no cursor for now and the viewer draws its own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import structlog

from guruconnect.protocol import CursorShape

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Pointer:
    x: int
    y: int
    visible: bool = True


class CursorSource(Protocol):
    def position(self) -> Pointer | None: ...

    def shape(self, *, again: bool = False) -> CursorShape | None:
        """The cursor image when it changed since the last call (or ``again``), else None."""
        ...

    def close(self) -> None: ...


class NoCursor:
    def position(self) -> Pointer | None:
        return None

    def shape(self, *, again: bool = False) -> CursorShape | None:
        return None

    def close(self) -> None:
        pass


def argb_words_to_bgra(words: list[int]) -> bytes:
    """XFixes gives one 32-bit ARGB word per pixel; little-endian bytes of it are B,G,R,A."""
    return np.asarray(words, dtype="<u4").tobytes()


class X11Cursor:
    def __init__(self, display_name: str | None = None) -> None:
        from Xlib import display as xdisplay

        self._display = xdisplay.Display(display_name)
        self._root = self._display.screen().root
        self._has_xfixes = self._display.has_extension("XFIXES")
        if self._has_xfixes:
            self._display.xfixes_query_version()
        self._serial = -1

    def position(self) -> Pointer | None:
        reply = self._root.query_pointer()
        return Pointer(int(reply.root_x), int(reply.root_y), bool(reply.same_screen))

    def shape(self, *, again: bool = False) -> CursorShape | None:
        if not self._has_xfixes:
            return None
        image = self._display.xfixes_get_cursor_image(self._root)
        if image.cursor_serial == self._serial and not again:
            return None
        self._serial = image.cursor_serial
        return CursorShape(
            id=int(image.cursor_serial),
            width=int(image.width),
            height=int(image.height),
            hotspot_x=int(image.xhot),
            hotspot_y=int(image.yhot),
            bgra=argb_words_to_bgra(list(image.cursor_image)),
        )

    def close(self) -> None:
        self._display.close()


def open_cursor(display_name: str | None = None) -> CursorSource:
    if sys.platform.startswith("linux"):
        try:
            return X11Cursor(display_name)
        except Exception as exc:
            log.warning("no cursor tracking", error=str(exc))
    return NoCursor()

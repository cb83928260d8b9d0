"""Input injection behind one interface; one backend per platform.

Keys arrive as physical keys (set-1 scan code + extended flag, ``protocol.keys``), or as
text. Every backend remembers what it holds down, so ``release_all`` can let go of keys and
buttons still held when a viewer leaves (a stuck Ctrl on the customer's machine is the
classic remote-control bug).
"""

from __future__ import annotations

import sys
from typing import Protocol

from guruconnect.protocol import MouseButton, SpecialKey
from guruconnect.protocol import keys as keytable

#: The key chord each special key stands for, as physical keys (pressed in order,
#: released in reverse). Ctrl+Alt+Del on Windows goes through SendSAS instead.
SPECIAL_CHORDS: dict[int, tuple[str, ...]] = {
    SpecialKey.SPECIAL_KEY_CTRL_ALT_DEL: keytable.CTRL_ALT_DEL,
    SpecialKey.SPECIAL_KEY_WIN: keytable.WIN,
    SpecialKey.SPECIAL_KEY_ALT_TAB: keytable.ALT_TAB,
    SpecialKey.SPECIAL_KEY_PRINT_SCREEN: keytable.PRINT_SCREEN,
    SpecialKey.SPECIAL_KEY_CTRL_ESC: keytable.CTRL_ESC,
    SpecialKey.SPECIAL_KEY_LOCK_WORKSTATION: keytable.LOCK_WORKSTATION,
}


class InjectError(RuntimeError):
    """The platform refused an input event."""


class Injector(Protocol):
    name: str

    def key(self, key: keytable.Key, down: bool) -> None: ...

    def text(self, text: str) -> None: ...

    def move(self, x: int, y: int) -> None:
        """Absolute position on the virtual desktop (display offset already added)."""
        ...

    def button(self, button: MouseButton, down: bool) -> None: ...

    def wheel(self, dx: int, dy: int) -> None:
        """Steps; positive = up / right."""
        ...

    def special(self, key: SpecialKey) -> None: ...

    def release_all(self) -> None: ...

    def close(self) -> None: ...


def open_injector(display_name: str | None = None) -> Injector:
    if sys.platform == "win32":  # pragma: no cover - needs Windows
        from guruconnect.agent.inject.windows import SendInputInjector

        return SendInputInjector()
    from guruconnect.agent.inject.x11 import XTestInjector

    return XTestInjector(display_name)

"""The keyboard table: physical keys by PC set-1 scan code, as the wire protocol sends them.

One row per physical key. ``code`` is the browser's ``KeyboardEvent.code`` (what the viewer
sees), ``scan``/``extended`` the set-1 make code and its E0 prefix (what travels in a
``KeyEvent``), ``evdev`` the Linux input code (an X11 keycode is ``evdev + 8`` with the evdev
keymap every current X server uses). Windows takes ``scan``/``extended`` as they are
(``KEYEVENTF_SCANCODE`` + ``KEYEVENTF_EXTENDEDKEY``).

Pause is the one key whose set-1 make sequence (E1 1D 45) has no (scan, extended) form; it
travels as E0 46, the sequence the same key sends while Ctrl is held (Break). NumLock is
the plain 45.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True, slots=True)
class Key:
    code: str
    scan: int
    extended: bool
    evdev: int

    @property
    def wire(self) -> tuple[int, bool]:
        return self.scan, self.extended


def _row(code: str, scan: int, evdev: int, *, extended: bool = False) -> Key:
    return Key(code, scan, extended, evdev)


def _e0(code: str, scan: int, evdev: int) -> Key:
    return Key(code, scan, True, evdev)


_LETTERS_TOP = "QWERTYUIOP"  # scan 0x10.., evdev 16..
_LETTERS_MID = "ASDFGHJKL"  # scan 0x1E.., evdev 30..
_LETTERS_LOW = "ZXCVBNM"  # scan 0x2C.., evdev 44..

KEYS: tuple[Key, ...] = (
    _row("Escape", 0x01, 1),
    *(_row(f"Digit{(i + 1) % 10}", 0x02 + i, 2 + i) for i in range(10)),
    _row("Minus", 0x0C, 12),
    _row("Equal", 0x0D, 13),
    _row("Backspace", 0x0E, 14),
    _row("Tab", 0x0F, 15),
    *(_row(f"Key{c}", 0x10 + i, 16 + i) for i, c in enumerate(_LETTERS_TOP)),
    _row("BracketLeft", 0x1A, 26),
    _row("BracketRight", 0x1B, 27),
    _row("Enter", 0x1C, 28),
    _row("ControlLeft", 0x1D, 29),
    *(_row(f"Key{c}", 0x1E + i, 30 + i) for i, c in enumerate(_LETTERS_MID)),
    _row("Semicolon", 0x27, 39),
    _row("Quote", 0x28, 40),
    _row("Backquote", 0x29, 41),
    _row("ShiftLeft", 0x2A, 42),
    _row("Backslash", 0x2B, 43),
    *(_row(f"Key{c}", 0x2C + i, 44 + i) for i, c in enumerate(_LETTERS_LOW)),
    _row("Comma", 0x33, 51),
    _row("Period", 0x34, 52),
    _row("Slash", 0x35, 53),
    _row("ShiftRight", 0x36, 54),
    _row("NumpadMultiply", 0x37, 55),
    _row("AltLeft", 0x38, 56),
    _row("Space", 0x39, 57),
    _row("CapsLock", 0x3A, 58),
    *(_row(f"F{i + 1}", 0x3B + i, 59 + i) for i in range(10)),
    _row("NumLock", 0x45, 69),
    _row("ScrollLock", 0x46, 70),
    _row("Numpad7", 0x47, 71),
    _row("Numpad8", 0x48, 72),
    _row("Numpad9", 0x49, 73),
    _row("NumpadSubtract", 0x4A, 74),
    _row("Numpad4", 0x4B, 75),
    _row("Numpad5", 0x4C, 76),
    _row("Numpad6", 0x4D, 77),
    _row("NumpadAdd", 0x4E, 78),
    _row("Numpad1", 0x4F, 79),
    _row("Numpad2", 0x50, 80),
    _row("Numpad3", 0x51, 81),
    _row("Numpad0", 0x52, 82),
    _row("NumpadDecimal", 0x53, 83),
    _row("IntlBackslash", 0x56, 86),
    _row("F11", 0x57, 87),
    _row("F12", 0x58, 88),
    _row("NumpadEqual", 0x59, 117),
    *(_row(f"F{13 + i}", 0x64 + i, 183 + i) for i in range(11)),  # F13..F23
    _row("KanaMode", 0x70, 93),
    _row("IntlRo", 0x73, 89),
    _row("F24", 0x76, 194),
    _row("Convert", 0x79, 92),
    _row("NonConvert", 0x7B, 94),
    _row("IntlYen", 0x7D, 124),
    _row("NumpadComma", 0x7E, 121),
    # E0-prefixed ("extended") keys.
    _e0("MediaTrackPrevious", 0x10, 165),
    _e0("MediaTrackNext", 0x19, 163),
    _e0("NumpadEnter", 0x1C, 96),
    _e0("ControlRight", 0x1D, 97),
    _e0("AudioVolumeMute", 0x20, 113),
    _e0("LaunchApp2", 0x21, 140),
    _e0("MediaPlayPause", 0x22, 164),
    _e0("MediaStop", 0x24, 166),
    _e0("AudioVolumeDown", 0x2E, 114),
    _e0("AudioVolumeUp", 0x30, 115),
    _e0("BrowserHome", 0x32, 172),
    _e0("NumpadDivide", 0x35, 98),
    _e0("PrintScreen", 0x37, 99),
    _e0("AltRight", 0x38, 100),
    _e0("Pause", 0x46, 119),
    _e0("Home", 0x47, 102),
    _e0("ArrowUp", 0x48, 103),
    _e0("PageUp", 0x49, 104),
    _e0("ArrowLeft", 0x4B, 105),
    _e0("ArrowRight", 0x4D, 106),
    _e0("End", 0x4F, 107),
    _e0("ArrowDown", 0x50, 108),
    _e0("PageDown", 0x51, 109),
    _e0("Insert", 0x52, 110),
    _e0("Delete", 0x53, 111),
    _e0("MetaLeft", 0x5B, 125),
    _e0("MetaRight", 0x5C, 126),
    _e0("ContextMenu", 0x5D, 127),
    _e0("Power", 0x5E, 116),
    _e0("Sleep", 0x5F, 142),
    _e0("WakeUp", 0x63, 143),
    _e0("BrowserSearch", 0x65, 217),
    _e0("BrowserFavorites", 0x66, 156),
    _e0("BrowserRefresh", 0x67, 173),
    _e0("BrowserStop", 0x68, 128),
    _e0("BrowserForward", 0x69, 159),
    _e0("BrowserBack", 0x6A, 158),
    _e0("LaunchApp1", 0x6B, 157),
    _e0("LaunchMail", 0x6C, 155),
)


@cache
def by_code() -> dict[str, Key]:
    return {key.code: key for key in KEYS}


@cache
def by_wire() -> dict[tuple[int, bool], Key]:
    return {key.wire: key for key in KEYS}


def lookup(scan: int, extended: bool) -> Key | None:
    """The physical key a ``KeyEvent`` names, or None for a code no keyboard sends."""
    return by_wire().get((scan, extended))


def browser_table() -> dict[str, list[int | bool]]:
    """``KeyboardEvent.code`` -> ``[scan, extended]``: what the web viewer sends."""
    return {key.code: [key.scan, key.extended] for key in KEYS}


# The keys special-key events press, by their codes (the wire's SpecialKey names them).
CTRL_ALT_DEL = ("ControlLeft", "AltLeft", "Delete")
WIN = ("MetaLeft",)
ALT_TAB = ("AltLeft", "Tab")
PRINT_SCREEN = ("PrintScreen",)
CTRL_ESC = ("ControlLeft", "Escape")
LOCK_WORKSTATION = ("MetaLeft", "KeyL")

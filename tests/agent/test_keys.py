"""The keyboard table, one test per row.

Each row round-trips (browser code -> wire -> key), and its evdev column is checked against
a real X server's US keymap: the keycode ``evdev + 8`` must carry the keysym a person
pressing that key expects. The expected keysyms below are written from the key's label,
not read from the table, so a wrong row fails.
"""

from __future__ import annotations

import pytest

from guruconnect.protocol import keys as keytable
from tests.agent.conftest import XServer

_LETTERS = {f"Key{c}": c.lower() for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_DIGITS = {f"Digit{d}": str(d) for d in range(10)}
_FKEYS = {f"F{n}": f"F{n}" for n in range(1, 13)}
EXPECTED_KEYSYM: dict[str, str | None] = {
    **_LETTERS,
    **_DIGITS,
    **_FKEYS,
    "Escape": "Escape", "Minus": "minus", "Equal": "equal", "Backspace": "BackSpace",
    "Tab": "Tab", "BracketLeft": "bracketleft", "BracketRight": "bracketright",
    "Enter": "Return", "ControlLeft": "Control_L", "Semicolon": "semicolon",
    "Quote": "apostrophe", "Backquote": "grave", "ShiftLeft": "Shift_L",
    "Backslash": "backslash", "Comma": "comma", "Period": "period", "Slash": "slash",
    "ShiftRight": "Shift_R", "NumpadMultiply": "KP_Multiply", "AltLeft": "Alt_L",
    "Space": "space", "CapsLock": "Caps_Lock", "NumLock": "Num_Lock",
    "ScrollLock": "Scroll_Lock", "Numpad7": "KP_Home", "Numpad8": "KP_Up",
    "Numpad9": "KP_Prior", "NumpadSubtract": "KP_Subtract", "Numpad4": "KP_Left",
    "Numpad5": "KP_Begin", "Numpad6": "KP_Right", "NumpadAdd": "KP_Add",
    "Numpad1": "KP_End", "Numpad2": "KP_Down", "Numpad3": "KP_Next", "Numpad0": "KP_Insert",
    "NumpadDecimal": "KP_Delete", "IntlBackslash": "less", "NumpadEqual": "KP_Equal",
    "KanaMode": "Hiragana_Katakana", "Convert": "Henkan_Mode", "NonConvert": "Muhenkan",
    "NumpadComma": "KP_Decimal", "NumpadEnter": "KP_Enter", "ControlRight": "Control_R",
    "NumpadDivide": "KP_Divide", "PrintScreen": "Print", "AltRight": "Alt_R",
    "Pause": "Pause", "Home": "Home", "ArrowUp": "Up", "PageUp": "Prior",
    "ArrowLeft": "Left", "ArrowRight": "Right", "End": "End", "ArrowDown": "Down",
    "PageDown": "Next", "Insert": "Insert", "Delete": "Delete", "MetaLeft": "Super_L",
    "MetaRight": "Super_R", "ContextMenu": "Menu", "BrowserStop": "Cancel",
    "MediaTrackPrevious": "XF86AudioPrev", "MediaTrackNext": "XF86AudioNext",
    "AudioVolumeMute": "XF86AudioMute", "LaunchApp2": "XF86Calculator",
    "MediaPlayPause": "XF86AudioPlay", "MediaStop": "XF86AudioStop",
    "AudioVolumeDown": "XF86AudioLowerVolume", "AudioVolumeUp": "XF86AudioRaiseVolume",
    "BrowserHome": "XF86HomePage", "Power": "XF86PowerOff", "Sleep": "XF86Sleep",
    "WakeUp": "XF86WakeUp", "BrowserSearch": "XF86Search", "BrowserFavorites": "XF86Favorites",
    "BrowserRefresh": "XF86Reload", "BrowserForward": "XF86Forward",
    "BrowserBack": "XF86Back", "LaunchApp1": "XF86MyComputer", "LaunchMail": "XF86Mail",
    # The US keymap binds nothing (or vendor keysyms) to these; their evdev codes are
    # checked against the kernel's numbering below instead.
    **{f"F{n}": None for n in range(13, 25)},
    "IntlRo": None, "IntlYen": None,
}  # fmt: skip

#: Linux input-event-codes.h, for the rows the US keymap cannot confirm.
KERNEL_CODES = {
    **{f"F{13 + i}": 183 + i for i in range(12)},
    "IntlRo": 89,  # KEY_RO
    "IntlYen": 124,  # KEY_YEN
}


def test_every_row_is_expected_and_nothing_is_missing() -> None:
    assert {key.code for key in keytable.KEYS} == set(EXPECTED_KEYSYM)


def test_codes_wire_values_and_evdev_codes_are_unique() -> None:
    keys = keytable.KEYS
    assert len({k.code for k in keys}) == len(keys)
    assert len({k.wire for k in keys}) == len(keys)
    assert len({k.evdev for k in keys}) == len(keys)


def test_plain_keys_follow_the_kernels_identity_for_set_1() -> None:
    """Linux's atkbd maps non-extended set-1 codes 0x01..0x58 to the same evdev number."""
    for key in keytable.KEYS:
        if not key.extended and key.scan <= 0x58 and key.code != "NumpadEqual":
            assert key.evdev == key.scan, key


@pytest.fixture(scope="module")
def us_keymap(xserver: XServer) -> dict[int, list[str]]:
    """keycode -> keysym names of a real X server with the US layout (xmodmap -pke)."""
    xserver.run("setxkbmap", "us")
    keymap: dict[int, list[str]] = {}
    for line in xserver.run("xmodmap", "-pke").splitlines():
        head, _, keysyms = line.partition("=")
        keymap[int(head.split()[1])] = keysyms.split()
    return keymap


@pytest.mark.parametrize("key", keytable.KEYS, ids=lambda key: key.code)
def test_row(key: keytable.Key, us_keymap: dict[int, list[str]]) -> None:
    # Round trip: what the browser sends for this key is what the agent looks up.
    scan, extended = keytable.browser_table()[key.code]
    assert keytable.lookup(int(scan), bool(extended)) is key
    assert 0 < key.scan < 0x80  # a make code: the break code is scan | 0x80

    expected = EXPECTED_KEYSYM[key.code]
    if expected is None:
        assert key.evdev == KERNEL_CODES[key.code]
        return
    keysyms = us_keymap[key.evdev + 8]
    assert keysyms, f"keycode {key.evdev + 8} is unbound"
    assert keysyms[0] == expected, f"{key.code}: keycode {key.evdev + 8} is {keysyms[0]}"


def test_unknown_wire_codes_are_not_keys() -> None:
    assert keytable.lookup(0x7F, True) is None
    assert keytable.lookup(0, False) is None

"""Windows injection through ``SendInput`` (ctypes), keys by scan code.

The structures are declared with fixed-width fields (DWORD = 32 bits, ULONG_PTR = 64 bits
on 64-bit Windows) so their layout, and the flag arithmetic below, are checked by tests on
any platform; only ``SendInputInjector`` itself needs Windows.

Ctrl+Alt+Del is the secure attention sequence: no injected key chord triggers it. It goes
through ``SendSAS`` (sas.dll), which works only from a service running as LocalSystem, and
only when the policy allows software SAS: set
``HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System\\SoftwareSASGeneration``
(DWORD) to 1 (services) or 3 (services and Ease of Access apps). See docs/agent.md.
"""

from __future__ import annotations

import ctypes
import sys
from ctypes import c_int32, c_uint16, c_uint32, c_uint64
from typing import Any

from guruconnect.agent.inject import SPECIAL_CHORDS, InjectError
from guruconnect.protocol import MouseButton, SpecialKey
from guruconnect.protocol import keys as keytable

INPUT_MOUSE, INPUT_KEYBOARD = 0, 1

KEYEVENTF_EXTENDEDKEY = 0x0001
KEYEVENTF_KEYUP = 0x0002
KEYEVENTF_UNICODE = 0x0004
KEYEVENTF_SCANCODE = 0x0008

MOUSEEVENTF_MOVE = 0x0001
MOUSEEVENTF_LEFTDOWN, MOUSEEVENTF_LEFTUP = 0x0002, 0x0004
MOUSEEVENTF_RIGHTDOWN, MOUSEEVENTF_RIGHTUP = 0x0008, 0x0010
MOUSEEVENTF_MIDDLEDOWN, MOUSEEVENTF_MIDDLEUP = 0x0020, 0x0040
MOUSEEVENTF_XDOWN, MOUSEEVENTF_XUP = 0x0080, 0x0100
MOUSEEVENTF_WHEEL = 0x0800
MOUSEEVENTF_HWHEEL = 0x1000
MOUSEEVENTF_VIRTUALDESK = 0x4000
MOUSEEVENTF_ABSOLUTE = 0x8000
XBUTTON1, XBUTTON2 = 0x0001, 0x0002
WHEEL_DELTA = 120
VK_PAUSE = 0x13


class MOUSEINPUT(ctypes.Structure):
    _fields_ = (
        ("dx", c_int32),
        ("dy", c_int32),
        ("mouseData", c_uint32),
        ("dwFlags", c_uint32),
        ("time", c_uint32),
        ("dwExtraInfo", c_uint64),
    )


class KEYBDINPUT(ctypes.Structure):
    _fields_ = (
        ("wVk", c_uint16),
        ("wScan", c_uint16),
        ("dwFlags", c_uint32),
        ("time", c_uint32),
        ("dwExtraInfo", c_uint64),
    )


class HARDWAREINPUT(ctypes.Structure):
    _fields_ = (("uMsg", c_uint32), ("wParamL", c_uint16), ("wParamH", c_uint16))


class _INPUTUNION(ctypes.Union):
    _fields_ = (("mi", MOUSEINPUT), ("ki", KEYBDINPUT), ("hi", HARDWAREINPUT))


class INPUT(ctypes.Structure):
    _fields_ = (("type", c_uint32), ("u", _INPUTUNION))


def key_input(key: keytable.Key, down: bool) -> INPUT:
    """A physical key as SendInput wants it: the scan code, never a virtual key, so the
    layout on the machine decides the character, as with a local keyboard."""
    flags = KEYEVENTF_SCANCODE
    if key.extended:
        flags |= KEYEVENTF_EXTENDEDKEY
    if not down:
        flags |= KEYEVENTF_KEYUP
    if key.code == "Pause":
        # Pause's real sequence (E1 1D 45) cannot be sent as a scan code; its virtual key can.
        flags = 0 if down else KEYEVENTF_KEYUP
        return INPUT(type=INPUT_KEYBOARD, u=_INPUTUNION(ki=KEYBDINPUT(wVk=VK_PAUSE, dwFlags=flags)))
    return INPUT(type=INPUT_KEYBOARD, u=_INPUTUNION(ki=KEYBDINPUT(wScan=key.scan, dwFlags=flags)))


def unicode_inputs(text: str) -> list[INPUT]:
    """Text mode: each UTF-16 code unit as a KEYEVENTF_UNICODE press and release."""
    units = text.encode("utf-16-le")
    events = []
    for i in range(0, len(units), 2):
        unit = int.from_bytes(units[i : i + 2], "little")
        for flags in (KEYEVENTF_UNICODE, KEYEVENTF_UNICODE | KEYEVENTF_KEYUP):
            ki = KEYBDINPUT(wScan=unit, dwFlags=flags)
            events.append(INPUT(type=INPUT_KEYBOARD, u=_INPUTUNION(ki=ki)))
    return events


def absolute(value: int, origin: int, size: int) -> int:
    """A pixel on the virtual desktop -> SendInput's 0..65535 normalised coordinate."""
    if size <= 1:
        return 0
    clamped = min(max(value - origin, 0), size - 1)
    return (clamped * 65535 + (size - 1) // 2) // (size - 1)


def move_input(x: int, y: int, desktop: tuple[int, int, int, int]) -> INPUT:
    left, top, width, height = desktop
    flags = MOUSEEVENTF_MOVE | MOUSEEVENTF_ABSOLUTE | MOUSEEVENTF_VIRTUALDESK
    mi = MOUSEINPUT(dx=absolute(x, left, width), dy=absolute(y, top, height), dwFlags=flags)
    return INPUT(type=INPUT_MOUSE, u=_INPUTUNION(mi=mi))


_BUTTON_FLAGS = {
    MouseButton.MOUSE_BUTTON_LEFT: (MOUSEEVENTF_LEFTDOWN, MOUSEEVENTF_LEFTUP, 0),
    MouseButton.MOUSE_BUTTON_RIGHT: (MOUSEEVENTF_RIGHTDOWN, MOUSEEVENTF_RIGHTUP, 0),
    MouseButton.MOUSE_BUTTON_MIDDLE: (MOUSEEVENTF_MIDDLEDOWN, MOUSEEVENTF_MIDDLEUP, 0),
    MouseButton.MOUSE_BUTTON_BACK: (MOUSEEVENTF_XDOWN, MOUSEEVENTF_XUP, XBUTTON1),
    MouseButton.MOUSE_BUTTON_FORWARD: (MOUSEEVENTF_XDOWN, MOUSEEVENTF_XUP, XBUTTON2),
}


def button_input(button: MouseButton, down: bool) -> INPUT:
    if button not in _BUTTON_FLAGS:
        raise InjectError(f"unknown mouse button {button}")
    down_flag, up_flag, data = _BUTTON_FLAGS[button]
    mi = MOUSEINPUT(mouseData=data, dwFlags=down_flag if down else up_flag)
    return INPUT(type=INPUT_MOUSE, u=_INPUTUNION(mi=mi))


def wheel_inputs(dx: int, dy: int) -> list[INPUT]:
    events = []
    for steps, flag in ((dy, MOUSEEVENTF_WHEEL), (dx, MOUSEEVENTF_HWHEEL)):
        if steps:
            # mouseData is a DWORD holding a signed delta.
            delta = (max(-50, min(50, steps)) * WHEEL_DELTA) & 0xFFFFFFFF
            mi = MOUSEINPUT(mouseData=delta, dwFlags=flag)
            events.append(INPUT(type=INPUT_MOUSE, u=_INPUTUNION(mi=mi)))
    return events


class SendInputInjector:  # pragma: no cover - needs Windows
    name = "sendinput"

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise InjectError("SendInput exists only on Windows")
        self._user32: Any = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined, unused-ignore]
        self._held: dict[str, keytable.Key] = {}
        self._buttons: set[MouseButton] = set()

    def _send(self, events: list[INPUT]) -> None:
        array = (INPUT * len(events))(*events)
        sent = self._user32.SendInput(len(events), array, ctypes.sizeof(INPUT))
        if sent != len(events):
            raise InjectError(f"SendInput sent {sent} of {len(events)} events")

    def _desktop(self) -> tuple[int, int, int, int]:
        metric = self._user32.GetSystemMetrics
        return metric(76), metric(77), metric(78), metric(79)  # SM_X/Y/CX/CYVIRTUALSCREEN

    def key(self, key: keytable.Key, down: bool) -> None:
        self._send([key_input(key, down)])
        if down:
            self._held[key.code] = key
        else:
            self._held.pop(key.code, None)

    def text(self, text: str) -> None:
        self._send(unicode_inputs(text))

    def move(self, x: int, y: int) -> None:
        self._send([move_input(x, y, self._desktop())])

    def button(self, button: MouseButton, down: bool) -> None:
        self._send([button_input(button, down)])
        (self._buttons.add if down else self._buttons.discard)(button)

    def wheel(self, dx: int, dy: int) -> None:
        events = wheel_inputs(dx, dy)
        if events:
            self._send(events)

    def special(self, key: SpecialKey) -> None:
        if key == SpecialKey.SPECIAL_KEY_CTRL_ALT_DEL:
            sas = ctypes.WinDLL("sas")  # type: ignore[attr-defined, unused-ignore]
            sas.SendSAS(0)  # FALSE: the caller is a service, not an Ease of Access app
            return
        keys = [keytable.by_code()[code] for code in SPECIAL_CHORDS[key]]
        self._send(
            [key_input(k, True) for k in keys] + [key_input(k, False) for k in reversed(keys)]
        )

    def release_all(self) -> None:
        events = [key_input(k, False) for k in self._held.values()]
        events += [button_input(b, False) for b in self._buttons]
        self._held.clear()
        self._buttons.clear()
        if events:
            self._send(events)

    def close(self) -> None:
        self.release_all()

"""X11 injection through the XTest extension (python-xlib).

Physical keys: X keycode = evdev code + 8 (the evdev keymap of every current X server),
so the server's own layout turns them into characters, exactly as a local keyboard would.
Text mode types characters whatever the layout: a character the layout has is typed with
its keycode (and Shift or AltGr as the layout needs); one it lacks is bound for a moment to
a spare keycode, typed, and the binding is undone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import structlog
from Xlib import XK, X
from Xlib import display as xdisplay
from Xlib.error import ConnectionClosedError
from Xlib.ext import xtest

from guruconnect.agent.inject import SPECIAL_CHORDS, InjectError
from guruconnect.protocol import MouseButton, SpecialKey
from guruconnect.protocol import keys as keytable

log = structlog.get_logger(__name__)

EVDEV_OFFSET = 8
BUTTONS = {
    MouseButton.MOUSE_BUTTON_LEFT: 1,
    MouseButton.MOUSE_BUTTON_MIDDLE: 2,
    MouseButton.MOUSE_BUTTON_RIGHT: 3,
    MouseButton.MOUSE_BUTTON_BACK: 8,
    MouseButton.MOUSE_BUTTON_FORWARD: 9,
}
WHEEL_UP, WHEEL_DOWN, WHEEL_LEFT, WHEEL_RIGHT = 4, 5, 6, 7
SHIFT = keytable.by_code()["ShiftLeft"]
ALTGR = keytable.by_code()["AltRight"]
#: Spare keycodes used for characters the layout lacks, and the pause after rebinding one
#: so clients have re-read the keymap before the key arrives.
SPARE_SLOTS = 8
REMAP_SETTLE_SECONDS = 0.05
_NAMED_CHARS = {"\n": "Return", "\r": "Return", "\t": "Tab", "\b": "BackSpace"}


def keysym_for(char: str) -> int:
    """The X keysym of one character (Latin-1 directly, the rest by the Unicode rule)."""
    if char in _NAMED_CHARS:
        return int(XK.string_to_keysym(_NAMED_CHARS[char]))
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 | code


class XTestInjector:
    name = "xtest"

    def __init__(self, display_name: str | None = None) -> None:
        try:
            self._display = xdisplay.Display(display_name)
        except Exception as exc:
            raise InjectError(f"cannot open the X display: {exc}") from exc
        if not self._display.has_extension("XTEST"):
            raise InjectError("the X server has no XTEST extension")
        self._held_keys: set[int] = set()
        self._held_buttons: set[int] = set()
        self._min_keycode = self._display.display.info.min_keycode
        self._max_keycode = self._display.display.info.max_keycode
        self._keysyms_per_code = len(self._display.get_keyboard_mapping(self._min_keycode, 1)[0])
        self._spare: list[int] = []
        self._bound: dict[int, int] = {}  # keysym -> the spare keycode bound to it
        self._next_slot = 0

    # -- keys -----------------------------------------------------------------------------

    def _keycode(self, key: keytable.Key) -> int:
        keycode = key.evdev + EVDEV_OFFSET
        if not self._min_keycode <= keycode <= self._max_keycode:
            raise InjectError(f"{key.code} has no X keycode")
        return keycode

    def _fake_key(self, keycode: int, down: bool) -> None:
        xtest.fake_input(self._display, X.KeyPress if down else X.KeyRelease, keycode)
        if down:
            self._held_keys.add(keycode)
        else:
            self._held_keys.discard(keycode)

    def _send(self) -> None:
        """Hand the queued events to the X server without waiting for it.

        XTest requests have no reply. A round trip (``sync``) here used to hold the event
        loop until the X server had also served everyone ahead of us (the capture's
        full-screen image, a busy compositor): on a loaded machine, tens of milliseconds.
        ``flush`` writes and returns; the server handles requests in order, so nothing
        is reordered. Errors still reach python-xlib's handler on a later read.
        """
        self._display.flush()

    @contextlib.contextmanager
    def _connected(self) -> Iterator[None]:
        """A display that went away is an InjectError (the agent logs it and goes on), not
        an Xlib exception that would end the connection to the relay."""
        try:
            yield
        except (ConnectionClosedError, OSError) as exc:
            raise InjectError(f"the X display went away: {exc}") from exc

    def key(self, key: keytable.Key, down: bool) -> None:
        with self._connected():
            self._fake_key(self._keycode(key), down)
            self._send()

    def _tap(self, keycode: int, modifiers: tuple[int, ...] = ()) -> None:
        for modifier in modifiers:
            self._fake_key(modifier, True)
        self._fake_key(keycode, True)
        self._fake_key(keycode, False)
        for modifier in reversed(modifiers):
            self._fake_key(modifier, False)

    def _spare_keycodes(self) -> list[int]:
        first = self._min_keycode
        count = self._max_keycode - first + 1
        mapping = self._display.get_keyboard_mapping(first, count)
        spare = [first + i for i in range(count) if not any(mapping[i])]
        return [int(keycode) for keycode in reversed(spare)][:SPARE_SLOTS]

    def text(self, text: str) -> None:
        with self._connected():
            shift, altgr = self._keycode(SHIFT), self._keycode(ALTGR)
            for char in text:
                keysym = keysym_for(char)
                # Index 0: plain, 1: Shift, 2/3: the second group (Mode_switch), 4/5: AltGr.
                found = {
                    index: keycode for keycode, index in self._display.keysym_to_keycodes(keysym)
                }
                if 0 in found:
                    self._tap(found[0])
                elif 1 in found:
                    self._tap(found[1], (shift,))
                elif 4 in found:
                    self._tap(found[4], (altgr,))
                elif 5 in found:
                    self._tap(found[5], (altgr, shift))
                else:
                    self._type_unmapped(keysym)
            self._send()

    def _type_unmapped(self, keysym: int) -> None:
        """Bind the keysym to a spare keycode and type it. The binding stays until its slot
        is needed again: clients re-read the keymap when told it changed, and a binding
        undone right after the key press races with that (the character comes out wrong)."""
        keycode = self._bound.get(keysym)
        if keycode is None:
            if not self._spare:
                self._spare = self._spare_keycodes()
                if not self._spare:
                    raise InjectError("no spare keycode to type this character")
            keycode = self._spare[self._next_slot % len(self._spare)]
            self._next_slot += 1
            for old, code in list(self._bound.items()):
                if code == keycode:
                    del self._bound[old]
            self._display.change_keyboard_mapping(keycode, [(keysym,) * self._keysyms_per_code])
            self._display.sync()
            self._bound[keysym] = keycode
            time.sleep(REMAP_SETTLE_SECONDS)
        self._tap(keycode)
        self._send()

    def _unbind_all(self) -> None:
        for keycode in set(self._bound.values()):
            self._display.change_keyboard_mapping(keycode, [(0,) * self._keysyms_per_code])
        self._bound.clear()
        self._display.sync()

    def special(self, key: SpecialKey) -> None:
        with self._connected():
            chord = SPECIAL_CHORDS.get(key)
            if chord is None:
                raise InjectError(f"unknown special key {key}")
            keycodes = [self._keycode(keytable.by_code()[code]) for code in chord]
            for keycode in keycodes:
                self._fake_key(keycode, True)
            for keycode in reversed(keycodes):
                self._fake_key(keycode, False)
            self._send()

    # -- mouse ----------------------------------------------------------------------------

    def move(self, x: int, y: int) -> None:
        with self._connected():
            xtest.fake_input(self._display, X.MotionNotify, x=x, y=y)
            self._send()

    def button(self, button: MouseButton, down: bool) -> None:
        with self._connected():
            number = BUTTONS.get(button)
            if number is None:
                raise InjectError(f"unknown mouse button {button}")
            xtest.fake_input(self._display, X.ButtonPress if down else X.ButtonRelease, number)
            if down:
                self._held_buttons.add(number)
            else:
                self._held_buttons.discard(number)
            self._send()

    def wheel(self, dx: int, dy: int) -> None:
        with self._connected():
            for steps, positive, negative in (
                (dy, WHEEL_UP, WHEEL_DOWN),
                (dx, WHEEL_RIGHT, WHEEL_LEFT),
            ):
                number = positive if steps > 0 else negative
                for _ in range(min(abs(steps), 50)):
                    xtest.fake_input(self._display, X.ButtonPress, number)
                    xtest.fake_input(self._display, X.ButtonRelease, number)
            self._send()

    def release_all(self) -> None:
        with self._connected():
            for keycode in sorted(self._held_keys):
                xtest.fake_input(self._display, X.KeyRelease, keycode)
            for number in sorted(self._held_buttons):
                xtest.fake_input(self._display, X.ButtonRelease, number)
            self._held_keys.clear()
            self._held_buttons.clear()
            self._display.sync()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.release_all()
        with contextlib.suppress(Exception):
            self._unbind_all()
        with contextlib.suppress(Exception):
            self._display.close()

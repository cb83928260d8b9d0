"""Pieces that need no screen: Windows SendInput structures and flags (their layout is
what Windows reads, so it is checked here on any platform), backoff, refusals, the service
unit, and the agent's own input gate."""

from __future__ import annotations

import ctypes
import random
import stat
from pathlib import Path

import pytest

from guruconnect.agent.inject import windows
from guruconnect.agent.service import Install, write
from guruconnect.agent.transport import EXIT_REFUSED, Backoff, fatal_refusal
from guruconnect.client import Refused
from guruconnect.protocol import CloseCode, MouseButton
from guruconnect.protocol import keys as keytable

# -- Windows SendInput (the layout of 64-bit Windows; see the module's docstring) --------


def test_input_structures_have_the_64_bit_windows_layout() -> None:
    assert ctypes.sizeof(windows.INPUT) == 40
    assert ctypes.sizeof(windows.MOUSEINPUT) == 32
    assert ctypes.sizeof(windows.KEYBDINPUT) == 24
    assert windows.INPUT.u.offset == 8
    assert windows.KEYBDINPUT.wScan.offset == 2
    assert windows.KEYBDINPUT.dwFlags.offset == 4
    assert windows.MOUSEINPUT.dwFlags.offset == 12


@pytest.mark.parametrize(
    ("code", "down", "flags"),
    [
        ("KeyA", True, windows.KEYEVENTF_SCANCODE),
        ("KeyA", False, windows.KEYEVENTF_SCANCODE | windows.KEYEVENTF_KEYUP),
        ("ArrowUp", True, windows.KEYEVENTF_SCANCODE | windows.KEYEVENTF_EXTENDEDKEY),
        (
            "MetaLeft",
            False,
            windows.KEYEVENTF_SCANCODE | windows.KEYEVENTF_EXTENDEDKEY | windows.KEYEVENTF_KEYUP,
        ),
        ("NumpadEnter", True, windows.KEYEVENTF_SCANCODE | windows.KEYEVENTF_EXTENDEDKEY),
    ],
)
def test_keys_go_by_scan_code_with_the_extended_flag(code: str, down: bool, flags: int) -> None:
    key = keytable.by_code()[code]
    event = windows.key_input(key, down)
    assert event.type == windows.INPUT_KEYBOARD
    assert (event.u.ki.wVk, event.u.ki.wScan, event.u.ki.dwFlags) == (0, key.scan, flags)


def test_pause_goes_by_virtual_key() -> None:
    event = windows.key_input(keytable.by_code()["Pause"], False)
    assert (event.u.ki.wVk, event.u.ki.dwFlags) == (windows.VK_PAUSE, windows.KEYEVENTF_KEYUP)


def test_text_is_sent_as_utf16_units_pressed_and_released() -> None:
    events = windows.unicode_inputs("a😀")
    units = [e.u.ki.wScan for e in events]
    assert units == [0x61, 0x61, 0xD83D, 0xD83D, 0xDE00, 0xDE00]
    assert [bool(e.u.ki.dwFlags & windows.KEYEVENTF_KEYUP) for e in events] == [0, 1] * 3


def test_absolute_coordinates_span_0_to_65535_over_the_virtual_desktop() -> None:
    desktop = (-1920, 0, 3840, 1080)  # a monitor left of the primary
    left = windows.move_input(-1920, 0, desktop).u.mi
    right = windows.move_input(1919, 1079, desktop).u.mi
    assert (left.dx, left.dy, right.dx, right.dy) == (0, 0, 65535, 65535)
    middle = windows.move_input(0, 540, desktop).u.mi
    assert abs(middle.dx - 32768) <= 9
    assert abs(middle.dy - 32768) <= 31
    assert left.dwFlags & windows.MOUSEEVENTF_VIRTUALDESK


def test_buttons_and_wheel() -> None:
    back = windows.button_input(MouseButton.MOUSE_BUTTON_BACK, True).u.mi
    assert (back.dwFlags, back.mouseData) == (windows.MOUSEEVENTF_XDOWN, windows.XBUTTON1)
    wheel = windows.wheel_inputs(dx=0, dy=-2)
    assert len(wheel) == 1
    assert wheel[0].u.mi.mouseData == (-240) & 0xFFFFFFFF
    assert windows.wheel_inputs(0, 0) == []


# -- reconnecting --------------------------------------------------------------------


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(base=1, cap=60, rng=random.Random(7))
    delays = [backoff.next() for _ in range(10)]
    for attempt, delay in enumerate(delays):
        ceiling = min(60, 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[6:]}) > 1  # capped, but still spread
    backoff.reset()
    assert backoff.next() <= 1


@pytest.mark.parametrize(
    ("code", "fatal"),
    [
        (CloseCode.UNAUTHORIZED, True),
        (CloseCode.REVOKED, True),
        (CloseCode.REPLACED, True),
        (401, True),
        (CloseCode.RATE_LIMITED, False),
        (CloseCode.GOING_AWAY, False),
        (1012, False),  # server restart
        (503, False),
        (CloseCode.HEARTBEAT_TIMEOUT, False),
    ],
)
def test_only_refusals_no_retry_can_fix_stop_the_agent(code: int, fatal: bool) -> None:
    stop = fatal_refusal(Refused(code, "why"), support_code=False)
    assert (stop is not None) == fatal
    if stop is not None:
        assert stop.exit_code == EXIT_REFUSED


# -- the service ---------------------------------------------------------------------


def test_install_writes_a_private_key_file_and_a_unit_without_the_key(tmp_path: Path) -> None:
    spec = Install(
        server="https://relay.example",
        key="cak_secret_value",
        user="alice",
        xauthority="/home/alice/.Xauthority",
        unit_dir=tmp_path / "systemd",
        config_dir=tmp_path / "etc",
    )
    spec.key_file.parent.mkdir()
    spec.key_file.write_text("old")
    spec.key_file.chmod(0o644)  # a stale, readable file must not stay readable
    write(spec, chown=False)
    assert stat.S_IMODE(spec.key_file.stat().st_mode) == 0o600
    assert spec.key_file.read_text().strip() == "cak_secret_value"
    unit = spec.unit_file.read_text()
    assert "cak_secret_value" not in unit
    assert f"--key-file {spec.key_file}" in unit
    assert "User=alice" in unit
    assert "Environment=XAUTHORITY=/home/alice/.Xauthority" in unit
    assert f"RestartPreventExitStatus={EXIT_REFUSED}" in unit
    assert "--unattended" not in unit

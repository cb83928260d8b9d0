"""The built single-file agent does what the venv agent does, with no Python around it.

The end-to-end scenarios are tests/agent/test_e2e.py's own, imported: here the
``agent_command`` fixture (conftest.py) starts the built file in a clean environment, so
the same checks prove the frozen build streams the X server's exact pixels, injects keys
into a Tk field, and asks consent through its Tk dialog (a child it starts by re-executing
its own file with ``--run-module``), which xdotool answers.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from guruconnect.agent import preflight
from guruconnect.version import __version__
from tests.agent.conftest import XServer
from tests.agent.test_cli_errors import (  # noqa: F401 - http_404 is a fixture
    assert_one_line,
    http_404,
    unused_display,
)
from tests.agent.test_e2e import (  # noqa: F401 - the scenarios and their fixtures
    background,
    relay,
    test_keys_by_scan_code_text_mode_clicks_and_special_keys_reach_the_desktop,
    test_screen_arrives_bit_for_bit_and_updates_send_only_changed_tiles,
    test_the_person_at_the_machine_allows_chats_and_ends_the_session,
    textfield,
)
from tests.built_agent.conftest import BUILD_TIMEOUT, clean_env
from tests.timing import scaled

# The first test to run may wait for a cold build (the session fixture).
pytestmark = pytest.mark.timeout(scaled(BUILD_TIMEOUT + 120))


def run_built(
    built_agent: Path, tmp_path: Path, *args: str, display: str | None = None
) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    extra = {"DISPLAY": display} if display else {}
    return subprocess.run(
        [str(built_agent), *args],
        env=clean_env(home, **extra),
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def test_built_file_prints_its_version_without_python(built_agent: Path, tmp_path: Path) -> None:
    result = run_built(built_agent, tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__
    assert result.stderr == ""


def test_built_file_is_one_self_contained_executable(built_agent: Path, tmp_path: Path) -> None:
    """An ELF executable, and its help names the agent's commands (the whole CLI)."""
    assert built_agent.read_bytes()[:4] == b"\x7fELF"
    result = run_built(built_agent, tmp_path, "agent", "--help")
    assert result.returncode == 0, result.stderr
    assert "--server" in result.stdout
    assert "--code" in result.stdout


def test_built_file_errors_are_one_line_with_the_documented_code(
    built_agent: Path,
    tmp_path: Path,
    xserver: XServer,
    http_404: str,  # noqa: F811
) -> None:
    """The same one-line errors as the venv's CLI (tests/agent/test_cli_errors.py): the
    frozen build must not turn any of them into a traceback."""
    code = ("--code", "ABCDEF")
    result = run_built(built_agent, tmp_path, "agent", "--server", "127.0.0.1:3002", *code)
    assert_one_line(result, preflight.EXIT_USAGE, "has no scheme")
    result = run_built(built_agent, tmp_path, "agent", "--bogus")
    assert_one_line(result, preflight.EXIT_USAGE, "No such option")
    result = run_built(built_agent, tmp_path, "agent", "--server", "https://x.example", *code)
    assert_one_line(result, preflight.EXIT_DISPLAY, "DISPLAY is not set")
    result = run_built(
        built_agent,
        tmp_path,
        "agent",
        "--server",
        "https://x.example",
        *code,
        display=unused_display(),
    )
    assert_one_line(result, preflight.EXIT_DISPLAY, "cannot open X display")
    result = run_built(
        built_agent,
        tmp_path,
        "agent",
        "--server",
        f"http://{http_404}",
        *code,
        "--no-windows",
        "--h264-encoders",
        "none",
        "--log-level",
        "ERROR",
        display=xserver.display,
    )
    assert_one_line(result, preflight.EXIT_NOT_GURUCONNECT, "not a GuruConnect server")

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

from guruconnect.version import __version__
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


def run_built(built_agent: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    return subprocess.run(
        [str(built_agent), *args],
        env=clean_env(home),
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

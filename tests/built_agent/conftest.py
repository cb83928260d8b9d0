"""The built single-file agent (``make agent-dist``) under test, run without Python.

A session fixture runs ``scripts/build_agent.py`` (a file copy when the build cache has the
sources' build; a PyInstaller build of a few minutes otherwise) and fails with the build's
own output if it cannot build. The agent then runs with a clean environment: no virtualenv
or interpreter on PATH, no PYTHONPATH, a working directory outside the checkout.

The X server, relay and agent fixtures are tests/agent's, imported here; only how the agent
is started (``agent_command``) differs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.conftest import (  # noqa: F401 - fixtures used by the tests here
    ROOT,
    AgentCommand,
    XServer,
    sqlite_server,
    start_agent,
    xserver,
)
from tests.timing import scaled

BUILD_SCRIPT = ROOT / "scripts" / "build_agent.py"
#: A cold PyInstaller build on a loaded two-core machine; a cache hit takes a second.
BUILD_TIMEOUT = 900.0


@pytest.fixture(scope="session")
def built_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built agent file, from the build cache when the sources are unchanged.

    ``GURUCONNECT_BUILT_AGENT=FILE`` tests that file instead (a release candidate, or a
    build made by hand); it is not rebuilt."""
    given = os.environ.get("GURUCONNECT_BUILT_AGENT")
    if given:
        if not Path(given).is_file():
            pytest.fail(f"GURUCONNECT_BUILT_AGENT={given} is not a file", pytrace=False)
        return Path(given).resolve()
    dist = tmp_path_factory.mktemp("dist") / "guruconnect-linux-x86_64"
    env = {**os.environ, "AGENT_DIST": str(dist)}
    for name in ("AGENT_VERSION", "AGENT_SERVER", "AGENT_RELEASE_KEYS"):
        env.pop(name, None)
    try:
        result = subprocess.run(
            [sys.executable, str(BUILD_SCRIPT)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=scaled(BUILD_TIMEOUT),
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"make agent-dist did not finish within {scaled(BUILD_TIMEOUT):.0f} s")
    if result.returncode != 0 or not dist.is_file():
        tail = (result.stdout + result.stderr)[-3000:]
        pytest.fail(f"make agent-dist failed (exit {result.returncode}):\n{tail}", pytrace=False)
    return dist


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment with no Python in it: PATH is an empty directory."""
    empty = home / "empty-path"
    empty.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "PATH": str(empty), "LANG": "C.UTF-8", **extra}


@pytest.fixture
def agent_command(xserver: XServer, built_agent: Path, tmp_path: Path) -> AgentCommand:  # noqa: F811
    home = tmp_path / "home"
    return AgentCommand((str(built_agent),), clean_env(home, DISPLAY=xserver.display), home)

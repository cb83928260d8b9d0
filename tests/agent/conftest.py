"""Agent fixtures: a real X server (Xvfb), programs on it, a real server, the real agent.

Xvfb is started with ``-displayfd`` so it picks a free display number itself. Test
programs are small Tk apps (``tests/agent/apps``) that report what they received on
stdout; xdotool answers the agent's dialogs as a person would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from guruconnect.client import ApiClient
from tests.conftest import IN_CI, PASSWORD, Database, LiveServer, make_settings
from tests.timing import scaled

APPS = Path(__file__).parent / "apps"
ROOT = Path(__file__).parents[2]
SCREEN = (1280, 800)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (make system installs it)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@dataclass
class XServer:
    display: str
    process: subprocess.Popen[bytes]
    children: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display}

    def run(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=20, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args}: {result.returncode} {result.stderr}")
        return result.stdout

    def app(self, name: str, *args: object) -> App:
        process = subprocess.Popen(
            [sys.executable, str(APPS / name), *map(str, args)],
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.children.append(process)
        app = App(process)
        app.wait_for(lambda line: line == "ready", timeout=15)
        return app

    def window(self, title: str, timeout: float = 15) -> str:
        """The id of the first window with this exact title, waiting for it to appear."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.run("xdotool", "search", "--name", f"^{title}$", check=False).split()
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no window titled {title!r} within {timeout} s")

    def no_window(self, title: str) -> bool:
        return not self.run("xdotool", "search", "--name", f"^{title}$", check=False).split()

    def press(self, window: str, keys: str) -> None:
        """Give the window the keyboard and press keys on it, as a person would."""
        self.run("xdotool", "windowfocus", "--sync", window)
        self.run("xdotool", "key", "--clearmodifiers", keys)

    def answer(self, title: str, keys: str, timeout: float = 30) -> None:
        """Answer a dialog with ``keys`` until it closes. A press that lands while the
        window is mapped but not yet taking input (a loaded machine) is lost; a person
        would press again, and so does this, after giving the first one time to work."""
        deadline = time.monotonic() + scaled(timeout)
        window = self.window(title, timeout)
        while not self.no_window(title):
            assert time.monotonic() < deadline, f"{title!r} still open after pressing {keys}"
            self.run("xdotool", "windowfocus", "--sync", window, check=False)
            self.run("xdotool", "key", "--clearmodifiers", keys, check=False)
            gone = time.monotonic() + scaled(2)
            while time.monotonic() < gone and not self.no_window(title):
                time.sleep(0.1)

    def screenshot(self) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """The whole screen as BGRA, read independently of the agent (mss in this process)."""
        import mss

        with mss.MSS(display=self.display) as sct:
            shot = sct.grab(sct.monitors[0])
            return np.frombuffer(shot.raw, np.uint8).reshape(shot.height, shot.width, 4).copy()

    def stop_children(self) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()
        self.children.clear()


class App:
    """A test program; its stdout lines are collected by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._new:
                self.lines.append(line.rstrip("\n"))
                self._new.notify_all()

    def wait_for(self, match: Callable[[str], bool], timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for line in self.lines:
                    if match(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"not seen within {timeout} s; got {self.lines[-5:]}")
                self._new.wait(remaining)


@pytest.fixture(scope="module")
def xserver() -> Iterator[XServer]:
    server = start_xvfb()
    yield server
    server.stop_children()
    server.process.terminate()
    server.process.wait(10)


def start_xvfb(attempts: int = 3) -> XServer:
    """Xvfb on a free display it picks itself. Two servers starting at the same moment
    can race for a display number; the loser exits, and it is simply started again."""
    xvfb = require_tool("Xvfb")
    require_tool("xdotool")
    problem = ""
    for _ in range(attempts):
        read_fd, write_fd = os.pipe()
        log = tempfile.TemporaryFile()  # noqa: SIM115 - handed to Xvfb, closed below
        process = subprocess.Popen(
            [
                xvfb,
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{SCREEN[0]}x{SCREEN[1]}x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write_fd,),
            stderr=log,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if number:
            log.close()  # Xvfb keeps its own descriptor of the file
            return XServer(f":{number}", process)
        process.wait(10)
        log.seek(0)
        problem = log.read().decode(errors="replace")[-500:]
        log.close()
        time.sleep(0.5)
    raise AssertionError(f"Xvfb did not start: {problem}")


@dataclass
class AgentProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class AgentCommand:
    """How the agent is started: the venv's ``python -m guruconnect`` here;
    tests/built_agent overrides the ``agent_command`` fixture with the built file."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path


@pytest.fixture
def agent_command(xserver: XServer) -> AgentCommand:
    return AgentCommand((sys.executable, "-m", "guruconnect"), xserver.env, ROOT)


@pytest.fixture
def start_agent(
    xserver: XServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., AgentProcess]]:
    # Modules that import this fixture without ``agent_command`` get the venv's agent.
    try:
        agent_command: AgentCommand = request.getfixturevalue("agent_command")
    except pytest.FixtureLookupError:
        agent_command = AgentCommand((sys.executable, "-m", "guruconnect"), xserver.env, ROOT)
    started: list[AgentProcess] = []

    def start(
        server_url: str,
        *,
        key: str | None = None,
        code: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> AgentProcess:
        args = [
            *agent_command.argv,
            "agent",
            "--server",
            server_url,
            "--display",
            xserver.display,
            "--log-level",
            "DEBUG",
            *extra,
        ]
        if key is not None:
            key_file = tmp_path / f"agent{len(started)}.key"
            key_file.write_text(key)
            key_file.chmod(0o600)
            args += ["--key-file", str(key_file)]
        if code is not None:
            args += ["--code", code]
        log_path = tmp_path / f"agent{len(started)}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                args,
                env=agent_command.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=agent_command.cwd,
            )
        agent = AgentProcess(process, log_path)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Servers on one SQLite file (the agent's behaviour does not depend on the database;
    the relay's is tested on both elsewhere). Restartable on the same port."""
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'guruconnect.db'}")
    started: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        live = LiveServer(make_settings(database, **overrides), database).start()
        started.append(live)
        return live

    yield start
    for live in started:
        with contextlib.suppress(Exception):
            live.stop()


async def admin_api(server: LiveServer) -> ApiClient:
    api = ApiClient(server.url)
    await api.login("root", PASSWORD)
    return api


def run(coro: Any) -> Any:
    return asyncio.run(coro)

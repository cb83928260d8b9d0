"""``guruconnect open-link``: hostile links are refused with one line and exit code 2 and
nothing connects; a link to a server this agent was not installed for connects only after
the person confirms it in the dialog (answered with xdotool); a trusted one connects
without asking. "Nothing connects" is checked on a listening socket the links point at:
after the command has exited, its accept queue is empty."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from guruconnect.agent.links import CONFIRM_TITLE, DESKTOP_FILE, MIME_TYPE
from tests.agent.conftest import ROOT, XServer, require_tool
from tests.timing import scaled

CODE = "K7QX2-MZ9RB"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def connected(sock: socket.socket, timeout: float = 0.0) -> bool:
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return False
    conn, _ = sock.accept()
    conn.close()
    return True


def link(port: int, code: str = CODE) -> str:
    return f"guruconnect://join?server=http://127.0.0.1:{port}&code={code}"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    return env


def open_link(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guruconnect", "open-link", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        check=False,
    )


def refused_cases(port: int) -> dict[str, list[str]]:
    good = link(port)
    return {
        "no link": [],
        "extra argument": [good, "--unattended"],
        "--server before the link": ["--server", f"http://127.0.0.1:{port}", good],
        "--server inside the link": [
            f"guruconnect://join?server=http://127.0.0.1:{port}&code={CODE}&--server=x"
        ],
        "%00": [good + "%00"],
        "very long": [good + "&x=" + "A" * 70_000],
        "other scheme": [f"http://127.0.0.1:{port}/join?code={CODE}"],
        "file scheme": ["file:///etc/passwd"],
        "userinfo": [
            f"guruconnect://join?server=http://trusted.example@127.0.0.1:{port}&code={CODE}"
        ],
        "unicode host": [f"guruconnect://join?server=http://127.0.0.\u0661:{port}&code={CODE}"],
        "option as the link": ["--help"],
    }


def test_hostile_links_are_refused_with_one_line_and_nothing_connects(
    listener: socket.socket, home: dict[str, str]
) -> None:
    port = listener.getsockname()[1]
    for name, args in refused_cases(port).items():
        result = open_link(*args, env=home)
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (name, result.stderr)
        assert lines[0].startswith("guruconnect: refused link"), (name, lines)
        assert "Traceback" not in result.stderr + result.stdout
        assert not connected(listener), name


def test_an_untrusted_server_without_a_display_is_refused(
    listener: socket.socket, home: dict[str, str]
) -> None:
    result = open_link(link(listener.getsockname()[1]), env=home)
    assert result.returncode == 7, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"guruconnect: not connecting to http://127.0.0.1:{listener.getsockname()[1]}: "
        "not confirmed"
    ]
    assert not connected(listener)


def start_open_link(target: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "guruconnect", "open-link", target],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(scaled(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is not None:
        process.stderr.close()


def test_an_untrusted_server_needs_the_persons_confirmation(
    listener: socket.socket, home: dict[str, str], xserver: XServer
) -> None:
    env = {**home, "DISPLAY": xserver.display}
    port = listener.getsockname()[1]

    # Escape (the default answer) refuses: exit 7, no connection.
    process = start_open_link(link(port), env)
    try:
        dialog = xserver.window(CONFIRM_TITLE, timeout=scaled(30))
        xserver.press(dialog, "Escape")
        assert process.wait(scaled(20)) == 7
        assert not connected(listener)
    finally:
        stop(process)

    # Connect (Alt+C): only now does the agent reach the server.
    process = start_open_link(link(port), env)
    try:
        dialog = xserver.window(CONFIRM_TITLE, timeout=scaled(30))
        assert not connected(listener)
        xserver.press(dialog, "alt+c")
        assert connected(listener, scaled(30))
    finally:
        stop(process)


def test_the_installed_server_connects_without_asking(
    listener: socket.socket, home: dict[str, str], xserver: XServer
) -> None:
    port = listener.getsockname()[1]
    trust = Path(home["XDG_CONFIG_HOME"]) / "guruconnect" / "trusted-server"
    trust.parent.mkdir(parents=True)
    trust.write_text(f"http://127.0.0.1:{port}\n")
    process = start_open_link(link(port), {**home, "DISPLAY": xserver.display})
    try:
        assert connected(listener, scaled(30))
        assert xserver.no_window(CONFIRM_TITLE)
    finally:
        stop(process)


def test_install_link_handler_registers_the_scheme(home: dict[str, str]) -> None:
    xdg_mime = require_tool("xdg-mime")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "guruconnect",
            "install-link-handler",
            "--server",
            "https://support.example.com",
            "--executable",
            "/opt/guru connect/guruconnect",
        ],
        env=home,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    entry = Path(home["XDG_DATA_HOME"]) / "applications" / DESKTOP_FILE
    text = entry.read_text()
    assert 'Exec="/opt/guru connect/guruconnect" open-link %u\n' in text
    assert f"MimeType={MIME_TYPE};\n" in text
    trust = Path(home["XDG_CONFIG_HOME"]) / "guruconnect" / "trusted-server"
    assert trust.read_text() == "https://support.example.com:443\n"
    query = subprocess.run(
        [xdg_mime, "query", "default", MIME_TYPE],
        env=home,
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=False,
    )
    assert query.stdout.strip() == DESKTOP_FILE


def test_install_link_handler_refuses_a_bad_server(home: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "guruconnect", "install-link-handler", "--server", "ftp://x"],
        env=home,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "guruconnect: --server: the server's scheme must be https or http, not 'ftp'"
    ]

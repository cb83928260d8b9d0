"""Every mistake a person can make running the agent: one line, a documented exit code.

Each case runs the real ``guruconnect agent`` command (the venv's; tests/built_agent runs a
few against the built file) and fails on any traceback, on more than one line of output, or
on an exit code other than the one docs/agent.md gives. The server cases use real
listeners on loopback: an HTTP server that is not GuruConnect, a TCP service that does not
speak HTTP, a TLS server with a certificate nobody trusts, and TLS spoken to plain HTTP.
"""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from guruconnect.agent import preflight
from tests.agent.conftest import ROOT, XServer
from tests.timing import scaled

pytestmark = pytest.mark.timeout(120)

DOCS = ROOT / "docs" / "agent.md"


def run_agent(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guruconnect", "agent", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Exactly one line on stderr, ``guruconnect: ...``, nothing on stdout, no traceback."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == code, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("guruconnect: "), output
    for needle in needles:
        assert needle in lines[0], output
    assert result.stdout == ""
    return lines[0]


def no_display_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


def unused_display() -> str:
    """A display number with no X server behind it."""
    for number in range(971, 1100):
        if not Path(f"/tmp/.X11-unix/X{number}").exists():  # noqa: S108 - X's own socket dir
            return f":{number}"
    raise AssertionError("no free display number")


# -- the command line and the environment (no server involved) ---------------------------


@pytest.mark.parametrize(
    ("server", "needle"),
    [
        ("127.0.0.1:3002", "use https://127.0.0.1:3002"),
        ("support.example.com", "has no scheme"),
        ("ftp://support.example.com", "ftp:// is not supported"),
        ("file:///etc/passwd", "file:// is not supported"),
        ("https://", "names no host"),
        ("https://host:99999", "use https://HOST[:PORT]"),
    ],
)
def test_a_bad_server_url_is_one_line_and_exit_2(server: str, needle: str) -> None:
    result = run_agent(no_display_env(), "--server", server, "--code", "ABCDEF")
    assert_one_line(result, preflight.EXIT_USAGE, needle)


def test_missing_and_unreadable_key_files_say_which_file(tmp_path: Path) -> None:
    env = no_display_env()
    missing = tmp_path / "nope.key"
    result = run_agent(env, "--server", "https://x.example", "--key-file", str(missing))
    assert_one_line(result, preflight.EXIT_USAGE, str(missing), "does not exist")
    result = run_agent(env, "--server", "https://x.example", "--key-file", str(tmp_path))
    assert_one_line(result, preflight.EXIT_USAGE, "is a directory")
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    result = run_agent(env, "--server", "https://x.example", "--key-file", str(empty))
    assert_one_line(result, preflight.EXIT_USAGE, "is empty")
    if os.geteuid() != 0:  # root reads any file: the permission case needs another user
        locked = tmp_path / "locked.key"
        locked.write_text("cak_x")
        locked.chmod(0)
        result = run_agent(env, "--server", "https://x.example", "--key-file", str(locked))
        assert_one_line(result, preflight.EXIT_USAGE, "not readable")


def test_no_credentials_two_credentials_and_unknown_options() -> None:
    env = {k: v for k, v in no_display_env().items() if k != "GURUCONNECT_AGENT_KEY"}
    assert_one_line(run_agent(env, "--server", "https://x.example"), 2, "no credentials")
    assert_one_line(
        run_agent(env, "--server", "https://x.example", "--key", "cak_a", "--code", "B"),
        2,
        "not both",
    )
    assert_one_line(run_agent(env, "--code", "B"), 2, "--server is required")
    assert_one_line(run_agent(env, "--bogus"), 2, "No such option: --bogus", "--help")
    assert_one_line(run_agent(env, "--fps", "500"), 2, "--fps")


def test_no_display_and_a_display_that_cannot_be_opened() -> None:
    env = no_display_env()
    result = run_agent(env, "--server", "https://x.example", "--code", "ABCDEF")
    assert_one_line(result, preflight.EXIT_DISPLAY, "DISPLAY is not set", "--display")
    display = unused_display()
    result = run_agent(
        env, "--server", "https://x.example", "--code", "ABCDEF", "--display", display
    )
    assert_one_line(result, preflight.EXIT_DISPLAY, f"cannot open X display {display}")
    result = run_agent(
        env, "--server", "https://x.example", "--code", "ABCDEF", "--display", "not a display"
    )
    assert_one_line(result, preflight.EXIT_DISPLAY, "not an X display name")


# -- servers that are not GuruConnect, and TLS ------------------------------------------


class _NotFound(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # what a web server in front of the wrong app speaks

    def do_GET(self) -> None:
        self.send_error(404, "Not Found")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_404() -> Iterator[str]:
    """An HTTP server answering 404 to everything (a web site at the wrong URL)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_404(tmp_path: Path) -> Iterator[str]:
    """The same over TLS, with a self-signed certificate this machine does not trust."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=scaled(30),
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tcp_banner() -> Iterator[str]:
    """A TCP service that is not HTTP: it sends a banner and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def _against(xserver: XServer, url: str) -> subprocess.CompletedProcess[str]:
    return run_agent(
        xserver.env,
        *("--server", url, "--code", "ABCDEF", "--no-windows"),
        *("--h264-encoders", "none", "--log-level", "ERROR"),
    )


def test_an_http_server_that_is_not_guruconnect(xserver: XServer, http_404: str) -> None:
    result = _against(xserver, f"http://{http_404}")
    assert_one_line(result, preflight.EXIT_NOT_GURUCONNECT, "not a GuruConnect server", "404")


def test_a_tcp_service_that_is_not_http(xserver: XServer, tcp_banner: str) -> None:
    result = _against(xserver, f"http://{tcp_banner}")
    assert_one_line(result, preflight.EXIT_NOT_GURUCONNECT, "not a GuruConnect server")


def test_tls_errors_an_untrusted_certificate_and_tls_to_plain_http(
    xserver: XServer, tls_404: str, http_404: str
) -> None:
    result = _against(xserver, f"https://{tls_404}")
    assert_one_line(result, preflight.EXIT_TLS, "TLS", "certificate", "--ca-file")
    result = _against(xserver, f"https://{http_404}")
    assert_one_line(result, preflight.EXIT_TLS, "TLS error")


# -- the table ---------------------------------------------------------------------------


def test_every_exit_code_is_in_the_docs_table() -> None:
    text = DOCS.read_text()
    for code in preflight.EXIT_CODES:
        assert f"| `{code}` |" in text, f"exit code {code} is not in docs/agent.md"


@pytest.mark.parametrize(
    "url",
    [
        "https://support.example.com",
        "http://127.0.0.1:3002",
        "https://h.example/sub/path/",
        "wss://h",
    ],
)
def test_good_server_urls_pass(url: str) -> None:
    assert preflight.check_server_url(url) == url


@pytest.mark.parametrize("module", ["os", "guruconnect.server.app", ""])
def test_run_module_runs_only_the_allowed_module(module: str) -> None:
    """The hidden ``--run-module`` entry (how the built file starts its Tk windows) is not
    a way to run arbitrary code: anything but the allowed module is one line and exit 2."""
    result = subprocess.run(
        [sys.executable, "-m", "guruconnect", "--run-module", module, "-c", "print('ran')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "ran" not in result.stdout
    assert "not a runnable module" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

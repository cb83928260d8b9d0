"""Run the server in the background: for tests and benchmarks.

:class:`BackgroundServer` runs it in a thread of the caller's process, with its own event
loop, so the caller may be synchronous code or another event loop.
:class:`ServerProcess` runs ``guruconnect server`` as a process of its own, configured
through the environment as an operator would: to kill it (SIGKILL) or measure its memory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from guruconnect.server.app import create_app
from guruconnect.server.config import Settings
from guruconnect.server.runner import uvicorn_config


class BackgroundServer:
    def __init__(
        self, settings: Settings, app: FastAPI | None = None, *, timeout: float = 15.0
    ) -> None:
        self.settings = settings
        self.app = app or create_app(settings)
        self.url = ""
        self._timeout = timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind ``settings.host`` on ``settings.port`` (0: a free port) and return once the
        app has started."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.port))
        host, port = sock.getsockname()[:2]
        self._server = server = uvicorn.Server(uvicorn_config(self.settings, self.app))
        self._thread = thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="guruconnect-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + self._timeout
        while not server.started:
            if not thread.is_alive():
                sock.close()
                raise RuntimeError("the server failed to start; see its log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {self._timeout} s")
            time.sleep(0.005)
        scheme = "https" if self.settings.tls_cert_file is not None else "http"
        self.url = f"{scheme}://{host}:{port}"

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._server is not None

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(self._timeout)
        if self._thread.is_alive():
            raise TimeoutError("the server did not stop in time")
        self._server = self._thread = None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        port: int | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.env = {**os.environ, **env}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.cwd = cwd
        #: How to run ``guruconnect`` (default: this interpreter's package).
        self.command = [sys.executable, "-m", "guruconnect", "server"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> float:
        """Start and wait until /health answers; returns how long that took (seconds)."""
        started = time.monotonic()
        command = [*self.command, "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd
            )
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log()[-2000:]}")
            if self._healthy():
                return time.monotonic() - started
            if time.monotonic() > started + timeout:
                raise TimeoutError(f"the server did not start: {self.log()[-2000:]}")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

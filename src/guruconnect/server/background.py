"""Run the server in a background thread on a loopback port: for tests and benchmarks.

The server gets its own event loop in its own thread, so the caller may be synchronous
code or another event loop.
"""

from __future__ import annotations

import socket
import threading
import time

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
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(self._timeout)
        if self._thread.is_alive():
            raise TimeoutError("the server did not stop in time")
        self._server = self._thread = None

"""The XTest injector hands events to the X server without a round trip (``flush``), so a
display that went away must still come out as an InjectError (logged by the agent as
"input not injected"), not as an Xlib exception that ends the connection to the relay."""

from __future__ import annotations

import contextlib

import pytest

from guruconnect.agent.inject import InjectError
from guruconnect.agent.inject.x11 import XTestInjector
from guruconnect.protocol import keys as keytable
from tests.agent.conftest import start_xvfb
from tests.timing import wait_until


def test_input_to_a_display_that_went_away_is_an_inject_error() -> None:
    server = start_xvfb()
    injector = None
    try:
        injector = XTestInjector(server.display)
        key = keytable.by_code()["KeyA"]
        injector.key(key, True)
        injector.key(key, False)
        server.process.terminate()
        server.process.wait(10)

        def refused() -> bool:
            assert injector is not None
            try:
                injector.key(key, True)
            except InjectError:
                return True
            return False

        wait_until(refused, 10, "an InjectError once the X server is gone")
        with pytest.raises(InjectError):
            injector.move(10, 10)
    finally:
        if injector is not None:
            with contextlib.suppress(Exception):
                injector.close()
        if server.process.poll() is None:
            server.process.terminate()
            server.process.wait(10)

"""The tray icon under Xvfb with Debian's ``trayer`` as the tray host, read as a person
reads it: the icon's title (its tooltip, the icon window's name) and its menu, opened by
clicking the icon and answered with the keyboard.

Every wait is on a real condition, scaled with ``tests/timing.py``: trayer owning the tray
selection (``_NET_SYSTEM_TRAY_S0``) before the agent starts (pystray docks only to an owner
that exists), the agent's ``online`` log line, the icon window visible (mapped by trayer,
so docked) under the expected title, the menu window mapped before a key is pressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import Xlib.display
import Xlib.X

from guruconnect.agent.tray_ui import MENU_TITLE
from guruconnect.client import ApiClient, ViewerClient
from guruconnect.protocol import SessionState
from tests.agent.conftest import AgentProcess, XServer, admin_api, require_tool, start_xvfb
from tests.agent.test_e2e import CHAT, CONSENT, next_state, open_session, wait_online
from tests.conftest import LiveServer
from tests.timing import scaled, wait_until

#: The first appearance waits long: a loaded machine starts Python, Tk and pystray slowly.
FIRST = 60


@pytest.fixture
def xserver() -> Iterator[XServer]:
    """An X server per test: the tray's state (selection owner, docked windows) never
    carries from one test to the next."""
    server = start_xvfb()
    yield server
    server.stop_children()
    server.process.terminate()
    server.process.wait(scaled(10))


@pytest.fixture
def relay(sqlite_server: Callable[..., LiveServer]) -> LiveServer:
    server = sqlite_server(consent_timeout_seconds=30)
    server.create_user("root", is_admin=True)
    return server


def tray_owned(display: str) -> bool:
    connection = Xlib.display.Display(display)
    try:
        owner = connection.get_selection_owner(connection.intern_atom("_NET_SYSTEM_TRAY_S0"))
        return owner != Xlib.X.NONE
    finally:
        connection.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(scaled(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def took_selection(xserver: XServer, process: subprocess.Popen[bytes]) -> bool:
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: tray_owned(xserver.display) or process.poll() is not None,
            FIRST / 3,
            "trayer owns the tray selection",
        )
    return process.poll() is None and tray_owned(xserver.display)


@pytest.fixture
def tray_host(xserver: XServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """trayer, once it owns the tray selection. A trayer that exits or has not taken the
    selection after a third of the time is started again (its stderr is in the failure)."""
    trayer = require_tool("trayer")
    log = tmp_path / "trayer.log"
    argv = [trayer, "--edge", "top", "--align", "right", "--widthtype", "request"]
    argv += ["--height", "32"]
    for _attempt in range(3):
        with log.open("ab") as err:
            process = subprocess.Popen(argv, env=xserver.env, stdout=subprocess.DEVNULL, stderr=err)
        if took_selection(xserver, process):
            break
        stop(process)
    else:
        raise AssertionError(f"trayer did not take the tray selection: {log.read_text()[-2000:]}")
    try:
        yield process
    finally:
        stop(process)


def visible(xserver: XServer, title: str) -> str | None:
    found = xserver.run(
        "xdotool", "search", "--onlyvisible", "--name", f"^{title}$", check=False
    ).split()
    return found[0] if found else None


def icon(xserver: XServer, title: str, timeout: float = 30) -> str:
    """The tray icon's window once it shows ``title`` (docked: trayer mapped it)."""
    return wait_until(lambda: visible(xserver, title), timeout, f"tray icon titled {title!r}")


def open_menu(xserver: XServer, icon_window: str) -> str:
    """Click the icon as a person would; the menu window once it is mapped."""
    xserver.run("xdotool", "mousemove", "--window", icon_window, "5", "5", "click", "1")
    return wait_until(lambda: visible(xserver, MENU_TITLE), 30, "the tray menu window")


def menu_closed(xserver: XServer) -> bool:
    return visible(xserver, MENU_TITLE) is None


def start_tray_agent(
    relay: LiveServer, start_agent: Callable[..., AgentProcess], *extra: str
) -> tuple[AgentProcess, str]:
    async def go() -> tuple[AgentProcess, str]:
        api = await admin_api(relay)
        key = await api.issue_agent_key("pc")
        agent = start_agent(relay.url, key=key["key"], extra=("--tray", *extra))
        machine_id = await wait_online(api, timeout=scaled(FIRST))
        await api.aclose()
        return agent, machine_id

    agent, machine_id = asyncio.run(go())
    wait_until(lambda: '"event": "online"' in agent.log(), FIRST, "the agent's online log line")
    return agent, machine_id


def test_the_tray_shows_the_state_and_its_menu_chats_ends_and_exits(
    relay: LiveServer,
    xserver: XServer,
    tray_host: subprocess.Popen[bytes],
    start_agent: Callable[..., AgentProcess],
) -> None:
    port = relay.url.rsplit(":", 1)[1]
    connected = f"GuruConnect: connected to 127.0.0.1:{port}"
    agent, machine_id = start_tray_agent(relay, start_agent)
    window = icon(xserver, connected, FIRST)

    async def session() -> None:
        api = await admin_api(relay)
        try:
            await in_session(api)
        finally:
            await api.aclose()

    async def in_session(api: ApiClient) -> None:
        _session_id, viewer = await open_session(api, machine_id)
        try:
            await drive(viewer)
        finally:
            await viewer.close()

    async def drive(viewer: ViewerClient) -> None:
        dialog = await asyncio.to_thread(xserver.window, CONSENT, scaled(30))
        await asyncio.to_thread(xserver.press, dialog, "alt+a")
        await next_state(viewer, SessionState.STATE_ACTIVE, timeout=scaled(30))
        in_session = await asyncio.to_thread(
            icon, xserver, "GuruConnect: session in progress with root"
        )
        # Open chat from the menu.
        menu = await asyncio.to_thread(open_menu, xserver, in_session)
        await asyncio.to_thread(xserver.press, menu, "alt+o")
        await asyncio.to_thread(xserver.window, CHAT, scaled(30))
        await asyncio.to_thread(wait_until, lambda: menu_closed(xserver), 30, "menu closed")
        # End the session from the menu: the technician hears why.
        menu = await asyncio.to_thread(open_menu, xserver, in_session)
        await asyncio.to_thread(xserver.press, menu, "alt+e")
        ended = await next_state(viewer, SessionState.STATE_ENDED, timeout=scaled(30))
        assert ended.reason == "ended_at_machine"
        await asyncio.to_thread(icon, xserver, connected)

    asyncio.run(session())
    # Exit from the menu: the agent stops cleanly.
    menu = open_menu(xserver, window)
    xserver.press(menu, "alt+x")
    assert agent.wait(scaled(30)) == 0, agent.log()[-3000:]
    assert "stopped from the tray menu" in agent.log()


def test_offline_is_shown_and_an_unattended_agent_has_no_exit(
    relay: LiveServer,
    xserver: XServer,
    tray_host: subprocess.Popen[bytes],
    start_agent: Callable[..., AgentProcess],
) -> None:
    port = relay.url.rsplit(":", 1)[1]
    agent, _machine_id = start_tray_agent(relay, start_agent, "--unattended")
    window = icon(xserver, f"GuruConnect: connected to 127.0.0.1:{port}", FIRST)
    menu = open_menu(xserver, window)
    xserver.press(menu, "alt+x")  # no Exit here: nothing happens
    xserver.press(menu, "Escape")  # a round trip through the menu: alt+x was handled first
    wait_until(lambda: menu_closed(xserver), 30, "menu closed")
    assert agent.process.poll() is None
    relay.stop()
    icon(xserver, "GuruConnect: offline", 60)
    assert agent.process.poll() is None

"""Browser fixtures: Debian's Chromium driven by Playwright (sync API), against the real
server on loopback, one server per test module and one browser per test run.

Every page a test opens records its JavaScript errors, console errors, CSP violations and
dialogs; a test fails if an unexpected one happened. Screenshots go to
``artifacts/web/`` (gitignored) for a reviewer to look at.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    sync_playwright,
)

from guruconnect.server.web.routes import WIRE_BUNDLE

# The real agent's fixtures (Xvfb, the agent process) for the browser-to-real-agent test.
from tests.agent.conftest import start_agent, xserver  # noqa: F401
from tests.conftest import PASSWORD, Database, LiveServer, make_settings

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "web"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: One scaled unit for browser waits (milliseconds).
UNIT_MS = 1000


def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous helper that calls ``asyncio.run`` (the seeding helpers) in another
    thread: Playwright's sync API keeps an event loop running in the test's own thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result(30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip(f"{CHROMIUM} is not installed (make system installs it)")
    if not WIRE_BUNDLE.is_file():
        pytest.fail(f"{WIRE_BUNDLE} is missing: run `make setup` (npm ci + build)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server per module (SQLite: the API's behaviour on PostgreSQL is tested elsewhere)
    with an admin ``root`` and a technician ``tech``."""
    path = tmp_path_factory.mktemp("web") / "guruconnect.db"
    database = Database("sqlite", f"sqlite+aiosqlite:///{path}")
    server = LiveServer(make_settings(database), database).start()
    off_loop(server.create_user, "root", is_admin=True)
    off_loop(server.create_user, "tech")
    yield server
    server.stop()


@dataclass
class PageLog:
    """What a page did that a test may want to check (or must not have happened)."""

    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    #: Console messages about the CSP: "Refused to execute inline script ..."
    csp: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        if "Content Security Policy" in text:
            self.csp.append(text)
        else:
            self.console_errors.append(text)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@dataclass
class Browsing:
    context: BrowserContext
    page: Page
    log: PageLog
    base_url: str

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def login(self, username: str = "root", password: str = PASSWORD) -> None:
        self.goto("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("form.login button[type=submit]")
        self.page.wait_for_selector("#topbar:not([hidden])")

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def wait_js(page: Page, predicate: str, timeout_ms: int = 10 * UNIT_MS) -> None:
    """Wait until the JavaScript function ``predicate`` returns true in the page.

    Not ``page.wait_for_function``: its polling evaluates code with ``eval`` inside the
    page, which the pages' CSP (rightly) refuses; ``evaluate`` goes through DevTools.
    """
    waited = 0
    while not page.evaluate(predicate):
        if waited >= timeout_ms:
            raise AssertionError(f"not true within {timeout_ms} ms: {predicate}")
        page.wait_for_timeout(20)
        waited += 20


def open_page(browser: Browser, base_url: str, viewport: dict[str, int] = DESKTOP) -> Browsing:
    context = browser.new_context(viewport=viewport, base_url=base_url)  # type: ignore[arg-type]
    context.set_default_timeout(10 * UNIT_MS)
    page = context.new_page()
    log = PageLog()
    page.on("pageerror", lambda exc: log.errors.append(str(exc)))
    page.on("console", log.on_console)
    page.on("dialog", log.on_dialog)
    return Browsing(context, page, log, base_url)


@pytest.fixture
def web(browser: Browser, web_server: LiveServer) -> Iterator[Browsing]:
    """A fresh browser context (no cookies) at 1280x800; fails the test on a JS error, a
    dialog, or a CSP violation the test did not expect (tests that expect one clear it)."""
    browsing = open_page(browser, web_server.url)
    yield browsing
    browsing.context.close()
    log = browsing.log
    assert not log.errors, f"JavaScript errors: {log.errors}"
    assert not log.dialogs, f"dialogs opened: {log.dialogs}"
    assert not log.csp, f"CSP violations: {log.csp}"


class LoopThread:
    """An asyncio loop in a thread, for the protocol clients (agents) a browser test needs
    while the browser is driven synchronously from the test's own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()

"""Console push: how long from an agent connecting to its row saying "Online" in a browser.

Runs a real server (SQLite in a temporary directory) on loopback and Chromium (Playwright)
with two pages on the Machines view side by side:

* ``push``: today's page, told by the event stream (GET /api/console/events);
* ``poll 2 s (baseline)``: the Machines page as it was before the stream (re-read the whole
  list every 2 s), served to the second page in place of today's ``pages/machines.js``
  from git (``BASELINE_COMMIT``), so both are measured in the same run on the same load.

Each round disconnects the agent, waits until both pages show it Offline and a random
part of the poll period, then connects it and times (wall clock, the same host for both
sides) until each page's row says Online; a MutationObserver in the page notes the
moment. The ratio to the baseline is what matters; the load average is printed beside
each figure.

    .venv/bin/python bench/console.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from playwright.sync_api import Page, Route, sync_playwright

from guruconnect.client.peers import AgentClient
from guruconnect.server import admin
from guruconnect.server.background import BackgroundServer
from guruconnect.server.config import Settings
from guruconnect.server.log_setup import configure

T = TypeVar("T")
PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway bench user
CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
#: The last commit whose Machines page polled every 2 s.
BASELINE_COMMIT = "4f04c1fc9ea6e6206f1172c4cbab60cb6e3b7e5b"
#: The baseline page's poll period.
POLL_SECONDS = 2.0
MACHINES_JS = "src/guruconnect/server/web/static/js/pages/machines.js"

WATCH = """(id) => {
  window.__onlineAt = 0;
  const check = () => {
    const badge = document.querySelector(`tr[data-machine-id="${id}"] .badge`);
    const online = badge && badge.textContent === "Online";
    if (online && !window.__onlineAt) window.__onlineAt = Date.now();
  };
  if (window.__watch) window.__watch.disconnect();
  window.__watch = new MutationObserver(check);
  window.__watch.observe(document.body, { subtree: true, childList: true, characterData: true });
  check();
}"""


class Loop:
    """An asyncio loop in a thread for the agent while Playwright runs in this one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def baseline_source() -> str | None:
    """The old machines.js, from git; None outside a clone."""
    for ref in (BASELINE_COMMIT, BASELINE_COMMIT[:7]):
        try:
            return subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{ref}:{MACHINES_JS}"],
                capture_output=True,
                check=True,
                text=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
    return None


def wait_for(page: Page, expression: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.005)
    raise TimeoutError(expression)


def log_in(page: Page, url: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", "bench")
    page.fill("#password", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("#machine-list")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    configure("WARNING")
    old = baseline_source()
    loop = Loop()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            jwt_secret=secrets.token_urlsafe(48),
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            login_rate_limit="100000/minute",
            log_level="WARNING",
        )
        asyncio.run(admin.create_user(settings, "bench", PASSWORD, admin=True))
        server = BackgroundServer(settings)
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                login = http.post(
                    "/api/auth/login", json={"username": "bench", "password": PASSWORD}
                )
                token = login.json()["access_token"]
                key = http.post(
                    "/api/agent-keys",
                    json={"label": "bench"},
                    headers={"Authorization": f"Bearer {token}"},
                ).json()["key"]
            # The machine exists from its first connection on.
            first = loop.run(AgentClient.connect(server.url, key=key, hostname="BENCH-PC"))
            machine_id = first.auth.machine_id
            loop.run(first.close())
            samples = run_rounds(server.url, key, str(machine_id), old, loop, args.rounds)
        finally:
            server.stop()
            loop.stop()
    report(samples, args.rounds)


def run_rounds(
    url: str, key: str, machine_id: str, old: str | None, loop: Loop, rounds: int
) -> dict[str, list[tuple[float, float]]]:
    samples: dict[str, list[tuple[float, float]]] = {"push": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pages = {"push": browser.new_context().new_page()}
        if old is not None:
            samples["poll 2 s (baseline)"] = []
            baseline = browser.new_context().new_page()

            def serve_old(route: Route) -> None:
                route.fulfill(body=old, content_type="text/javascript")

            baseline.route("**/static/js/pages/machines.js", serve_old)
            pages["poll 2 s (baseline)"] = baseline
        for page in pages.values():
            log_in(page, url)
        wait_for(pages["push"], "() => document.documentElement.dataset.live === 'open'")
        offline = f"""() => document.querySelector('tr[data-machine-id="{machine_id}"] .badge')
            ?.textContent === 'Offline'"""
        for _ in range(rounds):
            for page in pages.values():
                wait_for(page, offline)
                page.evaluate(WATCH, machine_id)
            # A random phase: the baseline saw "Offline" right after one of its polls, and
            # connecting at once would always wait a full period for the next.
            time.sleep(random.uniform(0, POLL_SECONDS))
            started = time.time() * 1000
            agent = loop.run(AgentClient.connect(url, key=key, hostname="BENCH-PC"))
            load = os.getloadavg()[0]
            for name, page in pages.items():
                at = wait_for(page, "() => window.__onlineAt")
                samples[name].append((at - started, load))
            loop.run(agent.close())
        browser.close()
    return samples


def report(samples: dict[str, list[tuple[float, float]]], rounds: int) -> None:
    base_name = "poll 2 s (baseline)"
    base = statistics.median(s for s, _ in samples[base_name]) if base_name in samples else None
    print(f"agent connect -> row shows Online in the browser, {rounds} rounds, loopback")
    print(f"{'page':<22} {'p50 ms':>8} {'mean ms':>8} {'max ms':>8} {'ratio':>7} {'load1':>6}")
    for name, rows in samples.items():
        times = [t for t, _ in rows]
        p50 = statistics.median(times)
        ratio = f"{p50 / base:7.2f}" if base else "    n/a"
        load = statistics.fmean(load for _, load in rows)
        print(
            f"{name:<22} {p50:8.0f} {statistics.fmean(times):8.0f} {max(times):8.0f} "
            f"{ratio} {load:6.2f}"
        )
    if base is None:
        print("(no baseline: bench/console.py needs the git history for the old page)")


if __name__ == "__main__":
    main()

"""The whole path through the real nginx and Caddy with TLS: dashboard login in Chromium,
an agent key issued on the Agent keys page (its install command names the public URL),
the real agent over wss:// (a process on Xvfb, trusting the test CA with --ca-file), the
browser viewer over wss:// drawing the agent's screen, a customer's join link and download
(bound to the public https URL), and the client address the audit trail records
(X-Forwarded-For believed from a trusted proxy only).

``nginx-default-host`` is the shipped nginx file without its ``proxy_set_header Host``
lines: nginx then sends the upstream's address as Host, which once closed every viewer
socket with 4003; with GURUCONNECT_PUBLIC_URL set it works.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, expect

from guruconnect.agent.desktop_ui import CONSENT_TITLE
from guruconnect.server.background import free_port
from tests.agent.conftest import SCREEN, AgentProcess, XServer
from tests.agent.test_e2e import desktop_like, write_ppm
from tests.conftest import Database, LiveServer, make_settings
from tests.deploy.conftest import Pki, Proxy
from tests.timing import scaled, wait_until
from tests.web.conftest import UNIT_MS, Browsing, off_loop, open_page

pytestmark = pytest.mark.timeout(180)

#: A screen region compared pixel for pixel (raw tiles are lossless).
REGION = (slice(440, 600), slice(40, 296))  # rows, columns; no window covers it
#: A client address other than the proxy's (Linux routes all of 127/8 to loopback).
CLIENT = "127.0.0.2"
SPOOFED = "203.0.113.9"


@pytest.fixture(scope="module")
def picture(xserver: XServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A known picture over the whole agent screen."""
    rgb = desktop_like(*SCREEN, seed=11)
    xserver.app("picture.py", write_ppm(tmp_path_factory.mktemp("pic") / "bg.ppm", rgb), 0, 0)
    yield
    xserver.stop_children()


#: What the join page serves as the Linux agent in these tests.
JOIN_AGENT = b"\x7fELF join agent through the proxy " * 64


def behind_proxy(
    tmp_path: Path, port: int, *, trusted: bool = True, public: bool = True
) -> LiveServer:
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'guruconnect.db'}")
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "guruconnect-linux-x86_64").write_bytes(JOIN_AGENT)
    settings = make_settings(
        database,
        public_url=f"https://localhost:{port}" if public else None,
        trusted_proxies=["127.0.0.1"] if trusted else [],
        agent_dist_dir=dist,
    )
    return LiveServer(settings, database).start()


def new_support_code(server: LiveServer) -> dict[str, str]:
    response = server.client(token=server.login("root")).post("/api/support-codes")
    assert response.status_code == 201, response.text
    issued: dict[str, str] = response.json()
    return issued


def failed_login_source(server: LiveServer, proxy: Proxy, pki: Pki) -> str:
    """A wrong password sent through the proxy from CLIENT, with a forged X-Forwarded-For;
    returns the source address the audit trail recorded for it."""
    transport = httpx.HTTPTransport(local_address=CLIENT, verify=pki.client_context())
    with httpx.Client(base_url=proxy.url, transport=transport, timeout=15) as client:
        response = client.post(
            "/api/auth/login",
            json={"username": "nobody", "password": "wrong"},
            headers={"X-Forwarded-For": SPOOFED, "X-Real-IP": SPOOFED},
        )
    assert response.status_code == 401, response.text
    rows = wait_until(
        lambda: off_loop(server.events, "auth.login_failed"), 10, "the failed login audited"
    )
    return str(rows[-1].source_address)


def screen_region(xserver: XServer) -> np.ndarray:
    """REGION as the X server shows it now (read independently of the agent), as RGBA."""
    rows, cols = REGION
    expected = xserver.screenshot()[rows, cols][..., [2, 1, 0, 3]]
    expected[..., 3] = 255
    return expected


def canvas_matches(web: Browsing, expected: np.ndarray) -> bool:
    rows, cols = REGION
    data: dict[str, Any] = web.page.evaluate(
        """([x, y, w, h]) => {
            const c = document.getElementById("screen");
            if (!c || c.width === 0) return {w: 0, h: 0, px: []};
            return {w: c.width, h: c.height,
                    px: Array.from(c.getContext("2d").getImageData(x, y, w, h).data)};
        }""",
        [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start],
    )
    if (data["w"], data["h"]) != SCREEN:
        return False
    drawn = np.array(data["px"], dtype=np.uint8).reshape(expected.shape)
    return bool(np.array_equal(drawn, expected))


@pytest.mark.parametrize("kind", ["nginx", "nginx-default-host", "caddy"])
def test_whole_path_through_the_proxy(
    kind: str,
    browser: Browser,
    pki: Pki,
    proxies: Callable[..., Proxy],
    xserver: XServer,
    picture: None,
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
) -> None:
    port = free_port()
    server = behind_proxy(tmp_path, port)
    try:
        off_loop(server.create_user, "root", is_admin=True)
        upstream = int(server.url.rsplit(":", 1)[1])
        proxy = proxies(
            kind.split("-")[0],
            upstream=upstream,
            port=port,
            pki=pki,
            where=tmp_path / kind,
            default_host=kind == "nginx-default-host",
        )

        # X-Forwarded-For from the trusted proxy is the client's address, not a forged one.
        assert failed_login_source(server, proxy, pki) == CLIENT

        # Dashboard login in Chromium, over https through the proxy.
        web = open_page(browser, proxy.url)
        try:
            started = time.monotonic()
            web.login()
            print(f"\n{kind}: dashboard login through the proxy {time.monotonic() - started:.2f} s")
            assert web.page.url.startswith(proxy.url)
            cookies = web.context.cookies()
            assert [c["secure"] for c in cookies if c["name"] == "guruconnect_session"] == [True]

            # An agent key from the Agent keys page; the install command names the public URL.
            web.goto("/agent-keys")
            web.page.fill("#key-label", f"proxied {kind}")
            web.page.click("button[type=submit]")
            key = web.page.locator("#new-key").input_value(timeout=10 * UNIT_MS)
            command = web.page.locator("#install-0").input_value()
            assert f"--server {proxy.url}" in command, command

            # The real agent over wss:// through the proxy, trusting the test CA.
            agent = start_agent(
                proxy.url,
                key=key,
                extra=("--ca-file", str(pki.ca_file), "--h264-encoders", "none"),
            )
            web.goto("/machines")
            row = web.page.locator("tr", has_text=f"proxied {kind}")
            try:
                expect(row.locator(".badge")).to_have_text("Online", timeout=30 * UNIT_MS)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; agent log: {agent.log()[-2000:]}") from None

            # The browser viewer over wss:// through the proxy.
            # The Machines list opens the viewer in a tab of its own.
            with web.context.expect_page() as opened:
                row.get_by_role("button", name=re.compile(r"^Control ")).click()
            web.page = opened.value
            web.page.on("pageerror", lambda exc: web.log.errors.append(str(exc)))
            web.page.on("console", web.log.on_console)
            web.page.wait_for_url(re.compile(r"/viewer/"))
            expect(web.page.locator("#status")).to_have_text("Waiting for consent…")
            xserver.answer(CONSENT_TITLE, "alt+a")
            expect(web.page.locator("#status")).to_have_text(
                "Connected · you have control", timeout=15 * UNIT_MS
            )
            deadline = time.monotonic() + scaled(30)
            while not canvas_matches(web, screen_region(xserver)):
                assert time.monotonic() < deadline, agent.log()[-2000:]
                web.page.wait_for_timeout(100)
            web.shot(f"deploy-{kind}-viewer", full_page=False)

            # A customer's join link and download through the proxy: the file is bound to
            # the code and to the public https URL, not to the proxy's upstream.
            issued = off_loop(new_support_code, server)
            code = issued["code"]
            assert issued["join_url"] == f"{proxy.url}/join/{code}"
            web.page.goto(issued["join_url"])
            link = web.page.locator("a[data-platform=linux-x86_64]")
            with web.page.expect_download(timeout=15 * UNIT_MS) as info:
                link.click()
            download = info.value
            assert download.suggested_filename == f"guruconnect-join_{code}_https_localhost_{port}"
            assert Path(download.path()).read_bytes() == JOIN_AGENT
            assert not web.log.errors, web.log.errors
            assert not web.log.csp, web.log.csp
            assert agent.process.poll() is None, agent.log()[-2000:]
            assert "4003" not in agent.log()
        finally:
            web.context.close()
    finally:
        server.stop()


def test_untrusted_proxy_is_not_believed(
    pki: Pki, proxies: Callable[..., Proxy], tmp_path: Path
) -> None:
    """Without GURUCONNECT_TRUSTED_PROXIES the proxy's X-Forwarded-For is ignored: the
    audit trail names the proxy (it is the peer), never the forged or the client address."""
    port = free_port()
    server = behind_proxy(tmp_path, port, trusted=False)
    try:
        upstream = int(server.url.rsplit(":", 1)[1])
        proxy = proxies("nginx", upstream=upstream, port=port, pki=pki, where=tmp_path / "nginx")
        assert failed_login_source(server, proxy, pki) == "127.0.0.1"
        # The plain-HTTP server block only redirects to https.
        http_port = int(re.findall(r"listen 127\.0\.0\.1:(\d+);", proxy_site(tmp_path))[0])
        response = httpx.get(f"http://127.0.0.1:{http_port}/login", timeout=10)
        assert response.status_code == 301
        assert response.headers["location"] == "https://127.0.0.1/login"
    finally:
        server.stop()


def proxy_site(tmp_path: Path) -> str:
    return (tmp_path / "nginx" / "site.conf").read_text()

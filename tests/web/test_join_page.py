"""The customer's join page in Chromium: a code (from the link or typed) shows who asks,
for which company and what for, and downloads the agent named after the code; a wrong,
used or expired code all get the same answer; lookups share the redemption limiter."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import update

from guruconnect.client import AgentClient, Refused
from guruconnect.server.db.schema import support_codes, users
from guruconnect.server.db.types import utcnow
from tests.conftest import Database, LiveServer, make_settings
from tests.web.conftest import Browsing, off_loop, open_page

AGENT_BYTES = os.urandom(64 * 1024)


def seed(server: LiveServer) -> None:
    server.create_tenant("Acme IT")
    server.create_user("root", is_admin=True, tenant="Acme IT")
    server.create_user("tech", tenant="Acme IT")
    server.database.sql(
        update(users).where(users.c.username == "tech").values(display_name="Dana from Acme")
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    (folder / "guruconnect-linux-x86_64").write_bytes(AGENT_BYTES)
    return folder


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory, dist: Path) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("join") / "guruconnect.db"
    database = Database("sqlite", f"sqlite+aiosqlite:///{path}")
    settings = make_settings(database, agent_dist_dir=dist, support_code_rate_limit="1000/minute")
    server = LiveServer(settings, database).start()
    off_loop(seed, server)
    yield server
    server.stop()


def new_code(server: LiveServer) -> dict[str, str]:
    token = server.login("tech")
    response = server.client(token=token).post("/api/support-codes")
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def file_name(server: LiveServer, code: str) -> str:
    port = server.url.rsplit(":", 1)[1]
    return f"guruconnect-join_{code}_http_127.0.0.1_{port}"


def test_the_link_shows_who_asks_and_downloads_the_bound_agent(
    web: Browsing, web_server: LiveServer
) -> None:
    issued = new_code(web_server)
    code = issued["code"]
    assert issued["join_url"] == f"{web_server.url}/join/{code}"
    page = web.page
    web.goto(f"/join/{code}")
    expect(page.locator("#join-technician")).to_have_text("Dana from Acme")
    expect(page.locator("#join-company")).to_have_text("Acme IT")
    expect(page.locator("#join-purpose")).to_contain_text("see and control this computer")
    port = web_server.url.rsplit(":", 1)[1]
    expect(page.locator("#join-open-app")).to_have_attribute(
        "href", f"guruconnect://join?server=http://127.0.0.1:{port}&code={code}"
    )
    link = page.locator("a[data-platform=linux-x86_64]")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == file_name(web_server, code)
    assert Path(download.path()).read_bytes() == AGENT_BYTES
    web.shot("join-page")


def test_a_typed_code_is_normalised(web: Browsing, web_server: LiveServer) -> None:
    code = new_code(web_server)["code"]
    page = web.page
    web.goto("/join")
    page.fill("#join-code", code.lower().replace("-", ""))
    page.click("#join-go")
    expect(page.locator("#join-code-shown")).to_have_text(code)
    page.wait_for_url(re.compile(r"/join/" + code.replace("-", "").lower() + "$", re.I))


def test_wrong_used_and_expired_codes_look_the_same(web: Browsing, web_server: LiveServer) -> None:
    used = new_code(web_server)["code"]

    async def redeem() -> None:
        client = await AgentClient.connect(web_server.url, code=used)
        await client.close()

    off_loop(asyncio.run, redeem())
    expired = new_code(web_server)["code"]
    assert expired
    off_loop(
        web_server.database.sql,
        update(support_codes)
        .where(support_codes.c.redeemed_at.is_(None))
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    answers = set()
    http = web_server.client()
    for code in ("ABCDE-FGHJK", used, expired, "not a code", "K7QX2-MZ9R0"):
        for path in (f"/join/{code}/details", f"/join/{code}/download/linux-x86_64"):
            response = http.get(path)
            answers.add((response.status_code, response.text))
    assert answers == {
        (404, '{"detail":"This code is not valid: it may be mistyped, already used or expired."}')
    }
    web.goto(f"/join/{used}")
    expect(page_alert := web.page.locator("#join-status")).to_have_text(
        "This code is not valid: it may be mistyped, already used or expired."
    )
    expect(page_alert).to_be_visible()
    assert web.page.locator("a[data-platform]").count() == 0
    # The page itself is the same for every code: nothing to read from it.
    assert http.get(f"/join/{used}").text == http.get("/join/ABCDE-FGHJK").text


def test_the_support_codes_page_shows_the_link_to_send(
    web: Browsing, web_server: LiveServer
) -> None:
    web.login("tech")
    web.goto("/support-codes")
    web.page.click("#create-code")
    code = web.page.locator("#code-value").inner_text()
    expect(web.page.locator("#code-join-url")).to_have_text(f"{web_server.url}/join/{code}")
    expect(web.page.locator("#copy-join-url")).to_be_visible()


def test_lookups_and_downloads_share_the_redemption_limit(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, dist: Path
) -> None:
    path = tmp_path_factory.mktemp("joinrate") / "guruconnect.db"
    database = Database("sqlite", f"sqlite+aiosqlite:///{path}")
    settings = make_settings(database, agent_dist_dir=dist, support_code_rate_limit="3/minute")
    server = LiveServer(settings, database).start()
    try:
        off_loop(seed, server)
        code = new_code(server)["code"]
        http = server.client()
        assert http.get(f"/join/{code}/details").status_code == 200
        assert http.get("/join/ABCDE-FGHJK/details").status_code == 404
        assert http.get(f"/join/{code}/download/linux-x86_64").status_code == 200
        limited = http.get(f"/join/{code}/details")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1

        async def redeem() -> None:
            with pytest.raises(Refused) as refused:
                await AgentClient.connect(server.url, code=code)
            assert "too many support code attempts" in str(refused.value.reason)

        # The agent's redemption counts in the same window: the page used it up.
        off_loop(asyncio.run, redeem())
        web = open_page(browser, server.url)
        try:
            web.goto(f"/join/{code}")
            expect(web.page.locator("#join-status")).to_contain_text("Too many code attempts")
        finally:
            web.context.close()
    finally:
        server.stop()


def test_downloads_need_a_known_platform(web_server: LiveServer) -> None:
    code = new_code(web_server)["code"]
    http: httpx.Client = web_server.client()
    for platform in ("../../etc/passwd", "windows-x86_64", "linux-x86_64/..", "%2e%2e"):
        response = http.get(f"/join/{code}/download/{platform}")
        assert response.status_code == 404, platform
    assert http.get(f"/join/{code}/details").json()["downloads"][0]["platform"] == "linux-x86_64"

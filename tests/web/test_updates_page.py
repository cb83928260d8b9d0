"""The pages for releases in Chromium: working install commands on the Agent keys page
once a release is published, and the Updates page (releases, pin, pause, offer now)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from guruconnect.server import admin
from tests.conftest import Database, LiveServer, make_settings
from tests.web.conftest import PHONE, Browsing, off_loop, open_page

BODY = b"\x7fELF the agent"


@pytest.fixture(scope="module")
def release_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("web-releases")
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp / 'guruconnect.db'}")
    server = LiveServer(make_settings(database, home=tmp / "data"), database).start()
    off_loop(server.create_user, "root", is_admin=True)
    private, _, _ = admin.release_keygen(tmp / "offline")
    artifact = tmp / "agent"
    artifact.write_bytes(BODY)

    def publish() -> None:
        asyncio.run(
            admin.publish_release(
                server.settings, artifact, version="1.2.0", platform="linux", arch="x86_64",
                key_file=private,
            )
        )  # fmt: skip

    off_loop(publish)
    yield server
    server.stop()


@pytest.fixture
def page_on(browser: Browser, release_server: LiveServer) -> Iterator[Browsing]:
    web = open_page(browser, release_server.url)
    yield web
    web.context.close()
    assert not web.log.errors, web.log.errors
    assert not web.log.csp, web.log.csp


def test_install_commands_download_verify_and_carry_the_new_key(
    page_on: Browsing, release_server: LiveServer
) -> None:
    page = page_on.page
    page_on.login()
    page_on.goto("/agent-keys")
    page.fill("#key-label", "reception")
    page.get_by_role("button", name="Issue a key").click()
    key = page.locator("#new-key").input_value()
    linux = page.locator("#install-0").input_value()
    assert f"{release_server.url}/downloads/guruconnect-agent-1.2.0-linux-x86_64" in linux
    assert f"echo '{hashlib.sha256(BODY).hexdigest()}  guruconnect-agent' | sha256sum -c -" in linux
    assert f"printf '%s\\n' '{key}' > agent.key" in linux
    assert "__AGENT_KEY__" not in linux
    assert "systemctl enable --now guruconnect-agent" in linux
    # No Windows release: the Windows line stays the one for an installed agent.
    assert "guruconnect.exe" in page.locator("#install-1").input_value()
    page_on.shot("agent-key-install-commands")


def test_updates_page_pins_pauses_and_offers(page_on: Browsing) -> None:
    page = page_on.page
    page_on.login()
    page_on.goto("/updates")
    expect(page.locator("#release-list")).to_contain_text("1.2.0")
    expect(page.locator("#release-list")).to_contain_text("linux/x86_64")
    page.select_option("#policy-scope", "client")
    page.fill("#policy-client", "Acme")
    page.fill("#policy-pinned", "1.1.0")
    page.get_by_role("button", name="Save policy").click()
    row = page.locator("#policy-list tr", has_text="Client Acme")
    expect(row).to_contain_text("1.1.0")
    expect(row.locator(".badge")).to_have_text("on")
    page.select_option("#policy-scope", "tenant")
    page.check("#policy-paused")
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator("#policy-list tr", has_text="All machines").locator(".badge")).to_have_text(
        "paused"
    )
    page.get_by_role("button", name="Offer updates now").click()
    expect(page.locator("p.ok[role=status]")).to_have_text("Offered to 0 connected agents")
    page_on.shot("updates")
    for scope in ("Client Acme", "All machines"):
        target = page.locator("#policy-list tr", has_text=scope)
        target.get_by_role("button", name="Remove").click()
        target.get_by_role("button", name="Remove now?").click()
        expect(page.locator("#policy-list tr", has_text=scope)).to_have_count(0)


def test_updates_page_fits_a_phone(browser: Browser, release_server: LiveServer) -> None:
    web = open_page(browser, release_server.url, PHONE)
    try:
        web.login()
        web.goto("/updates")
        web.page.wait_for_selector("#release-list table")
        overflow = web.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"/updates is {overflow} px wider than the phone"
        web.shot("phone-updates")
    finally:
        web.context.close()
    assert not web.log.errors

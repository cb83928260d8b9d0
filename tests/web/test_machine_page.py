"""The machine page (/machines/<id>) in Chromium against the real server: rename, notes and
tags, file it under a new client and site, re-key, its session history, forget it; axe
finds nothing serious at desktop and phone width; screenshots go to artifacts/web/."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from playwright.sync_api import Browser, expect
from sqlalchemy import insert, select

from guruconnect.server.db.schema import machines, sessions, tenants, users
from tests.conftest import LiveServer
from tests.web.axe import assert_accessible
from tests.web.conftest import PHONE, Browsing, off_loop, open_page


def seed_machine(server: LiveServer, name: str) -> uuid.UUID:
    """An offline machine of the default tenant with one ended session run by root."""
    [tenant] = off_loop(
        server.database.sql, select(tenants.c.id).where(tenants.c.name == "default")
    )
    [root] = off_loop(server.database.sql, select(users.c.id).where(users.c.username == "root"))
    machine_id, now = uuid.uuid4(), datetime.now(UTC)
    off_loop(
        server.database.sql,
        insert(machines).values(
            id=machine_id,
            tenant_id=tenant.id,
            name=name,
            hostname="host-7",
            consent_policy="ask",
            online=False,
            created_at=now,
        ),
    )
    off_loop(
        server.database.sql,
        insert(sessions).values(
            id=uuid.uuid4(),
            tenant_id=tenant.id,
            machine_id=machine_id,
            technician_id=root.id,
            kind="attended",
            scope="control",
            state="ended",
            created_at=now,
            ended_at=now,
            end_reason="ended_by_technician",
            node_id="default",
        ),
    )
    return machine_id


def test_manage_a_machine_from_its_page(
    web: Browsing, web_server: LiveServer, browser: Browser
) -> None:
    page = web.page
    machine_id = seed_machine(web_server, "pc-web")
    web.login()
    web.goto(f"/machines/{machine_id}")
    heading = page.locator("main h1")
    expect(heading).to_have_text("pc-web")
    # The Machines tab stays current; the history shows the seeded session.
    expect(page.locator("#nav [aria-current=page]")).to_have_text("Machines")
    history = page.locator("#machine-history tbody tr")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("root")
    expect(history.first).to_contain_text("ended by technician")

    # Rename, notes, tags.
    page.fill("#machine-name", "Front desk")
    page.fill("#machine-notes", "Printer on the left")
    page.fill("#machine-tags", "front, win 11, front")
    page.click("#save-details")
    expect(page.locator("#machine-saved")).to_have_text("Saved name, notes and tags.")
    expect(heading).to_have_text("Front desk")
    expect(page.locator("#machine-tags")).to_have_value("front, win 11")

    # A malformed tag: the server's message, and nothing saved.
    page.fill("#machine-tags", "ok, <b>")
    page.click("#save-details")
    expect(page.locator("#machine-error")).to_contain_text("a tag is 1 to 32")
    web.log.console_errors.clear()  # the browser logs the refused request (HTTP 422)

    # A new client and a site of it, then file the machine there.
    page.fill("#new-client", "Acme")
    page.click("#add-client")
    expect(page.locator("#machine-client option:checked")).to_have_text("Acme")
    page.fill("#new-site", "HQ")
    page.click("#add-site")
    expect(page.locator("#machine-site option:checked")).to_have_text("HQ")
    page.click("#save-grouping")
    expect(page.locator("#machine-saved")).to_have_text("Saved client and site.")
    facts = page.locator("#machine-facts")
    expect(facts).to_contain_text("Acme")
    expect(facts).to_contain_text("HQ")

    # Re-key: the new key is shown once, and listed (by its prefix) as active.
    page.click("#rekey")
    page.click("#rekey")  # confirm
    expect(page.locator("#new-machine-key")).to_have_value(re.compile(r"^cak_"))
    expect(page.locator("#machine-keys tbody tr")).to_have_count(1)

    findings = assert_accessible(page)
    web.shot("machine-page")
    phone = open_page(browser, web_server.url, PHONE)
    try:
        phone.login()
        phone.goto(f"/machines/{machine_id}")
        expect(phone.page.locator("main h1")).to_have_text("Front desk")
        expect(phone.page.locator("#machine-history tbody tr")).to_have_count(1)
        findings += assert_accessible(phone.page)
        phone.shot("machine-page-phone")
        assert not phone.log.errors
    finally:
        phone.context.close()
    print("axe (minor/moderate) on the machine page:", [f["id"] for f in findings])

    # Forget: back to the list, and the machine is gone from it.
    page.click("#forget")
    page.click("#forget")  # confirm
    page.wait_for_url(re.compile(r"/machines$"))
    expect(page.locator(f"[data-machine-id='{machine_id}']")).to_have_count(0)
    with web_server.client(token=web_server.login("root")) as api:
        assert api.get(f"/api/machines/{machine_id}").status_code == 404
    web.goto(f"/machines/{machine_id}")
    expect(page.locator("#machine-error")).to_contain_text("machine not found")
    web.log.console_errors.clear()

"""Account security and the audit page in Chromium against the real server: change your
password, set up two-factor login and log in with it, an admin's reset forcing a change,
and the audit page's vocabulary, readable details and export. The account page and the
login's code step are checked with axe-core and photographed into artifacts/web/."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import pyotp
from playwright.sync_api import Browser, expect

from tests.conftest import PASSWORD, LiveServer
from tests.web.axe import assert_accessible
from tests.web.conftest import PHONE, Browsing, off_loop, open_page

NEW_PASSWORD = "my brand new passphrase"


def test_change_your_own_password(web: Browsing, web_server: LiveServer, browser: Browser) -> None:
    off_loop(web_server.create_user, "carol")
    elsewhere = off_loop(web_server.login, "carol")
    page = web.page
    web.login("carol")
    page.get_by_role("link", name="Account").click()
    page.wait_for_url(re.compile(r"/account$"))
    expect(page.locator("#mfa-state")).to_contain_text("Off")
    assert_accessible(page)
    web.shot("account")

    page.fill("#account-current", PASSWORD)
    page.fill("#account-new", NEW_PASSWORD)
    page.fill("#account-confirm", NEW_PASSWORD + "x")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-form-status")).to_have_text("The two new passwords differ.")
    page.fill("#account-current", "not my password")
    page.fill("#account-confirm", NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-form-status")).to_have_text("The current password is wrong")
    page.fill("#account-current", PASSWORD)
    page.fill("#account-new", NEW_PASSWORD)
    page.fill("#account-confirm", NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password-form-status")).to_contain_text(
        "Password changed. 1 other session was logged out."
    )
    # This browser stays logged in; the other session is over.
    page.get_by_role("link", name="Machines").click()
    page.wait_for_url(re.compile(r"/machines$"))
    assert web_server.client(token=elsewhere).get("/api/auth/me").status_code == 401

    phone = open_page(browser, web_server.url, PHONE)
    try:
        phone.login("carol", NEW_PASSWORD)
        phone.goto("/account")
        expect(phone.page.locator("#password-form")).to_be_visible()
        phone.shot("account-phone")
    finally:
        phone.context.close()


def test_set_up_two_factor_login_and_log_in_with_it(web: Browsing, web_server: LiveServer) -> None:
    off_loop(web_server.create_user, "dave")
    page = web.page
    web.login("dave")
    web.goto("/account")
    page.fill("#mfa-setup-password", PASSWORD)
    page.get_by_role("button", name="Set up two-factor login").click()
    qr = page.locator("#mfa-qr")
    expect(qr).to_be_visible()
    assert (qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    # The QR code is an image that really drew (a data: URL the CSP allows).
    assert page.evaluate("() => document.getElementById('mfa-qr').naturalWidth") > 0
    totp = pyotp.TOTP(page.locator("#mfa-secret").inner_text())
    step = totp.timecode(datetime.now(UTC))
    page.fill("#mfa-enable-code", totp.generate_otp(step))
    page.get_by_role("button", name="Turn on two-factor login").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    web.shot("account-mfa-recovery-codes")
    page.get_by_role("button", name="I saved them").click()
    expect(page.locator("#mfa-state")).to_contain_text("On. 10 recovery codes left.")

    page.click("#logout")
    page.wait_for_url(re.compile(r"/login$"))
    page.fill("#username", "dave")
    page.fill("#password", PASSWORD)
    page.click("form.login button[type=submit]")
    expect(page.locator("#mfa-form")).to_be_visible()
    expect(page.locator("#mfa-code")).to_be_focused()
    # The password alone opened no session.
    assert page.evaluate("() => fetch('/api/auth/me').then((r) => r.status)") == 401
    assert_accessible(page)
    web.shot("login-mfa")
    near = {totp.generate_otp(step + k) for k in range(-3, 4)}
    wrong = next(c for c in (f"{n:06d}" for n in range(1000)) if c not in near)
    page.fill("#mfa-code", wrong)
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#mfa-error")).to_have_text("Invalid code")
    page.fill("#mfa-code", totp.generate_otp(step + 1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/machines$"))
    expect(page.locator("#who-name")).to_have_text("dave")


def test_admin_reset_forces_a_change_at_the_next_login(
    web: Browsing, web_server: LiveServer, browser: Browser
) -> None:
    off_loop(web_server.create_user, "erin")
    page = web.page
    web.login("root")
    web.goto("/users")
    page.get_by_role("button", name="Reset password… of erin").click()
    page.fill("#reset-password", "temporary password 9")
    page.get_by_role("button", name="Set temporary password").click()
    expect(page.locator("main p.ok")).to_contain_text("must change it at their next login")

    erin = open_page(browser, web_server.url)
    try:
        erin.login("erin", "temporary password 9")
        erin.page.wait_for_url(re.compile(r"/account$"))
        expect(erin.page.locator("#account-banner")).to_contain_text("reset your password")
        erin.goto("/machines")  # nothing else until the password is changed
        erin.page.wait_for_url(re.compile(r"/account$"))
        erin.page.fill("#account-current", "temporary password 9")
        erin.page.fill("#account-new", NEW_PASSWORD)
        erin.page.fill("#account-confirm", NEW_PASSWORD)
        erin.page.get_by_role("button", name="Change password").click()
        erin.page.wait_for_url(re.compile(r"/machines$"))
        assert not erin.log.errors
    finally:
        erin.context.close()


def test_audit_page_vocabulary_details_and_export(web: Browsing, web_server: LiveServer) -> None:
    page = web.page
    web.login("root")
    web.goto("/audit")
    expect(page.locator("#audit-list tbody tr").first).to_be_visible()
    # The suggestions are the server's vocabulary: the type rows really carry.
    expect(page.locator("#audit-types option[value='session.created']")).to_have_count(1)
    expect(page.locator("#audit-types option[value='session.started']")).to_have_count(0)

    page.fill("#audit-type", "auth.login")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-list tbody tr:not([data-event-type='auth.login'])")).to_have_count(
        0
    )
    row = page.locator("#audit-list tbody tr").first
    expect(row.locator("td[data-label='What']")).to_have_text("Logged in")
    detail = row.locator("td[data-label='Detail']")
    expect(detail.locator("dt").first).to_have_text("jti")
    assert not detail.inner_text().lstrip().startswith("{")  # not raw JSON
    web.shot("audit-readable")

    with page.expect_download() as csv_download:
        page.click("#audit-export-csv")
    assert csv_download.value.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(csv_download.value.path().read_text())))
    assert rows
    assert {r["event_type"] for r in rows} == {"auth.login"}
    with page.expect_download() as jsonl_download:
        page.click("#audit-export-jsonl")
    lines = jsonl_download.value.path().read_text().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert len(parsed) == len(rows)
    assert parsed[0]["detail"]["jti"]

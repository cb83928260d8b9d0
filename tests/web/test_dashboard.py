"""Each dashboard page in Chromium against the real server: log in, machines (live, search,
filter), sessions, support codes (countdown, redemption), agent keys (issue once, revoke),
users (create, role, disable, access, revoke tokens), audit log (filter, pages). Every page
is photographed at 1280x800 and at a phone's width into artifacts/web/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from guruconnect.protocol import SessionState
from tests.conftest import PASSWORD, Database, LiveServer, make_settings
from tests.web.agents import ScriptedAgent
from tests.web.conftest import PHONE, UNIT_MS, Browsing, LoopThread, off_loop, open_page


def api_token(server: LiveServer, username: str = "root") -> str:
    return server.login(username)


def test_login_page_rejects_wrong_password_then_logs_in(web: Browsing) -> None:
    page = web.page
    web.goto("/machines")
    # Not logged in: sent to the login page, which remembers where to go.
    page.wait_for_url(re.compile(r"/login\?next=%2Fmachines$"))
    page.fill("#username", "root")
    page.fill("#password", "not the password")
    page.click("form.login button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Invalid username or password")
    expect(page.locator("#password")).to_have_value("")
    web.shot("login-error")
    page.fill("#password", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(re.compile(r"/machines$"))
    expect(page.locator("#who-name")).to_have_text("root")
    # Logging out ends the session on the server too.
    page.click("#logout")
    page.wait_for_url(re.compile(r"/login$"))
    web.goto("/users")
    page.wait_for_url(re.compile(r"/login\?next="))


def test_login_page_shows_the_rate_limit(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("ratelimit") / "guruconnect.db"
    database = Database("sqlite", f"sqlite+aiosqlite:///{path}")
    server = LiveServer(make_settings(database, login_rate_limit="2/minute"), database).start()
    try:
        off_loop(server.create_user, "root", is_admin=True)
        web = open_page(browser, server.url)
        page = web.page
        web.goto("/login")
        for _ in range(3):
            page.fill("#username", "root")
            page.fill("#password", "wrong password")
            page.click("form.login button[type=submit]")
            expect(page.locator("#login-error")).to_be_visible()
        expect(page.locator("#login-error")).to_have_text(
            re.compile(r"^Too many failed attempts\. Try again in \d+ seconds\.$")
        )
        # The button stays disabled while the limit holds.
        expect(page.locator("form.login button[type=submit]")).to_be_disabled()
        web.shot("login-rate-limited")
        assert off_loop(server.events, "auth.login_rate_limited")
        web.context.close()
    finally:
        server.stop()


@pytest.fixture
def agent(web_server: LiveServer, loop_thread: LoopThread) -> Iterator[ScriptedAgent]:
    key = web_server.client(token=api_token(web_server)).post(
        "/api/agent-keys", json={"label": "front desk"}
    )
    scripted = ScriptedAgent.connect(
        loop_thread, web_server.url, key=key.json()["key"], hostname="FRONT-DESK-PC"
    )
    yield scripted
    scripted.close()


def wait_live(web: Browsing) -> None:
    """Until the page's event stream (live.js) said "ready"."""
    web.page.wait_for_selector("html[data-live=open]", state="attached")


def test_machines_update_live_and_filter(
    web: Browsing, web_server: LiveServer, loop_thread: LoopThread
) -> None:
    page = web.page
    listed: list[str] = []  # GET /api/machines (the whole list), as the page asked for it
    page.on(
        "request",
        lambda r: listed.append(r.url) if r.url.endswith("/api/machines") else None,
    )
    web.login()
    wait_live(web)
    page.evaluate("() => { window.__sameDocument = true; }")
    expect(page.locator(".live-status")).to_have_text("Live")
    lists_before = len(listed)
    token = api_token(web_server)
    key = web_server.client(token=token).post("/api/agent-keys", json={"label": "accounting"})
    # The agent comes online after the page loaded: the row appears, pushed by the server:
    # no reload, and the list is not fetched again (no polling).
    agent = ScriptedAgent.connect(
        loop_thread, web_server.url, key=key.json()["key"], hostname="ACCT-LAPTOP-7"
    )
    row = page.locator(f"tr[data-machine-id='{agent.machine_id}']")
    expect(row.locator(".badge")).to_have_text("Online", timeout=5 * UNIT_MS)
    expect(row).to_contain_text("ACCT-LAPTOP-7")
    expect(row).to_contain_text("Debian GNU/Linux 13")
    expect(row).to_contain_text("0.1.0")
    # Both buttons say which machine they act on.
    expect(row.get_by_role("button", name="Control accounting", exact=True)).to_be_enabled()
    expect(row.get_by_role("button", name="View accounting", exact=True)).to_be_enabled()
    web.shot("machines")

    # Search narrows the list; the online/offline filter too.
    page.fill("#machine-search", "acct-lap")
    expect(page.locator("#machine-list tbody tr")).to_have_count(1)
    page.fill("#machine-search", "no such machine")
    expect(page.locator("#machine-list")).to_contain_text("No machine matches.")
    page.fill("#machine-search", "")

    # It goes offline: the row says so, with no reload, and Connect is disabled.
    agent.close()
    expect(row.locator(".badge")).to_have_text("Offline", timeout=5 * UNIT_MS)
    expect(row.get_by_role("button", name="Control accounting")).to_be_disabled()
    expect(row).to_contain_text(re.compile(r"just now|s ago"))
    assert len(listed) == lists_before, f"the list was polled: {listed[lists_before:]}"
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
    page.select_option("#machine-filter", "online")
    expect(row).to_have_count(0)
    page.select_option("#machine-filter", "offline")
    expect(row).to_have_count(1)


def test_machines_page_survives_the_stream_dropping(
    web: Browsing, web_server: LiveServer, agent: ScriptedAgent
) -> None:
    """No stream: the rows still load and the page says it is not live; once the stream is
    back (reconnected with a backoff) the page reloads and follows events again."""
    page = web.page
    page.route("**/api/console/events", lambda route: route.abort())
    web.login()
    row = page.locator(f"tr[data-machine-id='{agent.machine_id}']")
    expect(row.locator(".badge")).to_have_text("Online")
    expect(page.locator(".live-status")).to_contain_text("Reconnecting")
    page.unroute("**/api/console/events")
    expect(page.locator(".live-status")).to_have_text("Live", timeout=10 * UNIT_MS)
    agent.close()
    expect(row.locator(".badge")).to_have_text("Offline", timeout=5 * UNIT_MS)


def test_machines_filter_by_client(
    web: Browsing, web_server: LiveServer, agent: ScriptedAgent
) -> None:
    client = web_server.client(token=api_token(web_server))
    client.patch(f"/api/machines/{agent.machine_id}", json={"client_name": "Contoso"})
    page = web.page
    web.login()
    row = page.locator(f"tr[data-machine-id='{agent.machine_id}']")
    expect(row).to_contain_text("Contoso")
    page.get_by_label("Client").select_option("Contoso")
    expect(page.locator("#machine-list tbody tr")).to_have_count(1)
    page.get_by_label("Client").select_option("None / support codes")
    expect(row).to_have_count(0)


def test_focus_stays_on_its_button_across_pushed_updates(
    web: Browsing, web_server: LiveServer, loop_thread: LoopThread, agent: ScriptedAgent
) -> None:
    """Keyboard focus on a machine's Control button survives another machine coming
    online, and its own row being redrawn (before: the list was rebuilt every 2 s and the
    focus fell to <body>)."""
    page = web.page
    web.login()
    wait_live(web)
    mine = page.locator(f"tr[data-machine-id='{agent.machine_id}']")
    button = mine.get_by_role("button", name="Control front desk", exact=True)
    expect(button).to_be_enabled()
    button.focus()
    page.evaluate("() => { window.__focused = document.activeElement; }")
    # Another machine comes online: a row is added above or below.
    key = web_server.client(token=api_token(web_server)).post(
        "/api/agent-keys", json={"label": "another desk"}
    )
    other = ScriptedAgent.connect(
        loop_thread, web_server.url, key=key.json()["key"], hostname="OTHER-PC"
    )
    try:
        expect(page.locator(f"tr[data-machine-id='{other.machine_id}'] .badge")).to_have_text(
            "Online", timeout=5 * UNIT_MS
        )
        assert page.evaluate("() => document.activeElement === window.__focused")
        # Its own row changes (the agent reconnects under another hostname): the row is
        # redrawn and the focus moves to the new row's Control button, not to <body>.
        again = ScriptedAgent.connect(
            loop_thread, web_server.url, key=agent.key, hostname="FRONT-DESK-RENAMED"
        )
        try:
            expect(mine).to_contain_text("FRONT-DESK-RENAMED", timeout=5 * UNIT_MS)
            expect(button).to_be_focused()
        finally:
            again.close()
    finally:
        other.close()


def test_sessions_page_lists_joins_and_ends(
    web: Browsing, web_server: LiveServer, agent: ScriptedAgent
) -> None:
    page = web.page
    client = web_server.client(token=api_token(web_server))
    client.patch(f"/api/machines/{agent.machine_id}", json={"consent_policy": "unattended"})
    session = client.post(f"/api/machines/{agent.machine_id}/sessions", json={"scope": "control"})
    session_id = session.json()["id"]
    web.login()
    web.goto("/sessions")
    row = page.locator(f"tr[data-session-id='{session_id}']")
    expect(row.locator(".badge")).to_have_text("active")
    expect(row).to_contain_text("front desk")  # the machine's name
    expect(row).to_contain_text("root")  # the technician
    expect(row.get_by_role("link", name="Join")).to_have_attribute(
        "href", f"/viewer/{session_id}?scope=control"
    )
    web.shot("sessions")
    row.get_by_role("button", name="End").click()
    row.get_by_role("button", name="End now?").click()
    expect(row.locator(".badge")).to_have_text("ended")
    expect(row).to_contain_text("ended by a technician")
    state = agent.wait_for("session_state", lambda m: m.state == SessionState.STATE_ENDED)
    assert state.session_id == session_id


def test_support_code_shown_large_counts_down_and_sees_redemption(
    web: Browsing, web_server: LiveServer, loop_thread: LoopThread
) -> None:
    page = web.page
    web.login()
    web.goto("/support-codes")
    page.click("#create-code")
    code = page.locator("#code-value").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", code), code
    countdown = page.locator("#code-countdown")
    expect(countdown).to_have_text(re.compile(r"^Expires in (10:00|9:5\d)$"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3 * UNIT_MS)  # it ticks
    expect(page.locator("#code-state")).to_have_text("Waiting for the customer to enter it…")
    web.shot("support-code-waiting")
    # The customer's agent redeems it: the page says so and offers to join.
    customer = ScriptedAgent.connect(loop_thread, web_server.url, code=code, hostname="CUST-PC")
    try:
        expect(page.locator("#code-state")).to_contain_text("Redeemed at", timeout=5 * UNIT_MS)
        join = page.get_by_role("link", name="Join the session")
        expect(join).to_have_attribute(
            "href", f"/viewer/{customer.client.auth.session_id}?scope=control"
        )
        web.shot("support-code-redeemed")
    finally:
        customer.close()


def test_agent_key_issued_once_copied_and_revoked(
    web: Browsing, web_server: LiveServer, loop_thread: LoopThread
) -> None:
    page = web.page
    web.context.grant_permissions(["clipboard-read", "clipboard-write"])
    web.login()
    web.goto("/agent-keys")
    page.fill("#key-label", "warehouse scanner")
    page.get_by_role("button", name="Issue a key").click()
    key = page.locator("#new-key").input_value()
    assert key.startswith("cak_")
    expect(page.locator("#install-0")).to_have_value(
        f"GURUCONNECT_AGENT_KEY={key} guruconnect agent --server {web_server.url}"
    )
    expect(page.locator("#install-1")).to_have_value(
        re.compile(
            rf'^\$env:GURUCONNECT_AGENT_KEY="{key}"; & ".*guruconnect\.exe" agent --server '
            + re.escape(web_server.url)
            + "$"
        )
    )
    page.locator("#issued-key .copy-row").first.get_by_role("button", name="Copy").click()
    expect(page.locator("#issued-key .copied").first).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key
    web.shot("agent-key-issued")

    # The key works, until it is revoked from the page: its live agent is cut off.
    agent = ScriptedAgent.connect(loop_thread, web_server.url, key=key)
    row = page.locator("#key-list tr", has_text="warehouse scanner")
    expect(row.locator(".badge")).to_have_text("active")
    # Leaving the page forgets the key: it is never shown again.
    web.goto("/machines")
    web.goto("/agent-keys")
    expect(page.locator("#new-key")).to_have_count(0)
    assert key not in page.content()
    row.get_by_role("button", name="Revoke").click()
    row.get_by_role("button", name="Revoke now?").click()
    expect(row.locator(".badge")).to_have_text("revoked")
    web.shot("agent-keys")
    deadline = UNIT_MS * 5
    page.wait_for_timeout(0)
    for _ in range(deadline // 50):
        if agent.closed is not None:
            break
        page.wait_for_timeout(50)
    assert agent.closed is not None
    assert agent.closed.code == 4010


def test_users_create_role_disable_access_and_revoke(
    web: Browsing, web_server: LiveServer, agent: ScriptedAgent
) -> None:
    page = web.page
    web.login()
    web.goto("/users")
    page.fill("#new-username", "Dana")
    page.fill("#new-display-name", "Dana Scully")
    page.fill("#new-username", "Dana!")
    page.fill("#new-password", "a long enough password")
    page.get_by_role("button", name="Create user").click()
    # The API's own message, not a generic failure.
    expect(page.locator("p.error")).to_contain_text("username: String should match pattern")
    page.fill("#new-username", "Dana")
    page.get_by_role("button", name="Create user").click()
    row = page.locator("tr[data-username='dana']")
    expect(row).to_contain_text("Dana Scully")
    expect(row.get_by_label("Role of dana")).to_have_value("technician")

    # Client access: one machine.
    row.get_by_role("button", name="Access…").click()
    page.locator(f"#access-editor input[value='{agent.machine_id}']").check()
    page.get_by_role("button", name="Save access").click()
    expect(row).to_contain_text("0 clients, 1 machines")
    dana_token = web_server.login("dana", "a long enough password")
    machines = web_server.client(token=dana_token).get("/api/machines").json()
    assert [m["id"] for m in machines] == [agent.machine_id]

    # Revoke tokens: dana's token stops working at once.
    row.get_by_role("button", name="Revoke tokens").click()
    row.get_by_role("button", name="Log out everywhere?").click()
    expect(page.locator("p.ok")).to_have_text("Tokens of dana revoked")
    assert web_server.client(token=dana_token).get("/api/auth/me").status_code == 401

    # Role and disabling.
    row.get_by_label("Role of dana").select_option("admin")
    expect(page.locator("p.ok")).to_have_text("Role of dana set to admin")
    row.get_by_role("button", name="Disable").click()
    expect(row.locator(".badge")).to_have_text("disabled")
    web.shot("users")
    response = web_server.client().post(
        "/api/auth/login", json={"username": "dana", "password": "a long enough password"}
    )
    assert response.status_code == 401


def test_audit_log_filters_and_pages(
    web: Browsing, web_server: LiveServer, agent: ScriptedAgent
) -> None:
    page = web.page
    # A few failed logins, and enough logins for two pages of one type.
    for _ in range(3):
        web_server.client().post("/api/auth/login", json={"username": "tech", "password": "x"})
    for _ in range(55):
        web_server.login("tech")
    web.login()
    web.goto("/audit")
    expect(page.locator("#audit-list tbody tr").first).to_be_visible()
    web.shot("audit")
    page.fill("#audit-type", "auth.login_failed")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit-list tbody tr", has_text="tech")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("bad_password")
    expect(rows.first).to_contain_text("127.0.0.1")
    types = page.locator("#audit-list td[data-label='Event']").all_inner_texts()
    assert set(types) == {"auth.login_failed"}

    page.fill("#audit-type", "auth.login")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-list tbody tr")).to_have_count(50)
    expect(page.locator("#audit-newer")).to_be_disabled()
    # Each login event names its own token: the detail tells the rows apart.
    first_detail = page.locator("#audit-list td[data-label='Detail']").first
    newest = first_detail.inner_text()
    page.click("#audit-older")
    expect(page.locator("#audit-page")).to_have_text("Page 2")
    expect(first_detail).not_to_have_text(newest)
    older = page.locator("#audit-list td[data-label='Detail']").all_inner_texts()
    assert newest not in older
    page.click("#audit-newer")
    expect(first_detail).to_have_text(newest)

    # By user: only tech's logins.
    page.fill("#audit-type", "")
    page.select_option("#audit-user", label="tech")
    expect(page.locator("#audit-list tbody tr").first).to_contain_text("tech")
    for text in page.locator("#audit-list tbody td[data-label='Who']").all_inner_texts():
        assert text == "tech"

    # By machine: only that machine's rows (its agent connecting, at least).
    page.select_option("#audit-user", "")
    page.select_option("#audit-machine", agent.machine_id)
    expect(page.locator("#audit-list tbody tr", has_text="agent.connected")).not_to_have_count(0)
    # The unfiltered list (from clearing the user) may still be showing: wait for the
    # machine's own.
    cells = page.locator("#audit-list tbody td[data-label='Machine']")
    expect(cells.filter(has_not_text="front desk")).to_have_count(0)
    machines = cells.all_inner_texts()
    assert machines
    assert set(machines) == {"front desk"}

    # By session: a malformed id is refused in the page, an unknown one matches nothing.
    page.select_option("#audit-machine", "")
    page.fill("#audit-session", "not-an-id")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("main p.error")).to_have_text("The session id is not a valid id.")
    page.fill("#audit-session", str(uuid.uuid4()))
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-list")).to_have_text("No events match.")


@pytest.mark.parametrize(
    "path", ["/machines", "/sessions", "/support-codes", "/agent-keys", "/users", "/audit"]
)
def test_pages_fit_a_phone(browser: Browser, web_server: LiveServer, path: str) -> None:
    """At 390 px wide nothing overflows sideways and the navigation stays reachable."""
    web = open_page(browser, web_server.url, PHONE)
    try:
        web.login()
        web.goto(path)
        web.page.wait_for_selector("main h1")
        # Not "networkidle": the pages that follow the event stream keep a request open.
        web.page.wait_for_selector("main .table-wrap, main .empty, main form, main table")
        overflow = web.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow} px wider than the phone"
        expect(web.page.locator("#nav a[aria-current=page]")).to_be_in_viewport()
        web.shot(f"phone{path.replace('/', '-')}")
    finally:
        web.context.close()
    assert not web.log.errors

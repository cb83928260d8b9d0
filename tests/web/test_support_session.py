"""Issue 15 item 7, in the browser: a technician (not an admin) creates a support code, the
customer's agent redeems it, and the technician joins and controls the session from the
page; another technician opening the same viewer URL is told there is no such session."""

from __future__ import annotations

import numpy as np
from playwright.sync_api import Browser, expect

from guruconnect.protocol import MouseButton
from tests.conftest import LiveServer
from tests.web.agents import ScriptedAgent, screen_picture
from tests.web.conftest import UNIT_MS, Browsing, LoopThread, off_loop, open_page

WIDTH, HEIGHT = 256, 128


def test_technician_joins_and_controls_the_session_of_his_support_code(
    web: Browsing, web_server: LiveServer, loop_thread: LoopThread, browser: Browser
) -> None:
    page = web.page
    web.login("tech")
    web.goto("/support-codes")
    page.click("#create-code")
    code = page.locator("#code-value").inner_text()
    customer = ScriptedAgent.connect(
        loop_thread, web_server.url, code=code, hostname="CUST-PC", width=WIDTH, height=HEIGHT
    )
    try:
        session_id = customer.client.auth.session_id
        page.get_by_role("link", name="Join the session").click(timeout=5 * UNIT_MS)
        page.wait_for_url(f"**/viewer/{session_id}?scope=control")
        customer.grant_consent(session_id)
        customer.wait_for("keyframe_request")
        expect(page.locator("#status")).to_have_text("Connected · you have control")

        picture = screen_picture(WIDTH, HEIGHT)
        customer.show(picture, session_id)
        expect(page.locator("#overlay")).to_be_hidden()
        box = page.locator("#screen").bounding_box()
        assert box is not None
        page.locator("#screen").click(position={"x": box["width"] / 2, "y": box["height"] / 2})
        click = customer.wait_for(
            "mouse_event", lambda m: m.button == MouseButton.MOUSE_BUTTON_LEFT and m.down
        )
        assert (click.x, click.y) == (WIDTH // 2, HEIGHT // 2)
        assert np.any(picture)  # the picture the technician now sees (not all black)
        web.shot("support-session-technician")

        # Another technician with the same link gets nothing.
        off_loop(web_server.create_user, "tech-other")
        other = open_page(browser, web_server.url)
        try:
            other.login("tech-other")
            other.goto(f"/viewer/{session_id}?scope=control")
            expect(other.page.locator("#status")).to_have_text("No such session.")
            assert not other.log.errors
        finally:
            other.context.close()
        # ...and his attempt did not disturb the session.
        expect(page.locator("#status")).to_have_text("Connected · you have control")
    finally:
        customer.close()

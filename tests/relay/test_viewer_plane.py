"""The viewer plane under attack, over real WebSockets to the live server.

Each test is an attack that would succeed if the rule it names were removed: another
plane's credential, a replayed, foreign or expired ticket, a revoked user, a cross-site
page, a view-only viewer typing, a second controller, an input flood, an oversized frame,
a spoofed chat sender. Waits are bounded; ordering is proven with markers, never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pydantic
import pytest
import pytest_asyncio

from guruconnect.client import AgentClient, ApiClient, Connection, Refused, ViewerClient
from guruconnect.client.peers import ws_base
from guruconnect.protocol import (
    ChatMessage,
    ClipboardText,
    ControlRequest,
    DisplaySwitch,
    KeyEvent,
    MouseButton,
    MouseEvent,
    Scope,
    SessionState,
    SpecialKey,
    SpecialKeyEvent,
    VideoFrame,
    payload,
)
from guruconnect.protocol.close_codes import CloseCode
from tests.conftest import Database, LiveServer, make_settings
from tests.relay.conftest import Relay, events_of, eventually
from tests.timing import scaled

pytestmark = pytest.mark.asyncio

T = TypeVar("T")
INPUT_KINDS = {"key_event", "mouse_event", "special_key"}
#: What a viewer may only do while it holds control; none of it may reach the agent else.
CONTROL_ONLY_KINDS = INPUT_KINDS | {"clipboard", "display_switch"}
EVIL = "https://evil.example"
#: Revocation must reach an open socket within this (seconds): far below a heartbeat period
#: (15 s), so only a push to the socket can meet it; scaled for a loaded machine.
REVOCATION_LIMIT = scaled(2.0)


# -- helpers ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def track(server_factory: Callable[..., LiveServer]) -> AsyncIterator[Callable[[T], T]]:
    """Register clients to close at teardown (before the servers stop)."""
    del server_factory  # only to order the teardowns
    opened: list[Any] = []

    def add(thing: T) -> T:
        opened.append(thing)
        return thing

    yield add
    for thing in reversed(opened):
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                if isinstance(thing, ApiClient):
                    await thing.aclose()
                else:
                    await thing.close()


async def start_relay(factory: Callable[..., Relay], **settings: Any) -> Relay:
    """``relay_factory`` from inside a test (its seeding runs its own event loop)."""
    return await asyncio.to_thread(factory, **settings)


async def call(
    relay: Relay, token: str, method: str, path: str, json: Any = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=relay.url, timeout=15) as http:
        return await http.request(
            method, path, json=json, headers={"Authorization": f"Bearer {token}"}
        )


async def mint(relay: Relay, token: str, session_id: str, scope: str) -> httpx.Response:
    return await call(
        relay, token, "POST", f"/api/sessions/{session_id}/viewer-token", {"scope": scope}
    )


async def grant(
    relay: Relay,
    admin: ApiClient,
    user_id: str,
    *,
    machine_ids: list[str] | None = None,
    client_names: list[str] | None = None,
) -> None:
    response = await call(
        relay,
        admin.token,
        "PUT",
        f"/api/users/{user_id}/client-access",
        {"machine_ids": machine_ids or [], "client_names": client_names or []},
    )
    assert response.status_code == 200, response.text


async def live_session(
    relay: Relay, api: ApiClient, track: Callable[[Any], Any], *, label: str = "pc", **kw: Any
) -> tuple[AgentClient, str, str]:
    """An online agent (closed at teardown) and an active session on its machine."""
    agent, machine_id, _ = await relay.online_agent(api, label=label)
    track(agent)
    session_id = await relay.active_session(api, agent, machine_id, **kw)
    return agent, machine_id, session_id


async def refused(connecting: Awaitable[Connection]) -> Refused:
    """The connection the relay must refuse; fails if it is accepted."""
    try:
        async with asyncio.timeout(10):
            client = await connecting
    except Refused as exc:
        return exc
    await client.close()
    raise AssertionError("the relay accepted a connection it must refuse")


async def audited(relay: Relay, event_type: str, **detail: Any) -> Any:
    """The newest audit row of ``event_type`` whose detail has these values."""

    async def check() -> list[Any]:
        rows = await events_of(relay.server, event_type)
        return [r for r in rows if all(r.detail.get(k) == v for k, v in detail.items())]

    rows = await eventually(check, timeout=5)
    return rows[-1]


async def until_chat(conn: Connection, text: str, timeout: float = 5.0) -> list[tuple[str, Any]]:
    """Everything ``conn`` receives before the chat carrying ``text`` (the marker)."""
    seen: list[tuple[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"marker chat {text!r} not received within {timeout} s")
        try:
            name, message = payload(await conn.recv(remaining))
        except TimeoutError:
            raise AssertionError(f"marker chat {text!r} not received within {timeout} s") from None
        if name == "chat" and message.text == text:
            return seen
        seen.append((name, message))


async def state_where(
    viewer: ViewerClient, check: Callable[[SessionState], bool], timeout: float = 5.0
) -> SessionState:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching SessionState within {timeout} s")
        state: SessionState = await viewer.expect("session_state", timeout=remaining)
        if check(state):
            return state


async def closed_within(
    viewer: Connection, action: Callable[[], Awaitable[None]], limit: float = REVOCATION_LIMIT
) -> tuple[int | None, str, float]:
    """Run ``action`` and time how long until the relay closes ``viewer``."""
    start = time.monotonic()
    await action()
    try:
        code, why = await viewer.wait_closed(timeout=limit + 2)
    except TimeoutError:
        pytest.fail(f"the viewer is still open {limit + 2:.0f} s after losing access")
    return code, why, time.monotonic() - start


async def rows_with(relay: Relay, event_type: str, *, at_least: int, **detail: Any) -> list[Any]:
    """Audit rows of ``event_type`` with these detail values, once there are ``at_least``."""
    rows = await events_of(relay.server, event_type)
    matching = [r for r in rows if all(r.detail.get(k) == v for k, v in detail.items())]
    return matching if len(matching) >= at_least else []


async def chat_with_text(viewer: ViewerClient, text: str) -> Any:
    """The next chat ``viewer`` receives with this text (others are skipped)."""
    deadline = time.monotonic() + 5
    while True:
        chat = await viewer.expect("chat", timeout=max(0.01, deadline - time.monotonic()))
        if chat.text == text:
            return chat


async def still_receives(agent: AgentClient, viewer: ViewerClient, session_id: str) -> None:
    frame = VideoFrame(session_id=session_id, keyframe=True, data=b"\x07" * 2048)
    await agent.send(frame)
    assert (await viewer.expect("video_frame", timeout=5)) == frame


# -- credentials of other planes, missing ones, wrong sessions ----------------------------


@pytest.mark.parametrize("in_header", [False, True], ids=["query", "bearer"])
async def test_user_jwt_is_refused_on_viewer_plane(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any], in_header: bool
) -> None:
    _, _, session_id = await live_session(relay, admin_api, track)
    exc = await refused(
        ViewerClient.connect(relay.url, session_id, admin_api.token, ticket_in_header=in_header)
    )
    assert exc.code == CloseCode.UNAUTHORIZED
    row = await audited(relay, "viewer.auth_failed", reason="user_token_on_viewer_plane")
    assert row.source_address == "127.0.0.1"
    assert row.detail["close_code"] == CloseCode.UNAUTHORIZED


async def test_agent_key_is_refused_on_viewer_plane(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    agent, machine_id, key = await relay.online_agent(admin_api)
    track(agent)
    session_id = await relay.active_session(admin_api, agent, machine_id)
    for in_header in (False, True):
        exc = await refused(
            ViewerClient.connect(relay.url, session_id, key["key"], ticket_in_header=in_header)
        )
        assert exc.code == CloseCode.UNAUTHORIZED
    row = await audited(relay, "viewer.auth_failed", reason="agent_key_on_viewer_plane")
    assert row.source_address == "127.0.0.1"


async def test_missing_ticket_is_refused(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    _, _, session_id = await live_session(relay, admin_api, track)
    for query in (f"session_id={session_id}", f"session_id={session_id}&ticket="):
        conn = track(Connection(await Connection.open(f"{ws_base(relay.url)}/ws/viewer?{query}")))
        code, _ = await conn.wait_closed(timeout=5)
        assert code == CloseCode.UNAUTHORIZED
    await audited(relay, "viewer.auth_failed", reason="missing_credential")


async def test_bad_session_id_is_refused(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    _, _, session_id = await live_session(relay, admin_api, track)
    ticket = await admin_api.viewer_ticket(session_id)
    for bad in ("not-a-uuid", "", "1%27%20OR%20%271%27=%271"):
        exc = await refused(ViewerClient.connect(relay.url, bad, ticket))
        assert exc.code == CloseCode.SESSION_NOT_FOUND
    await audited(relay, "viewer.auth_failed", reason="bad_session_id")
    # A well-formed id of no live session: the ticket is not for it.
    nowhere = str(uuid.uuid4())
    exc = await refused(ViewerClient.connect(relay.url, nowhere, ticket))
    assert exc.code == CloseCode.UNAUTHORIZED
    await audited(relay, "viewer.auth_failed", session_id=nowhere, ticket_session_id=session_id)


# -- tickets: single use, one session, short life ------------------------------------------


async def test_ticket_is_single_use(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    _, _, session_id = await live_session(relay, admin_api, track)
    ticket = await admin_api.viewer_ticket(session_id)
    first = track(await ViewerClient.connect(relay.url, session_id, ticket))

    exc = await refused(ViewerClient.connect(relay.url, session_id, ticket))
    assert exc.code == CloseCode.UNAUTHORIZED
    assert "used" in exc.reason

    await first.close()
    await audited(relay, "viewer.left")
    for in_header in (False, True):
        exc = await refused(
            ViewerClient.connect(relay.url, session_id, ticket, ticket_in_header=in_header)
        )
        assert exc.code == CloseCode.UNAUTHORIZED
    rows = await eventually(
        lambda: rows_with(relay, "viewer.auth_failed", reason="bad_ticket", at_least=3)
    )
    assert all(r.source_address == "127.0.0.1" for r in rows)


async def test_ticket_for_one_session_does_not_open_another(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    agent_x, _, session_x = await live_session(relay, admin_api, track, label="pc-x")
    agent_y, _, session_y = await live_session(relay, admin_api, track, label="pc-y")
    assert session_x != session_y
    ticket_x = await admin_api.viewer_ticket(session_x)

    exc = await refused(ViewerClient.connect(relay.url, session_y, ticket_x))
    assert exc.code == CloseCode.UNAUTHORIZED
    row = await audited(
        relay, "viewer.auth_failed", session_id=session_y, ticket_session_id=session_x
    )
    assert row.detail["reason"] == "ticket_for_other_session"
    assert row.source_address == "127.0.0.1"
    assert await events_of(relay.server, "viewer.joined") == []
    # A ticket presented once, wherever, is spent: it does not open X afterwards either.
    exc = await refused(ViewerClient.connect(relay.url, session_x, ticket_x))
    assert exc.code == CloseCode.UNAUTHORIZED
    del agent_x, agent_y


async def test_expired_ticket_is_refused(
    relay_factory: Callable[..., Relay], track: Callable[[Any], Any]
) -> None:
    relay = await start_relay(relay_factory, viewer_ticket_ttl_seconds=1)
    api = track(await relay.api())
    _, _, session_id = await live_session(relay, api, track)
    ticket = await api.viewer_ticket(session_id)
    await asyncio.sleep(1.5)
    exc = await refused(ViewerClient.connect(relay.url, session_id, ticket))
    assert exc.code == CloseCode.UNAUTHORIZED
    await audited(relay, "viewer.auth_failed", reason="bad_ticket")


async def test_ticket_ttl_is_capped_at_60_seconds(tmp_path: Path) -> None:
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    assert make_settings(database, viewer_ticket_ttl_seconds=60).viewer_ticket_ttl_seconds == 60
    for too_long in (61, 3600):
        with pytest.raises(pydantic.ValidationError, match="viewer_ticket_ttl_seconds"):
            make_settings(database, viewer_ticket_ttl_seconds=too_long)


# -- revocation: before the ticket is used, and of open sockets ----------------------------


@pytest.mark.parametrize("how", ["logout", "admin_revoke"])
async def test_ticket_of_revoked_user_is_refused(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any], how: str
) -> None:
    _, machine_id, session_id = await live_session(relay, admin_api, track)
    await grant(relay, admin_api, relay.tech_id, machine_ids=[machine_id])
    tech = track(await relay.api("tech"))
    ticket = await tech.viewer_ticket(session_id)

    if how == "logout":
        response = await call(relay, tech.token, "POST", "/api/auth/logout")
    else:
        response = await call(
            relay, admin_api.token, "POST", f"/api/auth/revoke-user/{relay.tech_id}"
        )
    assert response.is_success, response.text

    exc = await refused(ViewerClient.connect(relay.url, session_id, ticket))
    assert exc.code == CloseCode.REVOKED
    row = await audited(relay, "viewer.auth_failed", reason="revoked_user")
    assert row.source_address == "127.0.0.1"


REVOCATIONS = ["logout", "revoke_user", "delete_user", "disable_user", "remove_access"]


@pytest.mark.parametrize("how", REVOCATIONS)
async def test_revocation_closes_open_viewer_within_a_second(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any], how: str
) -> None:
    agent, machine_id, session_id = await live_session(relay, admin_api, track)
    await grant(relay, admin_api, relay.tech_id, machine_ids=[machine_id])
    tech = track(await relay.api("tech"))
    tech_viewer = track(await relay.viewer(tech, session_id, "view"))
    other_viewer = track(await relay.viewer(admin_api, session_id, "control"))
    admin = admin_api.token

    async def revoke() -> None:
        if how == "logout":
            response = await call(relay, tech.token, "POST", "/api/auth/logout")
        elif how == "revoke_user":
            response = await call(relay, admin, "POST", f"/api/auth/revoke-user/{relay.tech_id}")
        elif how == "delete_user":
            response = await call(relay, admin, "DELETE", f"/api/users/{relay.tech_id}")
        elif how == "disable_user":
            response = await call(
                relay, admin, "PATCH", f"/api/users/{relay.tech_id}", {"disabled": True}
            )
        else:
            body = {"machine_ids": [], "client_names": []}
            response = await call(
                relay, admin, "PUT", f"/api/users/{relay.tech_id}/client-access", body
            )
        assert response.is_success, response.text

    code, why, elapsed = await closed_within(tech_viewer, revoke)
    assert code == CloseCode.REVOKED, why
    assert elapsed < REVOCATION_LIMIT
    # Another user's viewer of the same session is untouched.
    assert other_viewer.close_code is None
    await still_receives(agent, other_viewer, session_id)


async def test_demoted_admin_loses_open_viewer(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    """An admin reaches every machine; demoted to a technician with no client access, the
    viewer it opened as an admin must close (4010: "the user ... lost access")."""
    agent, _, session_id = await live_session(relay, admin_api, track)
    deputy_id = await asyncio.to_thread(relay.server.create_user, "deputy", is_admin=True)
    deputy = track(await relay.api("deputy"))
    deputy_viewer = track(await relay.viewer(deputy, session_id, "view"))
    other_viewer = track(await relay.viewer(admin_api, session_id, "control"))

    async def demote() -> None:
        response = await call(
            relay, admin_api.token, "PATCH", f"/api/users/{deputy_id}", {"role": "technician"}
        )
        assert response.status_code == 200, response.text
        # The REST side already refuses a new ticket: the socket must not outlive that.
        assert (await mint(relay, deputy.token, session_id, "view")).status_code == 404

    code, why, elapsed = await closed_within(deputy_viewer, demote)
    assert code == CloseCode.REVOKED, why
    assert elapsed < REVOCATION_LIMIT
    await still_receives(agent, other_viewer, session_id)


async def test_machine_moved_out_of_granted_client_closes_viewer(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    """Access by client name: moving the machine to another client takes the technician's
    access away, and the open viewer with it."""
    agent, machine_id, session_id = await live_session(relay, admin_api, track)
    response = await call(
        relay, admin_api.token, "PATCH", f"/api/machines/{machine_id}", {"client_name": "acme"}
    )
    assert response.status_code == 200, response.text
    await grant(relay, admin_api, relay.tech_id, client_names=["acme"])
    tech = track(await relay.api("tech"))
    tech_viewer = track(await relay.viewer(tech, session_id, "view"))
    other_viewer = track(await relay.viewer(admin_api, session_id, "control"))

    async def move() -> None:
        response = await call(
            relay,
            admin_api.token,
            "PATCH",
            f"/api/machines/{machine_id}",
            {"client_name": "globex"},
        )
        assert response.status_code == 200, response.text
        assert (await mint(relay, tech.token, session_id, "view")).status_code == 404

    code, why, elapsed = await closed_within(tech_viewer, move)
    assert code == CloseCode.REVOKED, why
    assert elapsed < REVOCATION_LIMIT
    await still_receives(agent, other_viewer, session_id)


# -- what the API checks when it mints a ticket ------------------------------------------


async def test_technician_needs_client_access_to_mint(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    _, machine_id, session_id = await live_session(relay, admin_api, track)
    tech = track(await relay.api("tech"))
    for scope in ("view", "control"):
        response = await mint(relay, tech.token, session_id, scope)
        assert response.status_code == 404, response.text

    response = await call(
        relay, admin_api.token, "PATCH", f"/api/machines/{machine_id}", {"client_name": "acme"}
    )
    assert response.status_code == 200, response.text
    await grant(relay, admin_api, relay.tech_id, client_names=["other-client"])
    assert (await mint(relay, tech.token, session_id, "view")).status_code == 404

    await grant(relay, admin_api, relay.tech_id, client_names=["acme"])
    response = await mint(relay, tech.token, session_id, "control")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["session_id"] == session_id
    assert body["scope"] == "control"
    viewer = track(await ViewerClient.connect(relay.url, session_id, body["ticket"]))
    assert viewer.state.scope == Scope.SCOPE_CONTROL


async def test_admin_of_another_tenant_cannot_mint(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    _, machine_id, session_id = await live_session(relay, admin_api, track)
    await asyncio.to_thread(relay.server.create_tenant, "globex")
    await asyncio.to_thread(relay.server.create_user, "globex-root", is_admin=True, tenant="globex")
    stranger = track(await relay.api("globex-root"))
    for scope in ("view", "control"):
        response = await mint(relay, stranger.token, session_id, scope)
        assert response.status_code == 404, response.text
    response = await call(relay, stranger.token, "GET", f"/api/sessions/{session_id}")
    assert response.status_code == 404, response.text
    response = await call(
        relay, stranger.token, "POST", f"/api/machines/{machine_id}/sessions", {"scope": "view"}
    )
    assert response.status_code == 404, response.text


async def test_technician_without_control_permission_gets_403(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    """An admin restricts a technician to sessions.view: a control ticket is refused."""
    _, machine_id, session_id = await live_session(relay, admin_api, track)
    await grant(relay, admin_api, relay.tech_id, machine_ids=[machine_id])
    response = await call(
        relay,
        admin_api.token,
        "PUT",
        f"/api/users/{relay.tech_id}/permissions",
        {"permissions": ["sessions.view"]},
    )
    assert response.status_code == 200, response.text
    tech = track(await relay.api("tech"))
    assert (await mint(relay, tech.token, session_id, "view")).status_code == 201
    me = (await call(relay, tech.token, "GET", "/api/auth/me")).json()
    response = await mint(relay, tech.token, session_id, "control")
    assert response.status_code == 403, (
        f"a technician granted only sessions.view got {response.status_code} for a control "
        f"ticket; effective permissions: {me['permissions']}"
    )


async def test_control_ticket_on_view_session_is_403(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    _, _, session_id = await live_session(relay, admin_api, track, scope="view")
    response = await mint(relay, admin_api.token, session_id, "control")
    assert response.status_code == 403, response.text
    assert (await mint(relay, admin_api.token, session_id, "view")).status_code == 201


async def test_ticket_for_ended_session_is_409(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    _, _, session_id = await live_session(relay, admin_api, track)
    ticket = await admin_api.viewer_ticket(session_id, "view")
    await admin_api.end_session(session_id)
    response = await mint(relay, admin_api.token, session_id, "view")
    assert response.status_code == 409, response.text
    # A ticket minted before the end opens nothing either.
    exc = await refused(ViewerClient.connect(relay.url, session_id, ticket))
    assert exc.code == CloseCode.SESSION_ENDED


# -- scope and control ---------------------------------------------------------------------


async def test_view_viewer_input_never_reaches_agent(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    agent, _, session_id = await live_session(relay, admin_api, track)
    watcher = track(await relay.viewer(admin_api, session_id, "view"))
    assert watcher.state.scope == Scope.SCOPE_VIEW
    controller = track(await relay.viewer(admin_api, session_id, "control"))
    assert controller.state.scope == Scope.SCOPE_CONTROL
    assert controller.state.controller == "root"

    # Everything a controller could do, from the view-only viewer, then a marker.
    await watcher.send(KeyEvent(scan_code=0x1D, down=True))
    await watcher.send(KeyEvent(text="rm -rf /\n"))
    await watcher.send(MouseEvent(x=10, y=20, button=MouseButton.MOUSE_BUTTON_LEFT, down=True))
    await watcher.send(SpecialKeyEvent(key=SpecialKey.SPECIAL_KEY_CTRL_ALT_DEL))
    await watcher.send(ClipboardText(text="pasted by a watcher"))
    await watcher.send(DisplaySwitch(display_id=2))
    await watcher.send(ControlRequest(take=True))  # a view ticket cannot take control
    await watcher.send(KeyEvent(scan_code=0x2E, down=True))
    await watcher.send(ChatMessage(text="watcher-done"))
    leaked = [name for name, _ in await until_chat(agent, "watcher-done")]
    assert not CONTROL_ONLY_KINDS & set(leaked), leaked

    # The control viewer's input, sent after, does arrive: the path was open.
    key = KeyEvent(scan_code=0x1E, down=True)
    await controller.send(key)
    assert (await agent.expect("key_event", timeout=5)) == key
    mouse = MouseEvent(x=1, y=2)
    await controller.send(mouse)
    assert (await agent.expect("mouse_event", timeout=5)) == mouse

    row = await audited(relay, "limit.view_input_dropped")
    assert str(row.session_id) == session_id
    assert row.actor == "root"
    assert row.detail["without_control"] >= 1
    assert watcher.close_code is None  # dropped, not a crash


async def test_one_controller_at_a_time(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    agent, machine_id, session_id = await live_session(relay, admin_api, track)
    await grant(relay, admin_api, relay.tech_id, machine_ids=[machine_id])
    tech = track(await relay.api("tech"))
    first = track(await relay.viewer(admin_api, session_id, "control"))
    assert first.state.controller == "root"
    second = track(await relay.viewer(tech, session_id, "control"))
    assert second.state.controller == "root"
    assert second.state.scope == Scope.SCOPE_CONTROL
    watcher = track(await relay.viewer(admin_api, session_id, "view"))
    assert watcher.state.controller == "root"

    key = KeyEvent(scan_code=0x10, down=True)
    await first.send(key)
    assert (await agent.expect("key_event", timeout=5)) == key

    # The second control viewer is dropped until it takes control.
    await second.send(KeyEvent(scan_code=0x11, down=True))
    await second.send(SpecialKeyEvent(key=SpecialKey.SPECIAL_KEY_WIN))
    await second.send(ChatMessage(text="second-before-take"))
    leaked = [name for name, _ in await until_chat(agent, "second-before-take")]
    assert not INPUT_KINDS & set(leaked), leaked
    await audited(relay, "limit.input_without_control")

    await second.send(ControlRequest(take=True))
    for viewer in (first, second, watcher):
        state = await state_where(viewer, lambda s: s.controller == "tech")
        assert state.session_id == session_id
    changed = await audited(relay, "control.changed", action="taken")
    assert changed.actor == "tech"

    # Now the first one's input is dropped and the second one's arrives.
    await first.send(KeyEvent(scan_code=0x12, down=True))
    await first.send(MouseEvent(x=5, y=5, button=MouseButton.MOUSE_BUTTON_RIGHT, down=True))
    await first.send(ChatMessage(text="first-after-take"))
    leaked = [name for name, _ in await until_chat(agent, "first-after-take")]
    assert not INPUT_KINDS & set(leaked), leaked
    key = KeyEvent(scan_code=0x13, down=True)
    await second.send(key)
    assert (await agent.expect("key_event", timeout=5)) == key


# -- origin ----------------------------------------------------------------------------------


async def test_cross_origin_viewer_is_refused(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    _, _, session_id = await live_session(relay, admin_api, track)
    for origin in (EVIL, "null", relay.url + ".evil.example", "http://127.0.0.1:1"):
        ticket = await admin_api.viewer_ticket(session_id)
        exc = await refused(ViewerClient.connect(relay.url, session_id, ticket, origin=origin))
        assert exc.code == CloseCode.FORBIDDEN_ORIGIN, origin
    row = await audited(relay, "viewer.auth_failed", reason="origin_refused", origin=EVIL)
    assert row.source_address == "127.0.0.1"

    same = track(await relay.viewer(admin_api, session_id, origin=relay.url))
    assert same.state.session_id == session_id
    native = track(await relay.viewer(admin_api, session_id))
    assert native.state.session_id == session_id


async def test_cross_origin_agent_is_refused(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    key = (await admin_api.issue_agent_key("origin-test"))["key"]
    exc = await refused(AgentClient.connect(relay.url, key=key, origin=EVIL))
    assert exc.code == CloseCode.FORBIDDEN_ORIGIN
    row = await audited(relay, "agent.auth_failed", reason="origin_refused", origin=EVIL)
    assert row.source_address == "127.0.0.1"
    assert not await events_of(relay.server, "agent.connected")

    agent = track(await AgentClient.connect(relay.url, key=key, origin=relay.url))
    assert agent.auth.ok
    await agent.close()
    other = track(await AgentClient.connect(relay.url, key=key))
    assert other.auth.ok


async def test_allowed_origin_is_accepted_on_both_planes(
    relay_factory: Callable[..., Relay], track: Callable[[Any], Any]
) -> None:
    allowed = "https://support.example"
    relay = await start_relay(relay_factory, allowed_origins=[allowed])
    api = track(await relay.api())
    key = (await api.issue_agent_key("pc"))["key"]
    agent = track(await AgentClient.connect(relay.url, key=key, origin=allowed))
    assert agent.auth.ok
    await agent.send_status()
    session_id = await relay.active_session(api, agent, agent.auth.machine_id)

    viewer = track(await relay.viewer(api, session_id, origin=allowed))
    assert viewer.state.session_id == session_id
    ticket = await api.viewer_ticket(session_id)
    exc = await refused(ViewerClient.connect(relay.url, session_id, ticket, origin=EVIL))
    assert exc.code == CloseCode.FORBIDDEN_ORIGIN
    key2 = (await api.issue_agent_key("pc2"))["key"]
    exc = await refused(AgentClient.connect(relay.url, key=key2, origin=EVIL))
    assert exc.code == CloseCode.FORBIDDEN_ORIGIN


# -- limits: input rate, message size, chat ----------------------------------------------


async def test_input_flood_is_throttled(
    relay_factory: Callable[..., Relay], track: Callable[[Any], Any]
) -> None:
    relay = await start_relay(relay_factory, input_events_per_second=50)
    api = track(await relay.api())
    agent, _, session_id = await live_session(relay, api, track)
    controller = track(await relay.viewer(api, session_id, "control"))

    for i in range(500):
        await controller.send(KeyEvent(scan_code=0x1E, down=i % 2 == 0))
    await controller.send(ChatMessage(text="flood-done"))
    received = await until_chat(agent, "flood-done", timeout=10)
    keys = sum(1 for name, _ in received if name == "key_event")
    assert 0 < keys < 150, keys

    row = await audited(relay, "limit.input_throttled")
    assert str(row.session_id) == session_id
    assert row.detail["throttled"] >= 1
    assert controller.close_code is None  # throttled, not disconnected


@pytest.mark.parametrize("kind", ["clipboard", "chat"])
async def test_oversized_viewer_message_is_closed_1009(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any], kind: str
) -> None:
    agent, _, session_id = await live_session(relay, admin_api, track)
    sender = track(await relay.viewer(admin_api, session_id, "control"))
    bystander = track(await relay.viewer(admin_api, session_id, "view"))
    big = "x" * (64 * 1024 + 1)
    await sender.send(ClipboardText(text=big) if kind == "clipboard" else ChatMessage(text=big))

    code, why = await sender.wait_closed(timeout=5)
    assert code == CloseCode.MESSAGE_TOO_BIG, why
    row = await audited(relay, "limit.message_too_big", close_code=CloseCode.MESSAGE_TOO_BIG)
    assert str(row.session_id) == session_id
    assert row.detail["plane"] == "viewer"
    assert row.source_address == "127.0.0.1"
    # Nothing of it reached the agent, and the session goes on for everyone else.
    await bystander.send(ChatMessage(text="after-big"))
    leaked = [name for name, _ in await until_chat(agent, "after-big")]
    assert kind not in leaked, leaked
    await still_receives(agent, bystander, session_id)


async def test_chat_relays_both_ways_with_relay_set_sender(
    relay: Relay, admin_api: ApiClient, track: Callable[[Any], Any]
) -> None:
    agent, machine_id, session_id = await live_session(relay, admin_api, track)
    await grant(relay, admin_api, relay.tech_id, machine_ids=[machine_id])
    tech = track(await relay.api("tech"))
    tech_viewer = track(await relay.viewer(tech, session_id, "view"))
    root_viewer = track(await relay.viewer(admin_api, session_id, "control"))

    # A technician posing as the admin: the relay names the real sender.
    await tech_viewer.send(ChatMessage(sender="root", text="please approve"))
    chat = await agent.expect("chat", timeout=5)
    assert chat.text == "please approve"
    assert chat.sender == "tech"
    assert chat.session_id == session_id
    echoed = await root_viewer.expect("chat", timeout=5)
    assert (echoed.sender, echoed.text) == ("tech", "please approve")

    # The agent's chat reaches every viewer, and it cannot pose as a technician either.
    await agent.send(ChatMessage(sender="root", text="hello from the desk"))
    for viewer in (tech_viewer, root_viewer):
        chat = await chat_with_text(viewer, "hello from the desk")
        assert chat.sender not in {"root", "tech", ""}
        assert chat.session_id == session_id


async def test_chat_over_the_cap_is_refused(
    relay_factory: Callable[..., Relay], track: Callable[[Any], Any]
) -> None:
    relay = await start_relay(relay_factory, chat_max_chars=10)
    api = track(await relay.api())
    agent, _, session_id = await live_session(relay, api, track)
    viewer = track(await relay.viewer(api, session_id, "control"))

    await viewer.send(ChatMessage(text="x" * 11))
    error = await viewer.expect("error", timeout=5)
    assert error.code == 413
    await viewer.send(ChatMessage(text="short"))
    before = await until_chat(agent, "short")
    assert "chat" not in [name for name, _ in before], before
    row = await audited(relay, "limit.chat_too_long")
    assert row.detail["length"] == 11
    assert str(row.session_id) == session_id
    assert viewer.close_code is None

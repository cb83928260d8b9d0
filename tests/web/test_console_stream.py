"""The console's event stream (GET /api/console/events) attacked over HTTP: a technician
never receives events of a client they may not reach, another tenant's admin receives
nothing of this tenant, and anonymous callers get no stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from guruconnect.server.api import console
from tests.conftest import Database, LiveServer, make_settings
from tests.timing import scaled
from tests.web.agents import ScriptedAgent
from tests.web.conftest import LoopThread, off_loop

STREAM = "/api/console/events"


class EventStream:
    """A Server-Sent Events reader over httpx (blocking, each read bounded by a timeout)."""

    def __init__(self, server: LiveServer, token: str) -> None:
        client = server.client(token=token)
        self._context: AbstractContextManager[httpx.Response] = client.stream(
            "GET",
            STREAM,
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(scaled(15)),
        )
        self.response = self._context.__enter__()
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._lines: Iterator[str] = self.response.iter_lines()
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def _next(self) -> tuple[str, dict[str, Any]]:
        name, data = "message", ""
        for line in self._lines:
            if line == "":
                if data:
                    return name, json.loads(data)
                continue
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        raise AssertionError("the stream ended")

    def until(self, done: Callable[[str, dict[str, Any]], bool]) -> list[tuple[str, Any]]:
        while True:
            event = self._next()
            self.seen.append(event)
            if done(*event):
                return self.seen

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def online(machine_id: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda name, data: (
        name == "change"
        and data == {"kind": "machine.online", "machine_id": machine_id, "state": "online"}
    )


def test_stream_needs_a_login_and_an_accept_header(web_server: LiveServer) -> None:
    response = web_server.client().get(STREAM, headers={"Accept": "text/event-stream"})
    assert response.status_code == 401
    # A plain GET (not an EventSource) is answered, not left hanging.
    response = web_server.client(token=web_server.login("root")).get(STREAM)
    assert response.status_code == 406
    assert "text/event-stream" in response.json()["detail"]


def test_a_revoked_login_loses_its_stream(
    web_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream checks its token again at each heartbeat: revoked, it ends."""
    monkeypatch.setattr(console, "HEARTBEAT_SECONDS", 0.2)
    user_id = off_loop(web_server.create_user, "revoked-tech")
    stream = EventStream(web_server, web_server.login("revoked-tech"))
    try:
        stream.until(lambda name, _data: name == "ready")
        root = web_server.client(token=web_server.login("root"))
        assert root.post(f"/api/auth/revoke-user/{user_id}").status_code in (200, 204)
        seen = stream.until(lambda name, _data: name == "end")
    finally:
        stream.close()
    assert seen[-1] == ("end", {"reason": "unauthorized"})


def test_an_open_stream_does_not_hold_the_servers_shutdown(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The stream never ends by itself; a server stopping cuts it (before: stop() waited
    for it forever and timed out)."""
    path = tmp_path_factory.mktemp("stop") / "guruconnect.db"
    database = Database("sqlite", f"sqlite+aiosqlite:///{path}")
    server = LiveServer(make_settings(database), database).start()
    stream: EventStream | None = None
    try:
        off_loop(server.create_user, "root", is_admin=True)
        stream = EventStream(server, server.login("root"))
        stream.until(lambda name, _data: name == "ready")
    finally:
        server.stop()  # raises TimeoutError if the stream held it
        if stream is not None:
            with pytest.raises(httpx.HTTPError):
                stream.until(lambda _name, _data: False)
            stream.close()


def test_a_technician_never_receives_events_of_a_client_they_cannot_reach(
    web_server: LiveServer, loop_thread: LoopThread
) -> None:
    root = web_server.client(token=web_server.login("root"))
    forbidden_key = root.post("/api/agent-keys", json={"label": "forbidden"}).json()["key"]
    allowed_key = root.post("/api/agent-keys", json={"label": "allowed"}).json()["key"]
    agents = [
        ScriptedAgent.connect(loop_thread, web_server.url, key=k, hostname=h)
        for k, h in ((forbidden_key, "SECRET-PC"), (allowed_key, "OPEN-PC"))
    ]
    forbidden, allowed = (a.machine_id for a in agents)
    for agent in agents:
        agent.close()
    root.patch(f"/api/machines/{forbidden}", json={"client_name": "Secret Co"})
    root.patch(f"/api/machines/{allowed}", json={"client_name": "Open Co"})
    tech_id = off_loop(web_server.create_user, "stream-tech")
    root.put(f"/api/users/{tech_id}/client-access", json={"client_names": ["Open Co"]})
    # Another tenant's admin, with a machine of its own (the barrier for its stream).
    off_loop(web_server.create_tenant, "elsewhere")
    off_loop(web_server.create_user, "outsider", is_admin=True, tenant="elsewhere")
    outsider_token = web_server.login("outsider")
    outsider_key = (
        web_server.client(token=outsider_token)
        .post("/api/agent-keys", json={"label": "theirs"})
        .json()["key"]
    )

    streams = {
        "tech": EventStream(web_server, web_server.login("stream-tech")),
        "root": EventStream(web_server, web_server.login("root")),
        "outsider": EventStream(web_server, outsider_token),
    }
    started: list[ScriptedAgent] = []
    try:
        for stream in streams.values():
            stream.until(lambda name, _data: name == "ready")
        # The forbidden machine comes online, gets a session that ends; then the allowed one
        # comes online: every stream's events are in order, so that one is the barrier.
        started.append(
            ScriptedAgent.connect(loop_thread, web_server.url, key=forbidden_key, hostname="X")
        )
        session = root.post(f"/api/machines/{forbidden}/sessions", json={"scope": "view"})
        assert session.status_code == 201, session.text
        assert root.delete(f"/api/sessions/{session.json()['id']}").status_code in (200, 204)
        started.append(
            ScriptedAgent.connect(loop_thread, web_server.url, key=allowed_key, hostname="Y")
        )
        theirs = ScriptedAgent.connect(loop_thread, web_server.url, key=outsider_key)
        started.append(theirs)

        tech_saw = streams["tech"].until(online(allowed))
        root_saw = streams["root"].until(online(allowed))
        outsider_saw = streams["outsider"].until(online(theirs.machine_id))
    finally:
        for stream in streams.values():
            stream.close()
        for agent in started:
            agent.close()

    # The admin saw the forbidden machine's events: they exist, and were withheld.
    root_kinds = {d.get("kind") for _n, d in root_saw if d.get("machine_id") == forbidden}
    assert {"machine.online", "session.created", "session.ended"} <= root_kinds, root_saw
    assert not [e for e in tech_saw if forbidden in json.dumps(e)], tech_saw
    assert not [e for e in outsider_saw if forbidden in json.dumps(e)], outsider_saw
    assert not [e for e in outsider_saw if allowed in json.dumps(e)], outsider_saw

"""Kill the server mid-session (SIGKILL) and start it again.

The real agent (``guruconnect agent`` on Xvfb) streams to a viewer; the server process is
killed without warning and started again on the same database and port. The agent comes
back by itself (its backoff), the session the crash left open is reconciled (ended with
``server_restart`` and an audit row saying so), no audit row written before the crash is
missing, and a new session streams again. The recovery time is printed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from guruconnect.client import ApiClient, ViewerClient
from guruconnect.server import admin
from guruconnect.server.background import ServerProcess
from guruconnect.server.db.schema import session_events
from tests.agent.conftest import AgentProcess, start_agent, xserver
from tests.conftest import FAST_ARGON2, JWT_SECRET, PASSWORD, Database, make_settings

__all__ = ["start_agent", "xserver"]


def server_env(database: Database) -> dict[str, str]:
    env = {
        "JWT_SECRET": JWT_SECRET,
        "DATABASE_URL": database.url,
        "GURUCONNECT_LOG_FORMAT": "json",
        "GURUCONNECT_HEARTBEAT_INTERVAL_SECONDS": "2",
        **{f"GURUCONNECT_{k.upper()}": str(v) for k, v in FAST_ARGON2.items()},
    }
    if database.schema:
        env["GURUCONNECT_DATABASE_SCHEMA"] = database.schema
    return env


@pytest.fixture
def server_process(database: Database, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(server_env(database), tmp_path / "server.log", cwd=tmp_path)
    yield server
    server.stop()


async def _online_machine(api: ApiClient, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        machines = await api._call("GET", "/api/machines")
        if machines and machines[0]["online"]:
            return dict(machines[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"no machine online within {timeout} s: {machines}")
        await asyncio.sleep(0.1)


async def _streaming_session(api: ApiClient, url: str, machine_id: str) -> tuple[str, ViewerClient]:
    session = await api.request_session(machine_id, "control")
    ticket = await api.viewer_ticket(str(session["id"]), "view")
    viewer = await ViewerClient.connect(url, str(session["id"]), ticket)
    await viewer.expect("video_frame", timeout=20)
    return str(session["id"]), viewer


def _audit_ids(database: Database) -> set[Any]:
    return {row.id for row in database.sql(select(session_events.c.id))}


def test_kill_and_restart_mid_session(
    database: Database,
    server_process: ServerProcess,
    start_agent: Callable[..., AgentProcess],
) -> None:
    server = server_process
    server.start()
    settings = make_settings(database)
    asyncio.run(admin.create_user(settings, "root", PASSWORD, admin=True))
    key, _ = asyncio.run(admin.issue_agent_key(settings, machine="restart-pc"))
    agent = start_agent(server.url, key=key, extra=("--no-windows", "--unattended"))

    async def before() -> tuple[str, str]:
        async with ApiClient(server.url) as api:
            await api.login("root", PASSWORD)
            machine = await _online_machine(api)
            await api.set_consent_policy(machine["id"], "unattended")
            session_id, viewer = await _streaming_session(api, server.url, machine["id"])
            await viewer.close()
            return machine["id"], session_id

    machine_id, old_session = asyncio.run(before())
    written = _audit_ids(database)
    assert len(written) >= 5

    server.kill()
    killed = time.monotonic()
    boot = server.start()

    async def after() -> float:
        async with ApiClient(server.url) as api:
            await api.login("root", PASSWORD)
            machine = await _online_machine(api)
            back = time.monotonic()
            assert machine["id"] == machine_id  # the key brings back the same machine
            old = await api._call("GET", f"/api/sessions/{old_session}")
            assert old["state"] == "ended"
            assert old["end_reason"] == "server_restart"
            # A new session streams again, end to end.
            _, viewer = await _streaming_session(api, server.url, machine_id)
            await viewer.close()
            return back

    back = asyncio.run(after())
    assert agent.process.poll() is None, agent.log()[-2000:]
    # No audit row from before the crash is missing; the reconciliation is audited.
    after_ids = _audit_ids(database)
    assert written <= after_ids
    ended = [
        row
        for row in database.sql(
            select(session_events).where(session_events.c.event_type == "session.ended")
        )
        if str(row.session_id) == old_session
    ]
    assert [row.detail.get("reconciled") for row in ended] == [True]
    recovery = back - killed
    print(f"\nrestart: server boot {boot:.2f} s, agent back {recovery:.2f} s after the kill")
    assert recovery < 30

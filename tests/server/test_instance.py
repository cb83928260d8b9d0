"""One server per database and node: a second one refuses before it changes anything.

Two real ``guruconnect server`` processes on one database (SQLite file, PostgreSQL
schema): the second exits with one line and exit code 3, and the first's live session,
its online machine and its agent are untouched. Reconciliation at startup only ends
the starting node's sessions.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from guruconnect.client import ApiClient
from guruconnect.protocol import VideoFrame
from guruconnect.server import admin
from guruconnect.server.background import ServerProcess, free_port
from guruconnect.server.db.schema import machines, sessions
from guruconnect.server.instance import (
    EXIT_IN_USE,
    InstanceInUse,
    InstanceLock,
    advisory_key,
    lock_file,
)
from tests.conftest import (
    FAST_ARGON2,
    JWT_SECRET,
    PASSWORD,
    Database,
    LiveServer,
    make_settings,
)
from tests.relay.conftest import Relay
from tests.timing import scaled, wait_until


def server_env(database: Database) -> dict[str, str]:
    env = {
        "JWT_SECRET": JWT_SECRET,
        "DATABASE_URL": database.url,
        "GURUCONNECT_LOG_FORMAT": "json",
        **{f"GURUCONNECT_{k.upper()}": str(v) for k, v in FAST_ARGON2.items()},
    }
    if database.schema:
        env["GURUCONNECT_DATABASE_SCHEMA"] = database.schema
    return env


@pytest.fixture
def first_server(database: Database, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(server_env(database), tmp_path / "first.log", cwd=tmp_path)
    yield server
    server.stop()


@pytest.mark.timeout(scaled(300))
def test_a_second_server_refuses_before_changing_anything(
    database: Database, first_server: ServerProcess, tmp_path: Path
) -> None:
    first_server.start(timeout=scaled(30))
    settings = make_settings(database)
    asyncio.run(admin.create_user(settings, "root", PASSWORD, admin=True))

    async def scenario() -> None:
        async with ApiClient(first_server.url) as api:
            await api.login("root", PASSWORD)
            relay = Relay(first_server, "", "")  # type: ignore[arg-type]
            agent, machine_id, _ = await relay.online_agent(api, policy="unattended")
            session_id = await relay.active_session(api, agent, machine_id)
            viewer = await relay.viewer(api, session_id)
            state = select(sessions.c.state, sessions.c.end_reason)
            before = await asyncio.to_thread(database.sql, state)

            second = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "guruconnect",
                "server",
                "--port",
                str(free_port()),
                env={**first_server.env},
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(second.communicate(), scaled(60))
            assert second.returncode == EXIT_IN_USE, (out, err)
            lines = err.decode().splitlines()
            assert len(lines) == 1, err
            assert lines[0].startswith("guruconnect: another GuruConnect server")
            assert "Traceback" not in (out + err).decode()
            assert b"server ready" not in out + err

            # Nothing changed: the session is live in the database and still streams.
            assert await asyncio.to_thread(database.sql, state) == before
            assert before[0].state == "active"
            [(online,)] = await asyncio.to_thread(database.sql, select(machines.c.online))
            assert online is True
            frame = VideoFrame(session_id=session_id, keyframe=True, data=b"\x02" * 512)
            await agent.send(frame)
            assert await viewer.expect("video_frame") == frame
            await viewer.close()
            await agent.close()

    asyncio.run(scenario())
    assert first_server.process is not None
    assert first_server.process.poll() is None


def test_reconciliation_leaves_other_nodes_sessions_alone(
    server_factory: Callable[..., LiveServer], database: Database
) -> None:
    server = server_factory()  # node "default"
    relay = Relay(server, str(server.create_user("root", is_admin=True)), "")

    async def live_session() -> str:
        async with ApiClient(relay.url) as api:
            await api.login("root", PASSWORD)
            agent, machine_id, _ = await relay.online_agent(api, policy="unattended")
            session_id = await relay.active_session(api, agent, machine_id)
            await agent.close()
            return session_id

    asyncio.run(live_session())
    [(state_before, node)] = database.sql(select(sessions.c.state, sessions.c.node_id))
    assert node == "default"
    server_factory()  # node-2 starts (and reconciles) on the same database
    [(state_after,)] = database.sql(select(sessions.c.state))
    assert state_after == state_before != "ended"


def test_the_sqlite_lock_is_per_database_file_and_node(tmp_path: Path) -> None:
    database = tmp_path / "home" / "guruconnect.db"
    first = InstanceLock.for_sqlite_file(database)  # creates the directory
    assert lock_file(database).read_text().strip().isdigit()  # the holder's pid
    with pytest.raises(InstanceInUse, match=r"another GuruConnect server .*guruconnect\.db"):
        InstanceLock.for_sqlite_file(database)
    other_node = InstanceLock.for_sqlite_file(database, "node-2")
    assert lock_file(database, "node-2").name == "guruconnect.db.node-2.lock"
    other_db = InstanceLock.for_sqlite_file(tmp_path / "other.db")
    for lock in (first, other_node, other_db):
        lock.release_file()
    InstanceLock.for_sqlite_file(database).release_file()  # free again once released


# A SQLite lock is a descriptor of the process: it cannot be lost, so PostgreSQL only.
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_a_lost_postgres_lock_is_taken_again(
    server_factory: Callable[..., LiveServer], database: Database
) -> None:
    server = server_factory(heartbeat_interval_seconds=0.2)
    unsigned = advisory_key(database.schema, "default") & (2**64 - 1)

    def holder() -> int | None:
        rows = database.sql(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1",
            high=unsigned >> 32,
            low=unsigned & 0xFFFFFFFF,
        )
        return int(rows[0][0]) if rows else None

    first = wait_until(holder, 10, "the server holds its advisory lock")
    database.sql("SELECT pg_terminate_backend(:pid)", pid=first)  # the connection is gone
    wait_until(lambda: (holder() or first) != first, 10, "the lock taken again")
    assert server.client().get("/ready").status_code == 200

"""Self-update end to end: a real server, real signed releases downloaded over HTTP, the
real agent (in this process, with a still screen) deciding, and the audit log.

The server is treated as compromised: each refusal case is something a server, its
database or its disk could do, and the agent must refuse it with ``agent.update_refused``.
One server and one key pair serve the whole module (CI budget).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from guruconnect.agent.capture.cursor import NoCursor
from guruconnect.agent.runner import Agent, AgentConfig
from guruconnect.agent.updater import Updater, previous_file
from guruconnect.client import ApiClient
from guruconnect.releases import manifest as mf
from guruconnect.server import admin
from guruconnect.server.db.schema import releases, session_events
from tests.agent.test_rogue_relay import Recorder, StillScreen
from tests.conftest import PASSWORD, Database, LiveServer, make_settings
from tests.timing import async_wait_until, scaled

pytestmark = pytest.mark.asyncio(loop_scope="module")

OLD = b"#!/bin/sh\necho old agent\n"


@dataclass
class World:
    server: LiveServer
    data: Path
    key_file: Path
    attacker_key_file: Path
    public: list[Any]
    api: ApiClient
    tmp: Path
    agents: list[asyncio.Task[int]] = field(default_factory=list)

    def release_file(self, name: str) -> Path:
        return self.data / "releases" / name

    async def publish(self, *args: Any, **kw: Any) -> str:
        return await asyncio.to_thread(self._publish, *args, **kw)

    def _publish(
        self, version: str, body: bytes, *, key: Path | None = None, platform: str = "linux"
    ) -> str:
        """Publish as the operator would (``key``: someone else's key)."""
        artifact = self.tmp / f"build-{version}-{platform}"
        artifact.write_bytes(body)
        # Only the newest release is offered: retire the previous cases' releases.
        self.server.database.sql(update(releases).values(deleted_at=datetime.now(UTC)))
        release = asyncio.run(
            admin.publish_release(
                self.server.settings, artifact, version=version, platform=platform,
                arch="x86_64", key_file=key or self.key_file,
            )
        )  # fmt: skip
        return release.filename

    def events(self, event_type: str, version: str) -> list[Any]:
        """Audit details of one type for one version (blocking: call it in a thread)."""
        rows = self.server.database.sql(
            select(session_events.c.detail).where(session_events.c.event_type == event_type)
        )
        return [row.detail for row in rows if row.detail.get("version") == version]


@pytest.fixture(scope="module")
def world_sync(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    tmp = tmp_path_factory.mktemp("update")
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp / 'guruconnect.db'}")
    live = LiveServer(make_settings(database, home=tmp / "data"), database).start()
    live.create_user("root", is_admin=True)
    yield live, tmp
    live.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(world_sync: tuple[LiveServer, Path]) -> AsyncIterator[World]:
    live, tmp = world_sync
    private, public, _ = admin.release_keygen(tmp / "offline")
    attacker, _, _ = admin.release_keygen(tmp / "attacker")
    api = ApiClient(live.url)
    await api.login("root", PASSWORD)
    w = World(
        live, tmp / "data", private, attacker, mf.load_public_keys(public.read_bytes()), api, tmp
    )
    yield w
    for task in w.agents:
        task.cancel()
    await asyncio.gather(*w.agents, return_exceptions=True)
    await api.aclose()


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def _agents_stop_after_each_test(world: World) -> AsyncIterator[None]:
    yield
    for task in world.agents:
        task.cancel()
    await asyncio.gather(*world.agents, return_exceptions=True)
    world.agents.clear()


async def start_agent(
    world: World,
    *,
    version: str,
    name: str,
    server: str | None = None,
    before: Callable[[Updater], None] | None = None,
) -> tuple[Updater, Path, asyncio.Event]:
    """The agent as its built file would run it, with its own file at ``name``;
    ``before`` prepares that file (an update just swapped in, say)."""
    executable = world.tmp / name / "guruconnect-agent"
    if not executable.exists():  # else: the same machine's file, started again
        executable.parent.mkdir()
        executable.write_bytes(OLD)
        executable.chmod(0o755)
    restarted = asyncio.Event()

    def record(path: Path) -> NoReturn:
        restarted.set()
        raise asyncio.CancelledError  # ends the update task as exec would end the process

    updater = Updater(
        server=world.server.url, executable=executable, keys=world.public,
        current_version=version, platform="linux", arch="x86_64", restart=record,
    )  # fmt: skip
    if before is not None:
        before(updater)
    key = await world.api.issue_agent_key(name)
    agent = Agent(
        AgentConfig(
            server=server or world.server.url, key=key["key"], desktop_ui=False, h264_encoders=(),
            updater=updater,
        ),
        capturer=StillScreen, cursor=NoCursor, injector=Recorder,
    )  # fmt: skip
    world.agents.append(asyncio.create_task(agent.run()))
    return updater, executable, restarted


async def refused(world: World, version: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        rows = await asyncio.to_thread(world.events, "agent.update_refused", version)
        return rows[0] if rows else None

    return await async_wait_until(found, 20, f"agent.update_refused for {version}")


async def edit_row(world: World, filename: str, **values: Any) -> None:
    statement = update(releases).where(releases.c.filename == filename).values(**values)
    await asyncio.to_thread(world.server.database.sql, statement)


async def signed_manifest(world: World, filename: str) -> mf.Manifest:
    statement = select(releases.c.manifest).where(releases.c.filename == filename)
    [row] = await asyncio.to_thread(world.server.database.sql, statement)
    return mf.parse(row.manifest.encode())


async def test_a_signed_newer_release_is_downloaded_verified_and_swapped_in(world: World) -> None:
    body = b"#!/bin/sh\necho 1.1.0\n"
    await world.publish("1.1.0", body)
    updater, executable, restarted = await start_agent(world, version="1.0.0", name="good")
    await asyncio.wait_for(restarted.wait(), 20)
    assert executable.read_bytes() == body
    assert previous_file(executable).read_bytes() == OLD
    assert updater.probation() is not None  # the new file starts on probation
    [installing] = await async_wait_until(
        lambda: asyncio.to_thread(world.events, "agent.update_installing", "1.1.0"),
        20, "agent.update_installing",
    )  # fmt: skip
    assert installing["version"] == "1.1.0"


async def test_a_tampered_file_is_refused(world: World) -> None:
    name = await world.publish("1.2.0", b"#!/bin/sh\necho 1.2.0\n")
    world.release_file(name).write_bytes(b"#!/bin/sh\necho 6.6.6\n")  # same size
    _, executable, _ = await start_agent(world, version="1.0.0", name="tampered")
    event = await refused(world, "1.2.0")
    assert event["reason"] == "hash_mismatch"
    assert executable.read_bytes() == OLD
    assert not previous_file(executable).exists()


async def test_a_release_signed_by_another_key_is_refused(world: World) -> None:
    await world.publish("1.3.0", b"#!/bin/sh\necho forged\n", key=world.attacker_key_file)
    _, executable, _ = await start_agent(world, version="1.0.0", name="forged")
    assert (await refused(world, "1.3.0"))["reason"] == "bad_signature"
    assert executable.read_bytes() == OLD


@pytest.mark.parametrize(
    ("version", "body"),
    [
        ("1.9.0", b"#!/bin/sh\necho 1.9.1\n"),  # not the version it was signed as
        ("1.9.2", b"#!/bin/sh\nexit 3\n"),  # does not start
        ("1.9.3", b"not an executable at all"),
    ],
)
async def test_a_signed_file_that_does_not_start_as_its_version_is_refused(
    world: World, version: str, body: bytes
) -> None:
    await world.publish(version, body)
    _, executable, _ = await start_agent(world, version="1.0.0", name=f"smoke-{version}")
    event = await refused(world, version)
    assert event["reason"] == "does_not_start"
    assert executable.read_bytes() == OLD
    assert not previous_file(executable).exists()


async def test_a_manifest_edited_in_the_database_is_refused(world: World) -> None:
    """The server rewrites the stored manifest to point at a file of its own."""
    evil = b"#!/bin/sh\necho server's own code\n"
    name = await world.publish("1.4.0", b"#!/bin/sh\necho genuine 1.4\n")
    genuine = await signed_manifest(world, name)
    forged = replace(genuine, sha256=hashlib.sha256(evil).hexdigest(), size=len(evil))
    world.release_file(name).write_bytes(evil)
    await edit_row(
        world, name, manifest=forged.encode().decode(), sha256=forged.sha256, size_bytes=forged.size
    )
    _, executable, _ = await start_agent(world, version="1.0.0", name="db-edit")
    assert (await refused(world, "1.4.0"))["reason"] == "bad_signature"
    assert executable.read_bytes() == OLD


async def test_an_older_release_is_refused(world: World) -> None:
    """The relay only offers newer versions; a compromised one relabels an old signed
    release as newer in its database to roll agents back."""
    name = await world.publish("1.5.0", b"#!/bin/sh\necho old but signed\n")
    await edit_row(world, name, version="9.9.9")
    _, executable, _ = await start_agent(world, version="2.0.0", name="rollback")
    event = await refused(world, "1.5.0")
    assert event["reason"] == "older_version"
    assert executable.read_bytes() == OLD


async def test_an_expired_manifest_is_refused(world: World) -> None:
    """A genuine manifest that expired (a replay, or a server frozen on old metadata)."""
    name = await world.publish("1.6.0", b"#!/bin/sh\necho expired\n")
    old = replace(
        await signed_manifest(world, name), expires_at=datetime.now(UTC) - timedelta(days=1)
    )
    key = mf.load_private_key(world.key_file.read_bytes())  # the operator signed it, back then
    await edit_row(
        world, name, manifest=old.encode().decode(), signature=mf.sign(old.encode(), key)
    )
    _, executable, _ = await start_agent(world, version="1.0.0", name="expired")
    assert (await refused(world, "1.6.0"))["reason"] == "expired"
    assert executable.read_bytes() == OLD


async def test_a_release_for_another_platform_is_refused(world: World) -> None:
    """A genuine Windows release served to Linux agents (the row relabelled)."""
    name = await world.publish("1.7.0", b"MZ windows agent", platform="windows")
    await edit_row(world, name, platform="linux")
    _, executable, _ = await start_agent(world, version="1.0.0", name="platform")
    assert (await refused(world, "1.7.0"))["reason"] == "wrong_platform"
    assert executable.read_bytes() == OLD


async def test_pinned_and_paused_machines_are_not_offered_newer_versions(world: World) -> None:
    await world.publish("1.8.0", b"#!/bin/sh\necho 1.8.0\n")
    await world.api._call("PUT", "/api/update-policies", json={"pinned_version": "1.0.0"})
    try:
        _, executable, restarted = await start_agent(world, version="1.0.0", name="pinned")
        await async_wait_until(lambda: _online(world, "pinned"), 20, "pinned agent online")
        announced = await world.api._call("POST", "/api/releases/announce")
        assert announced["offered"] == 0
        await world.api._call("PUT", "/api/update-policies", json={"paused": True})
        assert (await world.api._call("POST", "/api/releases/announce"))["offered"] == 0
        assert not restarted.is_set()
        assert executable.read_bytes() == OLD
        # Lifting the pin offers it at once.
        await world.api._call("PUT", "/api/update-policies", json={})
        await asyncio.wait_for(restarted.wait(), 20)
        assert executable.read_bytes() == b"#!/bin/sh\necho 1.8.0\n"
    finally:
        for policy in await world.api._call("GET", "/api/update-policies"):
            await world.api._call("DELETE", f"/api/update-policies/{policy['id']}")


async def _online(world: World, name: str) -> bool:
    machines = await world.api._call("GET", "/api/machines")
    return any(m["name"] == name and m["online"] for m in machines)


def just_updated(version: str, body: bytes, probation: float) -> Callable[[Updater], None]:
    """Leave the agent's file as a verified swap leaves it: new file, ``.previous``, and
    the probation state; the agent then starts as the exec'd new version would."""

    def prepare(updater: Updater) -> None:
        assert updater.executable is not None
        new = updater.executable.with_name("downloaded")
        new.write_bytes(body)
        manifest = mf.Manifest(
            version=version, platform="linux", arch="x86_64", size=len(body),
            sha256=hashlib.sha256(body).hexdigest(), channel="stable",
            filename=f"guruconnect-agent-{version}-linux-x86_64",
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )  # fmt: skip
        updater.probation_seconds = probation
        updater.swap(new, manifest)
        updater.current_version = version
        updater.probation_seconds = PROBATION

    return prepare


PROBATION = 600.0


async def test_a_new_version_that_comes_online_confirms_the_update(world: World) -> None:
    body = b"#!/bin/sh\necho 3.0\n"
    updater, executable, restarted = await start_agent(
        world, version="1.0.0", name="confirm", before=just_updated("3.0.0", body, PROBATION)
    )
    [event] = await async_wait_until(
        lambda: asyncio.to_thread(world.events, "agent.updated", "3.0.0"), 20, "agent.updated"
    )
    assert event["detail"] == "updated from 1.0.0"
    assert updater.probation() is None
    assert executable.read_bytes() == body
    assert previous_file(executable).read_bytes() == OLD
    assert not restarted.is_set()


async def test_a_new_version_that_cannot_connect_rolls_back(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The new file runs but never gets online (here: it cannot reach the relay) before its
    probation ends: the previous file goes back and runs, and says so once online."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    body = b"#!/bin/sh\necho 4.0 broken\n"
    _, executable, restarted = await start_agent(
        world, version="1.0.0", name="rollback-probation", server=nowhere,
        before=just_updated("4.0.0", body, scaled(1.0)),
    )  # fmt: skip
    await asyncio.wait_for(restarted.wait(), scaled(20))
    assert executable.read_bytes() == OLD
    assert not previous_file(executable).exists()  # moved back into place
    # The old version, exec'd again, reports the rollback once and never retries 4.0.0.
    await world.publish("4.0.0", body)
    old, _, again = await start_agent(world, version="1.0.0", name="rollback-probation")
    [event] = await async_wait_until(
        lambda: asyncio.to_thread(world.events, "agent.update_rolled_back", "4.0.0"),
        20, "agent.update_rolled_back",
    )  # fmt: skip
    assert event["reason"] == "not_online"
    assert old.is_rolled_back_version("4.0.0")
    assert old.rolled_back_report() is None  # reported once
    # Offered on connect (after its status), and again when an admin announces: skipped.
    await async_wait_until(lambda: _skipped(caplog, 1), 20, "skipped on connect")
    assert (await world.api._call("POST", "/api/releases/announce"))["offered"] == 1
    await async_wait_until(lambda: _skipped(caplog, 2), 20, "skipped when announced")
    assert not again.is_set()
    assert executable.read_bytes() == OLD


async def _skipped(caplog: pytest.LogCaptureFixture, times: int) -> bool:
    return caplog.text.count("update skipped: this version was rolled back") >= times

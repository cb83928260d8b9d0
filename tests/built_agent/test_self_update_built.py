"""Self-update with real built files: the agent built as 0.0.1 (trusting the test-only
release key in ``keys/``) updates itself to the standard build, signed as 0.1.0, over a
real server; refuses every forged, tampered, older, expired, foreign or broken release;
and rolls back when the new version cannot come online within its probation.

Two builds (this module's 0.0.1 and the session's standard one) come from the build cache.
The timings measured are printed (``-s``) for the report, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from guruconnect.releases import manifest as mf
from guruconnect.server import admin
from guruconnect.server.db.schema import releases, session_events
from tests.agent.conftest import ROOT, XServer
from tests.built_agent.conftest import BUILD_SCRIPT, BUILD_TIMEOUT, clean_env
from tests.conftest import Database, LiveServer, make_settings
from tests.security.tcp_proxy import CuttableProxy
from tests.timing import scaled, wait_until

pytestmark = pytest.mark.timeout(scaled(2 * BUILD_TIMEOUT + 240))

KEYS = Path(__file__).parent / "keys"
TEST_KEY = KEYS / "test-only-release.key"
OLD_VERSION = "0.0.1"
#: The standard build prints the package's version; it is published as exactly that.
NEW_VERSION = importlib.metadata.version("guruconnect")


@pytest.fixture(scope="module")
def old_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent built as 0.0.1 with the test-only release key as its root of trust."""
    dist = tmp_path_factory.mktemp("dist-old") / "guruconnect-linux-x86_64"
    env = {
        **os.environ,
        "AGENT_DIST": str(dist),
        "AGENT_VERSION": OLD_VERSION,
        "AGENT_RELEASE_KEYS": str(KEYS / "test-only-release.pub.pem"),
    }
    env.pop("AGENT_SERVER", None)
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT)], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=scaled(BUILD_TIMEOUT), check=False,
    )  # fmt: skip
    if result.returncode != 0 or not dist.is_file():
        pytest.fail(f"build of {OLD_VERSION} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return dist


class AgentGate(CuttableProxy):
    """A proxy in front of the server that, once armed, shuts the door on agents the moment
    an agent's WebSocket ends: the old process closes it just before it execs the new file,
    so the new file finds no server, deterministically."""

    armed = False

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readline()
        is_agent = first.startswith(b"GET /ws/agent")
        if self._cut and is_agent:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        up_writer.write(first)
        # Tracked like the base class's, so stop() aborts them before its loop closes.
        self._writers |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self._writers -= {writer, up_writer}
        if is_agent and self.armed:
            self._cut = True


@dataclass
class Rig:
    server: LiveServer
    data: Path
    token: str
    tmp: Path
    xserver: XServer
    new_agent: Path
    old_agent: Path
    processes: list[subprocess.Popen[bytes]]

    def api(self) -> httpx.Client:
        return self.server.client(token=self.token)

    def publish(
        self, version: str, artifact: Path, *, key: Path = TEST_KEY, platform: str = "linux"
    ) -> str:
        def go() -> str:
            self.server.database.sql(update(releases).values(deleted_at=datetime.now(UTC)))
            release = asyncio.run(
                admin.publish_release(
                    self.server.settings, artifact, version=version, platform=platform,
                    arch="x86_64", key_file=key,
                )
            )  # fmt: skip
            return release.filename

        return go()

    def revive(self, filename: str) -> None:
        self.server.database.sql(update(releases).values(deleted_at=datetime.now(UTC)))
        self.server.database.sql(
            update(releases).where(releases.c.filename == filename).values(deleted_at=None)
        )

    def edit(self, filename: str, **values: Any) -> None:
        self.server.database.sql(
            update(releases).where(releases.c.filename == filename).values(**values)
        )

    def manifest(self, filename: str) -> mf.Manifest:
        [row] = self.server.database.sql(
            select(releases.c.manifest).where(releases.c.filename == filename)
        )
        return mf.parse(row.manifest.encode())

    def event(self, event_type: str, version: str, machine: str) -> dict[str, Any] | None:
        columns = (session_events.c.detail, session_events.c.machine_id)
        rows = self.server.database.sql(
            select(*columns).where(session_events.c.event_type == event_type)
        )
        for row in rows:
            if row.detail.get("version") == version and str(row.machine_id) == machine:
                return dict(row.detail)
        return None

    def machine(self, label: str) -> dict[str, Any] | None:
        for m in self.api().get("/api/machines").json():
            if m["name"] == label:
                return dict(m)
        return None

    def install(
        self, name: str, server_url: str, *, probation: float = 120.0
    ) -> tuple[Path, subprocess.Popen[bytes], Path]:
        """The old build installed in a folder of its own and started as a service would."""
        folder = self.tmp / name
        folder.mkdir()
        executable = folder / "guruconnect-agent"
        shutil.copy2(self.old_agent, executable)
        key = self.api().post("/api/agent-keys", json={"label": name}).json()["key"]
        key_file = folder / "agent.key"
        key_file.write_text(key)
        key_file.chmod(0o600)
        log = folder / "agent.log"
        home = folder / "home"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(executable), "agent", "--server", server_url, "--key-file", str(key_file),
                 "--no-windows", "--h264-encoders", "none", "--update-probation", str(probation)],
                env=clean_env(home, DISPLAY=self.xserver.display), cwd=folder,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.processes.append(process)
        return executable, process, log


@pytest.fixture(scope="module")
def rig(
    tmp_path_factory: pytest.TempPathFactory, xserver: XServer, built_agent: Path, old_agent: Path
) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("built-update")
    database = Database("sqlite", f"sqlite+aiosqlite:///{tmp / 'guruconnect.db'}")
    live = LiveServer(make_settings(database, home=tmp / "data"), database).start()
    live.create_user("root", is_admin=True)
    rig = Rig(live, tmp / "data", live.login("root"), tmp, xserver, built_agent, old_agent, [])
    rig.publish(NEW_VERSION, built_agent)
    yield rig
    for process in rig.processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    live.stop()


def online(rig: Rig, label: str, version: str) -> dict[str, Any] | None:
    m = rig.machine(label)
    if m and m["online"] and (m.get("agent_version") or "").startswith(version):
        return m
    return None


def test_the_built_agent_updates_itself_in_place(rig: Rig) -> None:
    rig.revive(f"guruconnect-agent-{NEW_VERSION}-linux-x86_64")
    policy = rig.api().put("/api/update-policies", json={"paused": True}).json()
    try:
        started = time.monotonic()
        executable, process, log = rig.install("updates", rig.server.url)
        machine = wait_until(lambda: online(rig, "updates", OLD_VERSION), 180, "old agent online")
        cold_start = time.monotonic() - started
    finally:
        rig.api().delete(f"/api/update-policies/{policy['id']}")  # also offers the update
    offered = time.monotonic()
    wait_until(lambda: online(rig, "updates", NEW_VERSION), 300, f"{NEW_VERSION} online")
    updated = time.monotonic() - offered
    assert wait_until(
        lambda: rig.event("agent.updated", NEW_VERSION, machine["id"]), 60, "agent.updated"
    )
    assert executable.read_bytes() == rig.new_agent.read_bytes()
    assert (
        executable.parent / "guruconnect-agent.previous"
    ).read_bytes() == rig.old_agent.read_bytes()
    assert process.poll() is None  # the same process (exec), still serving
    text = log.read_text(errors="replace")
    assert "update installed; restarting" in text
    assert "Traceback" not in text
    load = os.getloadavg()[0]
    print(
        f"\nFIGURES cold start {cold_start:.1f} s; "
        f"offer -> {NEW_VERSION} online {updated:.1f} s; load {load:.1f}"
    )


def test_the_built_agent_refuses_every_bad_release(rig: Rig) -> None:
    attacker, _, _ = admin.release_keygen(rig.tmp / "attacker")
    # Nothing genuine on offer: the agent must stay the old build for every case below.
    rig.server.database.sql(update(releases).values(deleted_at=datetime.now(UTC)))
    executable, process, log = rig.install("refuses", rig.server.url)
    machine = wait_until(lambda: online(rig, "refuses", OLD_VERSION), 180, "agent online")

    def refused(version: str) -> str:
        rig.api().post("/api/releases/announce")
        event = wait_until(
            lambda: rig.event("agent.update_refused", version, machine["id"]),
            180,
            f"refusal of {version}",
        )
        return str(event["reason"])

    # A tampered file: the stored artifact changed, same size.
    name = rig.publish("0.2.0", rig.new_agent)
    stored = rig.data / "releases" / name
    body = bytearray(stored.read_bytes())
    body[len(body) // 2] ^= 0xFF
    stored.write_bytes(bytes(body))
    assert refused("0.2.0") == "hash_mismatch"
    # Signed by a key the agent does not trust.
    rig.publish("0.3.0", rig.new_agent, key=attacker)
    assert refused("0.3.0") == "bad_signature"
    # An older signed release relabelled as newer in the database (rollback attack).
    name = rig.publish("0.0.0", rig.new_agent)
    rig.edit(name, version="9.9.9")
    assert refused("0.0.0") == "older_version"
    # A genuine manifest that has expired.
    name = rig.publish("0.4.0", rig.new_agent)
    old = rig.manifest(name)
    old = mf.Manifest(**{**old.__dict__, "expires_at": datetime.now(UTC) - timedelta(hours=1)})
    key = mf.load_private_key(TEST_KEY.read_bytes())
    rig.edit(name, manifest=old.encode().decode(), signature=mf.sign(old.encode(), key))
    assert refused("0.4.0") == "expired"
    # A genuine release for another platform, relabelled.
    name = rig.publish("0.5.0", rig.new_agent, platform="windows")
    rig.edit(name, platform="linux")
    assert refused("0.5.0") == "wrong_platform"
    # Signed as 0.6.0, but the file is another version: it fails the --version check.
    rig.publish("0.6.0", rig.new_agent)
    assert refused("0.6.0") == "does_not_start"
    assert executable.read_bytes() == rig.old_agent.read_bytes()
    assert not (executable.parent / "guruconnect-agent.previous").exists()
    assert process.poll() is None
    text = log.read_text(errors="replace")
    for reason in (
        "hash_mismatch",
        "bad_signature",
        "older_version",
        "expired",
        "wrong_platform",
        "does_not_start",
    ):
        assert f"update refused: {reason}: " in text, reason
    assert "Traceback" not in text


def test_the_built_agent_rolls_back_when_the_new_version_cannot_connect(rig: Rig) -> None:
    host, port = rig.server.url.removeprefix("http://").split(":")
    gate = AgentGate(host, int(port)).start()
    try:
        rig.revive(f"guruconnect-agent-{NEW_VERSION}-linux-x86_64")
        policy = rig.api().put("/api/update-policies", json={"paused": True}).json()
        executable, process, log = rig.install(
            "rolls-back", f"http://127.0.0.1:{gate.port}", probation=scaled(10)
        )
        machine = wait_until(lambda: online(rig, "rolls-back", OLD_VERSION), 180, "agent online")
        gate.armed = True  # the next agent disconnect (the exec) shuts the door
        rig.api().delete(f"/api/update-policies/{policy['id']}")
        wait_until(
            lambda: rig.event("agent.update_installing", NEW_VERSION, machine["id"]),
            60,
            "installing",
        )
        # The new file runs, cannot reach the server, and puts the old one back.
        wait_until(
            lambda: executable.read_bytes() == rig.old_agent.read_bytes(),
            scaled(10) + 90,
            "rollback",
        )
        gate.restore()
        event = wait_until(
            lambda: rig.event("agent.update_rolled_back", NEW_VERSION, machine["id"]),
            180,
            "rolled back",
        )
        assert event["reason"] == "not_online"
        wait_until(lambda: online(rig, "rolls-back", OLD_VERSION), 180, "old version online again")
        assert process.poll() is None
        text = log.read_text(errors="replace")
        assert "update rolled back" in text
        assert "update skipped: this version was rolled back" in text
    finally:
        gate.stop()

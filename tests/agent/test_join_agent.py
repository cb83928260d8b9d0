"""The file the join page serves, run as a customer would: downloaded from the page, made
executable, started with no arguments under Xvfb. It reads its code and server from its
own name, asks consent (answered with xdotool), shows the session bar, and when the
session ends (from the dashboard, by the person, or by a denial) it exits and its file is
gone. Run against the venv (a launcher script) and against the built single file when
``make agent-dist`` has made one."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from guruconnect.client import ApiClient, ViewerClient
from guruconnect.protocol import SessionState
from tests.agent.conftest import XServer, admin_api
from tests.agent.test_e2e import CONSENT, INDICATOR, next_state, wait_online
from tests.built_agent.conftest import BUILD_TIMEOUT, built_agent, clean_env  # noqa: F401 - built_agent: the fixture
from tests.conftest import LiveServer
from tests.timing import async_wait_until, scaled


@pytest.fixture(
    params=[
        "venv",
        # The first test to need the built file may wait for its build (minutes when cold).
        pytest.param("built", marks=pytest.mark.timeout(scaled(BUILD_TIMEOUT + 180))),
    ]
)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def dist(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    target = folder / "guruconnect-linux-x86_64"
    if kind == "venv":
        # The same entry point the frozen file runs, started through a script so that its
        # own name (argv[0]) is the downloaded file's.
        target.write_text(f"#!{sys.executable}\nfrom guruconnect.cli import main\n\nmain()\n")
    else:
        # tests/built_agent's session fixture: the build cache's file, built if needed.
        target.symlink_to(request.getfixturevalue("built_agent"))
    return folder


@pytest.fixture
def join_relay(sqlite_server: Callable[..., LiveServer], dist: Path) -> LiveServer:
    server = sqlite_server(agent_dist_dir=dist, consent_timeout_seconds=30)
    server.create_user("root", is_admin=True)
    return server


@dataclass
class Joined:
    process: subprocess.Popen[bytes]
    path: Path
    log_path: Path
    started: float

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def customer(
    xserver: XServer, tmp_path: Path, kind: str
) -> Iterator[Callable[[LiveServer, str], Joined]]:
    # The built file runs as on a machine without Python: nothing of the venv on PATH.
    env = clean_env(tmp_path / "home", DISPLAY=xserver.display) if kind == "built" else xserver.env
    started: list[Joined] = []

    def download_and_run(server: LiveServer, code: str) -> Joined:
        """What the customer does: download from the join page, chmod +x, run."""
        begin = time.monotonic()
        downloads = tmp_path / "Downloads"
        downloads.mkdir(exist_ok=True)
        with httpx.Client(base_url=server.url, timeout=scaled(60)) as http:
            details = http.get(f"/join/{code}/details")
            assert details.status_code == 200, details.text
            (offer,) = details.json()["downloads"]
            response = http.get(offer["url"])
        assert response.status_code == 200, response.text
        disposition = response.headers["content-disposition"]
        name = re.search(r'filename="([^"]+)"', disposition)
        assert name is not None, disposition
        assert name[1] == offer["file_name"]
        path = downloads / name[1]
        path.write_bytes(response.content)
        path.chmod(0o700)
        log_path = tmp_path / f"join{len(started)}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [str(path)], env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=downloads
            )
        joined = Joined(process, path, log_path, begin)
        started.append(joined)
        return joined

    yield download_and_run
    for joined in started:
        if joined.process.poll() is None:
            joined.process.kill()
            joined.process.wait()
    xserver.stop_children()


async def support_session(api: ApiClient) -> str:
    async def redeemed() -> str | None:
        codes = await api._call("GET", "/api/support-codes")
        return str(codes[0]["session_id"]) if codes and codes[0]["session_id"] else None

    return await async_wait_until(redeemed, 20, "the code redeemed")


def exits_and_is_gone(joined: Joined) -> None:
    try:
        code = joined.process.wait(scaled(30))
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the join agent kept running:\n{joined.log()[-3000:]}") from None
    assert code == 0, joined.log()[-3000:]
    assert not joined.path.exists(), "the downloaded file is still there"
    assert "Traceback" not in joined.log()


def test_the_downloaded_file_serves_one_session_then_exits_and_removes_itself(
    join_relay: LiveServer,
    xserver: XServer,
    customer: Callable[[LiveServer, str], Joined],
    record_property: Callable[[str, object], None],
) -> None:
    async def scenario() -> Joined:
        api = await admin_api(join_relay)
        code = (await api.create_support_code())["code"]
        joined = await asyncio.to_thread(customer, join_relay, code)
        machine_id = await wait_online(api, timeout=scaled(60))
        online = time.monotonic() - joined.started
        record_property("download_to_online_s", round(online, 2))
        print(f"download -> online: {online:.2f} s")
        session_id = await support_session(api)
        ticket = await api.viewer_ticket(session_id, "control")

        viewer = await ViewerClient.connect(api.base_url, session_id, ticket)
        dialog = await asyncio.to_thread(xserver.window, CONSENT, scaled(30))
        await asyncio.to_thread(xserver.press, dialog, "alt+a")
        await next_state(viewer, SessionState.STATE_ACTIVE, timeout=scaled(30))
        await viewer.expect("video_frame", timeout=scaled(30))
        await asyncio.to_thread(xserver.window, INDICATOR, scaled(30))
        # The technician ends it from the dashboard: the agent stops, and cannot be used
        # for another session.
        await api.end_session(session_id)
        await asyncio.to_thread(exits_and_is_gone, joined)
        machines = await api._call("GET", "/api/machines")
        items = machines["items"] if isinstance(machines, dict) else machines
        assert not any(m["online"] for m in items if str(m["id"]) == machine_id)
        await viewer.close()
        await api.aclose()
        return joined

    asyncio.run(scenario())


def test_the_person_ending_or_denying_stops_it_too(
    join_relay: LiveServer, xserver: XServer, customer: Callable[[LiveServer, str], Joined]
) -> None:
    async def scenario() -> None:
        api = await admin_api(join_relay)
        # Ended from the session bar.
        code = (await api.create_support_code())["code"]
        joined = await asyncio.to_thread(customer, join_relay, code)
        dialog = await asyncio.to_thread(xserver.window, CONSENT, scaled(60))
        await asyncio.to_thread(xserver.press, dialog, "alt+a")
        indicator = await asyncio.to_thread(xserver.window, INDICATOR, scaled(30))
        await asyncio.to_thread(xserver.press, indicator, "alt+e")
        await asyncio.to_thread(exits_and_is_gone, joined)

        # Denied in the consent dialog.
        code = (await api.create_support_code())["code"]
        joined = await asyncio.to_thread(customer, join_relay, code)
        dialog = await asyncio.to_thread(xserver.window, CONSENT, scaled(60))
        await asyncio.to_thread(xserver.press, dialog, "alt+d")
        await asyncio.to_thread(exits_and_is_gone, joined)
        await api.aclose()

    asyncio.run(scenario())


def test_a_renamed_file_with_a_bad_name_refuses_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "guruconnect-join_K7QX2-MZ9RB_ftp_example.com_443"
    path.write_text(f"#!{sys.executable}\nfrom guruconnect.cli import main\n\nmain()\n")
    path.chmod(0o700)
    result = subprocess.run(
        [str(path)], capture_output=True, text=True, timeout=scaled(60), check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "guruconnect: this file's name is not valid: "
        "the server's scheme must be https or http, not 'ftp'"
    ]

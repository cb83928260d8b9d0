"""The whole happy path once, end to end: key, agent, session, consent, frames, input."""

from __future__ import annotations

import logging

import pytest

from guruconnect.client import ApiClient, ViewerClient
from guruconnect.protocol import KeyEvent, SessionState, VideoFrame
from tests.conftest import PASSWORD
from tests.relay.conftest import Relay, events_of, eventually

pytestmark = pytest.mark.asyncio


async def test_agent_to_viewer_and_back(relay: Relay, admin_api: ApiClient) -> None:
    agent, machine_id, _ = await relay.online_agent(admin_api)
    session_id = await relay.active_session(admin_api, agent, machine_id)
    viewer = await relay.viewer(admin_api, session_id)
    assert viewer.state.state == SessionState.State.STATE_ACTIVE
    await agent.expect("keyframe_request")  # the join asks for a full picture

    frame = VideoFrame(session_id=session_id, keyframe=True, data=b"\x01" * 4096)
    await agent.send(frame)
    assert (await viewer.expect("video_frame")) == frame

    key = KeyEvent(scan_code=0x1D, down=True)
    await viewer.send(key)
    assert (await agent.expect("key_event")) == key

    await admin_api.end_session(session_id)
    code, reason = await viewer.wait_closed()
    assert code == 4410
    assert "ended_by_technician" in reason
    [ended] = await events_of(relay.server, "session.ended")
    assert ended.detail["reason"] == "ended_by_technician"
    await agent.close()


async def test_no_credential_reaches_the_logs(
    relay: Relay,
    admin_api: ApiClient,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A ticket travels in the URL, and uvicorn logs every upgrade's URL: that line must
    not carry it. Nor may any log line carry a password, a JWT or an agent key."""
    caplog.set_level(logging.DEBUG)
    agent, machine_id, key = await relay.online_agent(admin_api)
    session_id = await relay.active_session(admin_api, agent, machine_id)
    ticket = await admin_api.viewer_ticket(session_id)
    viewer = await ViewerClient.connect(relay.url, session_id, ticket)
    await viewer.close()
    await agent.close()
    await eventually(lambda: events_of(relay.server, "viewer.left"))
    out, err = capfd.readouterr()
    # Everything but the test's own client library's wire trace (it logs the URL it opens).
    server_records = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    logged = "\n".join([out, err, *(f"{r.getMessage()} {r.__dict__}" for r in server_records)])
    assert "/ws/viewer" in logged  # the upgrade was logged, so the check below means something
    for secret in (ticket, key["key"], admin_api.token, PASSWORD):
        assert secret not in logged

"""The whole happy path once, end to end: key, agent, session, consent, frames, input."""

from __future__ import annotations

import pytest

from guruconnect.client import ApiClient
from guruconnect.protocol import KeyEvent, SessionState, VideoFrame
from tests.relay.conftest import Relay, events_of

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

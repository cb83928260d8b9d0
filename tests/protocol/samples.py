"""One populated message per payload type, shared by the round-trip and fuzz tests."""

from __future__ import annotations

from guruconnect.protocol import (
    AgentHello,
    AgentStatus,
    AuthResult,
    ChatMessage,
    ClipboardText,
    Codec,
    ConsentPolicy,
    ConsentRequest,
    ConsentResponse,
    ControlRequest,
    CursorPosition,
    CursorShape,
    Disconnect,
    Display,
    DisplayList,
    DisplaySwitch,
    Error,
    Heartbeat,
    KeyEvent,
    KeyframeRequest,
    MouseButton,
    MouseEvent,
    PayloadMessage,
    Scope,
    SessionRequest,
    SessionResponse,
    SessionState,
    SpecialKey,
    SpecialKeyEvent,
    Tile,
    UpdateAvailable,
    UpdateResult,
    VideoFrame,
    ViewerHello,
)

SESSION = "3f0c6a52-8c1e-4b7e-9d35-1f2a7c9e0b44"
DISPLAYS = [
    Display(id=0, x=0, y=0, width=1920, height=1080, primary=True, name="DP-1"),
    Display(id=1, x=1920, y=-200, width=2560, height=1440, name="HDMI-1 «über»"),
]

#: Field name -> a message with most fields set (defaults would serialize to nothing).
SAMPLES: dict[str, PayloadMessage] = {
    "agent_hello": AgentHello(
        agent_key="cak_" + "k" * 40, agent_version="0.1.0", hostname="pc-01", os="Linux"
    ),
    "auth_result": AuthResult(
        ok=True, machine_id="m-1", session_id=SESSION, reason="", heartbeat_interval_s=15
    ),
    "agent_status": AgentStatus(
        hostname="pc-01",
        os="Windows 11",
        agent_version="0.1.0",
        displays=DISPLAYS,
        encoders=[Codec.CODEC_H264, Codec.CODEC_RAW_ZSTD],
        consent_policy=ConsentPolicy.CONSENT_POLICY_ASK,
        user_name="jürgen",
    ),
    "session_request": SessionRequest(
        session_id=SESSION,
        technician="alice",
        scope=Scope.SCOPE_CONTROL,
        codecs=[Codec.CODEC_RAW_ZSTD],
        consent_required=True,
    ),
    "session_response": SessionResponse(
        session_id=SESSION, accepted=True, codec=Codec.CODEC_RAW_ZSTD, reason="ok"
    ),
    "session_state": SessionState(
        session_id=SESSION,
        state=SessionState.State.STATE_ACTIVE,
        reason="granted",
        controller="alice",
        scope=Scope.SCOPE_VIEW,
        displays=DISPLAYS,
        codec=Codec.CODEC_H264,
    ),
    "viewer_hello": ViewerHello(codecs=[Codec.CODEC_H264, Codec.CODEC_RAW_ZSTD]),
    "video_frame": VideoFrame(
        session_id=SESSION,
        display_id=1,
        codec=Codec.CODEC_RAW_ZSTD,
        timestamp_us=1_700_000_000_000_000,
        keyframe=True,
        width=2560,
        height=1440,
        tiles=[
            Tile(x=0, y=0, width=64, height=64, data=bytes(range(256)) * 3),
            Tile(x=64, y=0, width=64, height=64, data=b"\x28\xb5\x2f\xfd" + b"\x00" * 20),
        ],
        frame_number=42,
    ),
    "cursor_shape": CursorShape(
        id=7, width=2, height=2, hotspot_x=1, hotspot_y=1, bgra=b"\xff\x00\x00\xff" * 4
    ),
    "cursor_position": CursorPosition(display_id=1, x=-5, y=300, visible=True, shape_id=7),
    "keyframe_request": KeyframeRequest(session_id=SESSION, display_id=1),
    "mouse_event": MouseEvent(
        display_id=1,
        x=100,
        y=-1,
        button=MouseButton.MOUSE_BUTTON_LEFT,
        down=True,
        wheel_x=-1,
        wheel_y=3,
    ),
    "key_event": KeyEvent(scan_code=0x5B, extended=True, down=True, text="ß€😀"),
    "special_key": SpecialKeyEvent(key=SpecialKey.SPECIAL_KEY_CTRL_ALT_DEL),
    "consent_request": ConsentRequest(
        session_id=SESSION, technician="alice", scope=Scope.SCOPE_CONTROL, timeout_s=30
    ),
    "consent_response": ConsentResponse(session_id=SESSION, granted=False, reason="denied"),
    "chat": ChatMessage(session_id=SESSION, sender="alice", text="Hallo 👋", sent_at_ms=1),
    "clipboard": ClipboardText(text="line 1\nline 2\t¶"),
    "display_list": DisplayList(displays=DISPLAYS),
    "display_switch": DisplaySwitch(display_id=1, all=True),
    "control_request": ControlRequest(take=True),
    "heartbeat": Heartbeat(sent_at_ms=2**63 + 5, reply=True),
    "disconnect": Disconnect(reason="bye", code=1000),
    "error": Error(code=4403, message="not allowed"),
    "update_available": UpdateAvailable(manifest=b'{"type":"x"}', signature="c2ln"),
    "update_result": UpdateResult(
        outcome=UpdateResult.OUTCOME_REFUSED, version="9.9", reason="bad_signature", detail="x"
    ),
}

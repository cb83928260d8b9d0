from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODEC_UNSPECIFIED: _ClassVar[Codec]
    CODEC_RAW_ZSTD: _ClassVar[Codec]
    CODEC_H264: _ClassVar[Codec]

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_VIEW: _ClassVar[Scope]
    SCOPE_CONTROL: _ClassVar[Scope]

class ConsentPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_POLICY_UNSPECIFIED: _ClassVar[ConsentPolicy]
    CONSENT_POLICY_ASK: _ClassVar[ConsentPolicy]
    CONSENT_POLICY_UNATTENDED: _ClassVar[ConsentPolicy]

class MouseButton(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOUSE_BUTTON_NONE: _ClassVar[MouseButton]
    MOUSE_BUTTON_LEFT: _ClassVar[MouseButton]
    MOUSE_BUTTON_RIGHT: _ClassVar[MouseButton]
    MOUSE_BUTTON_MIDDLE: _ClassVar[MouseButton]
    MOUSE_BUTTON_BACK: _ClassVar[MouseButton]
    MOUSE_BUTTON_FORWARD: _ClassVar[MouseButton]

class SpecialKey(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPECIAL_KEY_UNSPECIFIED: _ClassVar[SpecialKey]
    SPECIAL_KEY_CTRL_ALT_DEL: _ClassVar[SpecialKey]
    SPECIAL_KEY_WIN: _ClassVar[SpecialKey]
    SPECIAL_KEY_ALT_TAB: _ClassVar[SpecialKey]
    SPECIAL_KEY_PRINT_SCREEN: _ClassVar[SpecialKey]
    SPECIAL_KEY_CTRL_ESC: _ClassVar[SpecialKey]
    SPECIAL_KEY_LOCK_WORKSTATION: _ClassVar[SpecialKey]
CODEC_UNSPECIFIED: Codec
CODEC_RAW_ZSTD: Codec
CODEC_H264: Codec
SCOPE_UNSPECIFIED: Scope
SCOPE_VIEW: Scope
SCOPE_CONTROL: Scope
CONSENT_POLICY_UNSPECIFIED: ConsentPolicy
CONSENT_POLICY_ASK: ConsentPolicy
CONSENT_POLICY_UNATTENDED: ConsentPolicy
MOUSE_BUTTON_NONE: MouseButton
MOUSE_BUTTON_LEFT: MouseButton
MOUSE_BUTTON_RIGHT: MouseButton
MOUSE_BUTTON_MIDDLE: MouseButton
MOUSE_BUTTON_BACK: MouseButton
MOUSE_BUTTON_FORWARD: MouseButton
SPECIAL_KEY_UNSPECIFIED: SpecialKey
SPECIAL_KEY_CTRL_ALT_DEL: SpecialKey
SPECIAL_KEY_WIN: SpecialKey
SPECIAL_KEY_ALT_TAB: SpecialKey
SPECIAL_KEY_PRINT_SCREEN: SpecialKey
SPECIAL_KEY_CTRL_ESC: SpecialKey
SPECIAL_KEY_LOCK_WORKSTATION: SpecialKey

class Envelope(_message.Message):
    __slots__ = ("seq", "agent_hello", "auth_result", "agent_status", "session_request", "session_response", "session_state", "viewer_hello", "video_frame", "cursor_shape", "cursor_position", "keyframe_request", "mouse_event", "key_event", "special_key", "consent_request", "consent_response", "chat", "clipboard", "display_list", "display_switch", "control_request", "heartbeat", "disconnect", "error", "update_available", "update_result")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AGENT_HELLO_FIELD_NUMBER: _ClassVar[int]
    AUTH_RESULT_FIELD_NUMBER: _ClassVar[int]
    AGENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    SESSION_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SESSION_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    SESSION_STATE_FIELD_NUMBER: _ClassVar[int]
    VIEWER_HELLO_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FRAME_FIELD_NUMBER: _ClassVar[int]
    CURSOR_SHAPE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_POSITION_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_REQUEST_FIELD_NUMBER: _ClassVar[int]
    MOUSE_EVENT_FIELD_NUMBER: _ClassVar[int]
    KEY_EVENT_FIELD_NUMBER: _ClassVar[int]
    SPECIAL_KEY_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CONSENT_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CHAT_FIELD_NUMBER: _ClassVar[int]
    CLIPBOARD_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_LIST_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_SWITCH_FIELD_NUMBER: _ClassVar[int]
    CONTROL_REQUEST_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_RESULT_FIELD_NUMBER: _ClassVar[int]
    seq: int
    agent_hello: AgentHello
    auth_result: AuthResult
    agent_status: AgentStatus
    session_request: SessionRequest
    session_response: SessionResponse
    session_state: SessionState
    viewer_hello: ViewerHello
    video_frame: VideoFrame
    cursor_shape: CursorShape
    cursor_position: CursorPosition
    keyframe_request: KeyframeRequest
    mouse_event: MouseEvent
    key_event: KeyEvent
    special_key: SpecialKeyEvent
    consent_request: ConsentRequest
    consent_response: ConsentResponse
    chat: ChatMessage
    clipboard: ClipboardText
    display_list: DisplayList
    display_switch: DisplaySwitch
    control_request: ControlRequest
    heartbeat: Heartbeat
    disconnect: Disconnect
    error: Error
    update_available: UpdateAvailable
    update_result: UpdateResult
    def __init__(self, seq: _Optional[int] = ..., agent_hello: _Optional[_Union[AgentHello, _Mapping]] = ..., auth_result: _Optional[_Union[AuthResult, _Mapping]] = ..., agent_status: _Optional[_Union[AgentStatus, _Mapping]] = ..., session_request: _Optional[_Union[SessionRequest, _Mapping]] = ..., session_response: _Optional[_Union[SessionResponse, _Mapping]] = ..., session_state: _Optional[_Union[SessionState, _Mapping]] = ..., viewer_hello: _Optional[_Union[ViewerHello, _Mapping]] = ..., video_frame: _Optional[_Union[VideoFrame, _Mapping]] = ..., cursor_shape: _Optional[_Union[CursorShape, _Mapping]] = ..., cursor_position: _Optional[_Union[CursorPosition, _Mapping]] = ..., keyframe_request: _Optional[_Union[KeyframeRequest, _Mapping]] = ..., mouse_event: _Optional[_Union[MouseEvent, _Mapping]] = ..., key_event: _Optional[_Union[KeyEvent, _Mapping]] = ..., special_key: _Optional[_Union[SpecialKeyEvent, _Mapping]] = ..., consent_request: _Optional[_Union[ConsentRequest, _Mapping]] = ..., consent_response: _Optional[_Union[ConsentResponse, _Mapping]] = ..., chat: _Optional[_Union[ChatMessage, _Mapping]] = ..., clipboard: _Optional[_Union[ClipboardText, _Mapping]] = ..., display_list: _Optional[_Union[DisplayList, _Mapping]] = ..., display_switch: _Optional[_Union[DisplaySwitch, _Mapping]] = ..., control_request: _Optional[_Union[ControlRequest, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., update_available: _Optional[_Union[UpdateAvailable, _Mapping]] = ..., update_result: _Optional[_Union[UpdateResult, _Mapping]] = ...) -> None: ...

class AgentHello(_message.Message):
    __slots__ = ("agent_key", "support_code", "agent_version", "hostname", "os")
    AGENT_KEY_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_CODE_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    agent_key: str
    support_code: str
    agent_version: str
    hostname: str
    os: str
    def __init__(self, agent_key: _Optional[str] = ..., support_code: _Optional[str] = ..., agent_version: _Optional[str] = ..., hostname: _Optional[str] = ..., os: _Optional[str] = ...) -> None: ...

class AuthResult(_message.Message):
    __slots__ = ("ok", "machine_id", "session_id", "reason", "heartbeat_interval_s")
    OK_FIELD_NUMBER: _ClassVar[int]
    MACHINE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    machine_id: str
    session_id: str
    reason: str
    heartbeat_interval_s: int
    def __init__(self, ok: _Optional[bool] = ..., machine_id: _Optional[str] = ..., session_id: _Optional[str] = ..., reason: _Optional[str] = ..., heartbeat_interval_s: _Optional[int] = ...) -> None: ...

class Display(_message.Message):
    __slots__ = ("id", "x", "y", "width", "height", "primary", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    x: int
    y: int
    width: int
    height: int
    primary: bool
    name: str
    def __init__(self, id: _Optional[int] = ..., x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., primary: _Optional[bool] = ..., name: _Optional[str] = ...) -> None: ...

class AgentStatus(_message.Message):
    __slots__ = ("hostname", "os", "agent_version", "displays", "encoders", "consent_policy", "user_name", "platform", "arch")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DISPLAYS_FIELD_NUMBER: _ClassVar[int]
    ENCODERS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_POLICY_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    os: str
    agent_version: str
    displays: _containers.RepeatedCompositeFieldContainer[Display]
    encoders: _containers.RepeatedScalarFieldContainer[Codec]
    consent_policy: ConsentPolicy
    user_name: str
    platform: str
    arch: str
    def __init__(self, hostname: _Optional[str] = ..., os: _Optional[str] = ..., agent_version: _Optional[str] = ..., displays: _Optional[_Iterable[_Union[Display, _Mapping]]] = ..., encoders: _Optional[_Iterable[_Union[Codec, str]]] = ..., consent_policy: _Optional[_Union[ConsentPolicy, str]] = ..., user_name: _Optional[str] = ..., platform: _Optional[str] = ..., arch: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("session_id", "technician", "scope", "codecs", "consent_required")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TECHNICIAN_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    technician: str
    scope: Scope
    codecs: _containers.RepeatedScalarFieldContainer[Codec]
    consent_required: bool
    def __init__(self, session_id: _Optional[str] = ..., technician: _Optional[str] = ..., scope: _Optional[_Union[Scope, str]] = ..., codecs: _Optional[_Iterable[_Union[Codec, str]]] = ..., consent_required: _Optional[bool] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("session_id", "accepted", "codec", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    accepted: bool
    codec: Codec
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., accepted: _Optional[bool] = ..., codec: _Optional[_Union[Codec, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class SessionState(_message.Message):
    __slots__ = ("session_id", "state", "reason", "controller", "scope", "displays", "codec")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[SessionState.State]
        STATE_WAITING_FOR_AGENT: _ClassVar[SessionState.State]
        STATE_AWAITING_CONSENT: _ClassVar[SessionState.State]
        STATE_ACTIVE: _ClassVar[SessionState.State]
        STATE_RECONNECTING: _ClassVar[SessionState.State]
        STATE_ENDED: _ClassVar[SessionState.State]
    STATE_UNSPECIFIED: SessionState.State
    STATE_WAITING_FOR_AGENT: SessionState.State
    STATE_AWAITING_CONSENT: SessionState.State
    STATE_ACTIVE: SessionState.State
    STATE_RECONNECTING: SessionState.State
    STATE_ENDED: SessionState.State
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    DISPLAYS_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState.State
    reason: str
    controller: str
    scope: Scope
    displays: _containers.RepeatedCompositeFieldContainer[Display]
    codec: Codec
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState.State, str]] = ..., reason: _Optional[str] = ..., controller: _Optional[str] = ..., scope: _Optional[_Union[Scope, str]] = ..., displays: _Optional[_Iterable[_Union[Display, _Mapping]]] = ..., codec: _Optional[_Union[Codec, str]] = ...) -> None: ...

class ViewerHello(_message.Message):
    __slots__ = ("codecs",)
    CODECS_FIELD_NUMBER: _ClassVar[int]
    codecs: _containers.RepeatedScalarFieldContainer[Codec]
    def __init__(self, codecs: _Optional[_Iterable[_Union[Codec, str]]] = ...) -> None: ...

class Tile(_message.Message):
    __slots__ = ("x", "y", "width", "height", "data")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    width: int
    height: int
    data: bytes
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class VideoFrame(_message.Message):
    __slots__ = ("session_id", "display_id", "codec", "timestamp_us", "keyframe", "width", "height", "tiles", "data", "frame_number")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_ID_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TILES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FRAME_NUMBER_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    display_id: int
    codec: Codec
    timestamp_us: int
    keyframe: bool
    width: int
    height: int
    tiles: _containers.RepeatedCompositeFieldContainer[Tile]
    data: bytes
    frame_number: int
    def __init__(self, session_id: _Optional[str] = ..., display_id: _Optional[int] = ..., codec: _Optional[_Union[Codec, str]] = ..., timestamp_us: _Optional[int] = ..., keyframe: _Optional[bool] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., tiles: _Optional[_Iterable[_Union[Tile, _Mapping]]] = ..., data: _Optional[bytes] = ..., frame_number: _Optional[int] = ...) -> None: ...

class CursorShape(_message.Message):
    __slots__ = ("id", "width", "height", "hotspot_x", "hotspot_y", "bgra")
    ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    HOTSPOT_X_FIELD_NUMBER: _ClassVar[int]
    HOTSPOT_Y_FIELD_NUMBER: _ClassVar[int]
    BGRA_FIELD_NUMBER: _ClassVar[int]
    id: int
    width: int
    height: int
    hotspot_x: int
    hotspot_y: int
    bgra: bytes
    def __init__(self, id: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., hotspot_x: _Optional[int] = ..., hotspot_y: _Optional[int] = ..., bgra: _Optional[bytes] = ...) -> None: ...

class CursorPosition(_message.Message):
    __slots__ = ("display_id", "x", "y", "visible", "shape_id")
    DISPLAY_ID_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_ID_FIELD_NUMBER: _ClassVar[int]
    display_id: int
    x: int
    y: int
    visible: bool
    shape_id: int
    def __init__(self, display_id: _Optional[int] = ..., x: _Optional[int] = ..., y: _Optional[int] = ..., visible: _Optional[bool] = ..., shape_id: _Optional[int] = ...) -> None: ...

class KeyframeRequest(_message.Message):
    __slots__ = ("session_id", "display_id", "dropped_frames")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_ID_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    display_id: int
    dropped_frames: int
    def __init__(self, session_id: _Optional[str] = ..., display_id: _Optional[int] = ..., dropped_frames: _Optional[int] = ...) -> None: ...

class MouseEvent(_message.Message):
    __slots__ = ("display_id", "x", "y", "button", "down", "wheel_x", "wheel_y")
    DISPLAY_ID_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    BUTTON_FIELD_NUMBER: _ClassVar[int]
    DOWN_FIELD_NUMBER: _ClassVar[int]
    WHEEL_X_FIELD_NUMBER: _ClassVar[int]
    WHEEL_Y_FIELD_NUMBER: _ClassVar[int]
    display_id: int
    x: int
    y: int
    button: MouseButton
    down: bool
    wheel_x: int
    wheel_y: int
    def __init__(self, display_id: _Optional[int] = ..., x: _Optional[int] = ..., y: _Optional[int] = ..., button: _Optional[_Union[MouseButton, str]] = ..., down: _Optional[bool] = ..., wheel_x: _Optional[int] = ..., wheel_y: _Optional[int] = ...) -> None: ...

class KeyEvent(_message.Message):
    __slots__ = ("scan_code", "extended", "down", "text")
    SCAN_CODE_FIELD_NUMBER: _ClassVar[int]
    EXTENDED_FIELD_NUMBER: _ClassVar[int]
    DOWN_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    scan_code: int
    extended: bool
    down: bool
    text: str
    def __init__(self, scan_code: _Optional[int] = ..., extended: _Optional[bool] = ..., down: _Optional[bool] = ..., text: _Optional[str] = ...) -> None: ...

class SpecialKeyEvent(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: SpecialKey
    def __init__(self, key: _Optional[_Union[SpecialKey, str]] = ...) -> None: ...

class ConsentRequest(_message.Message):
    __slots__ = ("session_id", "technician", "scope", "timeout_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TECHNICIAN_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    technician: str
    scope: Scope
    timeout_s: int
    def __init__(self, session_id: _Optional[str] = ..., technician: _Optional[str] = ..., scope: _Optional[_Union[Scope, str]] = ..., timeout_s: _Optional[int] = ...) -> None: ...

class ConsentResponse(_message.Message):
    __slots__ = ("session_id", "granted", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    granted: bool
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., granted: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("session_id", "sender", "text", "sent_at_ms")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    sender: str
    text: str
    sent_at_ms: int
    def __init__(self, session_id: _Optional[str] = ..., sender: _Optional[str] = ..., text: _Optional[str] = ..., sent_at_ms: _Optional[int] = ...) -> None: ...

class ClipboardText(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class DisplayList(_message.Message):
    __slots__ = ("displays",)
    DISPLAYS_FIELD_NUMBER: _ClassVar[int]
    displays: _containers.RepeatedCompositeFieldContainer[Display]
    def __init__(self, displays: _Optional[_Iterable[_Union[Display, _Mapping]]] = ...) -> None: ...

class DisplaySwitch(_message.Message):
    __slots__ = ("display_id", "all")
    DISPLAY_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    display_id: int
    all: bool
    def __init__(self, display_id: _Optional[int] = ..., all: _Optional[bool] = ...) -> None: ...

class ControlRequest(_message.Message):
    __slots__ = ("take",)
    TAKE_FIELD_NUMBER: _ClassVar[int]
    take: bool
    def __init__(self, take: _Optional[bool] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_at_ms", "reply")
    SENT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    sent_at_ms: int
    reply: bool
    def __init__(self, sent_at_ms: _Optional[int] = ..., reply: _Optional[bool] = ...) -> None: ...

class Disconnect(_message.Message):
    __slots__ = ("reason", "code")
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    code: int
    def __init__(self, reason: _Optional[str] = ..., code: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class UpdateAvailable(_message.Message):
    __slots__ = ("manifest", "signature")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    manifest: bytes
    signature: str
    def __init__(self, manifest: _Optional[bytes] = ..., signature: _Optional[str] = ...) -> None: ...

class UpdateResult(_message.Message):
    __slots__ = ("outcome", "version", "reason", "detail")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[UpdateResult.Outcome]
        OUTCOME_REFUSED: _ClassVar[UpdateResult.Outcome]
        OUTCOME_INSTALLING: _ClassVar[UpdateResult.Outcome]
        OUTCOME_ROLLED_BACK: _ClassVar[UpdateResult.Outcome]
        OUTCOME_INSTALLED: _ClassVar[UpdateResult.Outcome]
    OUTCOME_UNSPECIFIED: UpdateResult.Outcome
    OUTCOME_REFUSED: UpdateResult.Outcome
    OUTCOME_INSTALLING: UpdateResult.Outcome
    OUTCOME_ROLLED_BACK: UpdateResult.Outcome
    OUTCOME_INSTALLED: UpdateResult.Outcome
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    outcome: UpdateResult.Outcome
    version: str
    reason: str
    detail: str
    def __init__(self, outcome: _Optional[_Union[UpdateResult.Outcome, str]] = ..., version: _Optional[str] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

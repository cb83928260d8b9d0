"""What both socket endpoints check before a peer is let in: origin, connection rate, and a
clear, audited refusal (accept, then close with a documented code and reason)."""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketState

from guruconnect.protocol.close_codes import CloseCode, reason
from guruconnect.protocol.errors import MessageTooLarge, ProtocolError
from guruconnect.server.auth.secrets_format import CredentialKind
from guruconnect.server.db.events import Event
from guruconnect.server.rate_limits import LimiterUnavailable, rate
from guruconnect.server.relay.agent_limits import OverLimit
from guruconnect.server.relay.origin import origin_allowed
from guruconnect.server.state import AppState

log = structlog.get_logger(__name__)

#: Why a credential of another plane was refused, in the audit trail and the close reason.
WRONG_PLANE = {
    CredentialKind.USER_TOKEN: ("user_token", "a user token is not accepted here"),
    CredentialKind.AGENT_KEY: ("agent_key", "an agent key is not accepted here"),
    CredentialKind.VIEWER_TICKET: ("viewer_ticket", "a viewer ticket is not accepted here"),
    CredentialKind.SUPPORT_CODE: ("support_code", "a support code is not accepted here"),
}


def limit_event(exc: ProtocolError) -> str:
    """The audit event type for a message the relay refused."""
    if isinstance(exc, MessageTooLarge):
        return "limit.message_too_big"
    if isinstance(exc, OverLimit):
        return "limit.agent_over_limit"
    return "limit.protocol_error"  # malformed, or a type this plane may not send


def source_of(ws: WebSocket) -> str:
    return ws.client.host if ws.client else "unknown"


def bearer(ws: WebSocket) -> str | None:
    header = ws.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def refuse(
    ws: WebSocket,
    state: AppState,
    *,
    plane: str,
    code: int,
    why: str,
    audit_reason: str,
    **detail: Any,
) -> None:
    """Close with ``code`` and ``why`` (the client sees both) and record the refusal."""
    state.hub.metrics.refusals.labels(plane, audit_reason).inc()
    with contextlib.suppress(Exception):
        if ws.client_state == WebSocketState.CONNECTING:
            await ws.accept()
        await ws.close(code, reason(why))
    with contextlib.suppress(Exception):
        await state.audit.record(
            Event(
                f"{plane}.auth_failed",
                source_address=source_of(ws),
                detail={"reason": audit_reason, "close_code": code, **detail},
            )
        )


async def admit(ws: WebSocket, state: AppState, plane: str) -> bool:
    """Origin and connection-rate checks; refuses (and returns False) on failure."""
    settings = state.settings
    if not origin_allowed(ws.headers, ws.url.scheme, settings.allowed_origins, settings.public_url):
        await refuse(
            ws,
            state,
            plane=plane,
            code=CloseCode.FORBIDDEN_ORIGIN,
            why="origin not allowed",
            audit_reason="origin_refused",
            origin=ws.headers.get("origin", "")[:200],
        )
        return False
    item = rate(state.settings.ws_connect_rate_limit)
    try:
        allowed = await state.rate_limits.hit(item, "ws", plane, source_of(ws))
    except LimiterUnavailable:
        # Abuse control, not authentication: credentials are still checked below.
        log.warning("connection rate limiter unavailable; admitting", plane=plane)
        allowed = True
    if not allowed:
        await refuse(
            ws,
            state,
            plane=plane,
            code=CloseCode.RATE_LIMITED,
            why="too many connection attempts; try again later",
            audit_reason="rate_limited",
        )
        return False
    return True

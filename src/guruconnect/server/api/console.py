"""The console's event stream: one Server-Sent Events stream per browser tab, carrying
what changed (console_events.py) among the things its user may see.

Server-Sent Events over a plain ``StreamingResponse``, not a WebSocket and not a new
dependency: the traffic is one-way, ``EventSource`` sends the session cookie by itself
(same origin), passes proxies as an ordinary long GET, and the few things a library would
add (a heartbeat, stopping on disconnect) are a dozen lines here, next to the parts no
library does for us: the per-event access check, the bounded queue, re-checking the token.

Each event is filtered for this user with the REST API's own rules (the tenant, then the
role, then client access; a support-code session also reaches the code's creator): a
technician never learns that a machine of a client they may not reach exists.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse

from guruconnect.server.api.deps import Authenticated, Principal, State
from guruconnect.server.auth.permissions import Permission, effective_permissions
from guruconnect.server.console_events import ConsoleEvent, EventKind
from guruconnect.server.db import auth_tokens, users
from guruconnect.server.state import AppState
from guruconnect.server.transport_limits import ENDLESS_RESPONSE

router = APIRouter(prefix="/api/console", tags=["console"])

#: A comment line this often keeps proxies from closing an idle stream; the token is
#: checked again at the same time (revoked, user disabled, role changed).
HEARTBEAT_SECONDS = 15.0
#: A stream ends after this long at most; the browser reconnects (and authenticates again).
MAX_STREAM_SECONDS = 600.0
#: Streams one user may hold open at once (tabs); more get 429.
MAX_STREAMS_PER_USER = 12
#: What the browser waits before reconnecting after the stream ends (its own backoff adds).
RETRY_MS = 2000

_open_streams: Counter[uuid.UUID] = Counter()

_SESSION_KINDS = {EventKind.SESSION_CREATED, EventKind.SESSION_STATE, EventKind.SESSION_ENDED}


async def may_see(state: AppState, principal: Principal, event: ConsoleEvent) -> bool:
    """The rule the REST API applies to the same rows (machines, sessions, codes)."""
    user = principal.user
    if event.tenant_id != user.tenant_id or event.machine_id is None:
        return False
    if event.kind is EventKind.SUPPORT_CODE_REDEEMED:
        # GET /api/support-codes: admins see all codes, others their own.
        if Permission.SUPPORT_CODES_CREATE not in principal.permissions:
            return False
        return principal.is_admin or event.technician_id == user.id
    if Permission.SESSIONS_VIEW not in principal.permissions:
        return False
    if principal.is_admin:
        return True
    async with state.engine.connect() as conn:
        if event.kind in _SESSION_KINDS:
            return await users.can_reach_session(
                conn,
                user,
                machine_id=event.machine_id,
                technician_id=event.technician_id,
                kind=event.session_kind or "",
            )
        return await users.can_reach_machine(conn, user, event.machine_id)


async def recheck(state: AppState, principal: Principal) -> Principal | None:
    """The principal as the database says it is now; None once its token is no good."""
    claims = principal.claims
    if claims.expires_at <= datetime.now(UTC):
        return None
    async with state.engine.connect() as conn:
        token_state = await auth_tokens.state(conn, claims)
        if token_state is None or token_state.revoked or not token_state.user_live:
            return None
        user = await users.get(conn, claims.tenant_id, claims.user_id)
        if user is None:
            return None
        granted = await users.permissions_of(conn, user.id)
    return Principal(user, claims, effective_permissions(user.role, granted), principal.via_cookie)


def _frame(event: str, data: dict[str, object]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(state: AppState, principal: Principal) -> AsyncIterator[bytes]:
    user_id = principal.user.id
    _open_streams[user_id] += 1
    subscription = state.hub.console.subscribe(principal.user.tenant_id)
    try:
        # Subscribed before "ready": a page that reloads its rows on "ready" misses nothing.
        yield f"retry: {RETRY_MS}\n".encode() + _frame("ready", {})
        started = time.monotonic()
        next_check = started + HEARTBEAT_SECONDS
        why = "closed"
        while True:
            now = time.monotonic()
            if now - started >= MAX_STREAM_SECONDS:
                why = "reconnect"
                break
            if now >= next_check:
                current = await recheck(state, principal)
                if current is None:
                    why = "unauthorized"
                    break
                principal = current
                next_check = now + HEARTBEAT_SECONDS
                yield b": ping\n\n"
            try:
                event = await subscription.get(max(0.05, next_check - time.monotonic()))
            except StopAsyncIteration:
                why = "overflow" if subscription.overflowed else "closed"
                break
            if event is not None and await may_see(state, principal, event):
                yield _frame("change", event.to_json())
        yield _frame("end", {"reason": why})
    finally:
        subscription.close()
        _open_streams[user_id] -= 1
        if _open_streams[user_id] <= 0:
            del _open_streams[user_id]


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
        406: {"description": "The request did not accept text/event-stream"},
        429: {"description": "Too many streams open for this user"},
    },
)
async def console_events(
    request: Request, principal: Authenticated, state: State
) -> StreamingResponse:
    """Server-Sent Events: ``ready`` once subscribed, then ``change`` events
    (``{"kind": "machine.online", "machine_id": ...}``), and ``end`` with a reason
    (``overflow``: this browser fell behind; ``unauthorized``; ``reconnect``; ``closed``)
    before the server closes the stream."""
    # Only for a client that asked for a stream (EventSource does): a plain GET (a script,
    # a crawler of the API) gets an answer instead of a request that never ends.
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise HTTPException(
            status.HTTP_406_NOT_ACCEPTABLE, detail="an event stream: send Accept: text/event-stream"
        )
    # The server cuts this response when it shuts down (it would never end by itself).
    setattr(request.state, ENDLESS_RESPONSE, True)
    # Counted while the stream runs (a request dropped before its body starts holds none).
    if _open_streams[principal.user.id] >= MAX_STREAMS_PER_USER:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail="too many open streams")
    return StreamingResponse(
        _stream(state, principal),
        media_type="text/event-stream",
        # A buffering proxy (nginx) would hold the events back.
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"},
    )

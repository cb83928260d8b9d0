"""``/ws/viewer?session_id=...&ticket=cvt_...``: a technician's view of one session.

Only a viewer ticket opens it: minted by the API for one user, one session and one scope,
good for 60 seconds and a single connection. Because it is that narrow it may travel in
the URL (browsers cannot set headers on a WebSocket); ``Authorization: Bearer cvt_...``
works too. A user JWT or an agent key is refused here, whatever it claims.
"""

from __future__ import annotations

import time
import uuid

from starlette.websockets import WebSocket

from guruconnect.protocol.close_codes import CloseCode
from guruconnect.protocol.errors import ProtocolError
from guruconnect.protocol.planes import Plane, inbound_type
from guruconnect.server.auth import secrets_format
from guruconnect.server.auth.secrets_format import CredentialKind
from guruconnect.server.db import users, viewer_tickets
from guruconnect.server.db.events import Event
from guruconnect.server.relay.gate import WRONG_PLANE, admit, bearer, limit_event, refuse, source_of
from guruconnect.server.relay.peers import Peer, ViewerPeer
from guruconnect.server.relay.throttle import TokenBucket
from guruconnect.server.state import app_state

PLANE = "viewer"


async def viewer_endpoint(ws: WebSocket) -> None:
    state = app_state(ws)
    if not await admit(ws, state, PLANE):
        return

    async def deny(code: int, why: str, audit_reason: str, **detail: object) -> None:
        await refuse(
            ws, state, plane=PLANE, code=code, why=why, audit_reason=audit_reason, **detail
        )

    credential = ws.query_params.get("ticket") or bearer(ws)
    try:
        session_id = uuid.UUID(ws.query_params.get("session_id", ""))
    except ValueError:
        await deny(CloseCode.SESSION_NOT_FOUND, "session_id missing or malformed", "bad_session_id")
        return
    if not credential:
        await deny(CloseCode.UNAUTHORIZED, "missing viewer ticket", "missing_credential")
        return
    kind = secrets_format.classify(credential)
    if kind is not CredentialKind.VIEWER_TICKET:
        audit_reason, why = WRONG_PLANE.get(kind, ("malformed", "invalid viewer ticket"))
        await deny(CloseCode.UNAUTHORIZED, why, f"{audit_reason}_on_viewer_plane")
        return

    async with state.engine.begin() as conn:
        ticket = await viewer_tickets.consume(conn, secrets_format.digest(credential))
    if ticket is None:
        await deny(CloseCode.UNAUTHORIZED, "ticket invalid, used or expired", "bad_ticket")
        return
    if ticket.session_id != session_id:
        await deny(
            CloseCode.UNAUTHORIZED,
            "ticket is for another session",
            "ticket_for_other_session",
            session_id=str(session_id),
            ticket_session_id=str(ticket.session_id),
        )
        return
    settings = state.settings
    hub = state.hub
    viewer = ViewerPeer(
        peer=Peer(
            ws,
            source=source_of(ws),
            video_limit=settings.viewer_video_queue,
            video_bytes_limit=settings.viewer_video_queue_bytes,
        ),
        user_id=ticket.user_id,
        username="",
        tenant_id=ticket.tenant_id,
        token_id=ticket.token_id,
        session_id=session_id,
        scope=ticket.scope,
        bucket=TokenBucket(
            settings.input_events_per_second, settings.input_events_per_second, time.monotonic()
        ),
    )
    # Everything the API checked when it minted the ticket is checked again: a minute is
    # long enough for a logout or a revoked grant to happen in between.
    async with state.engine.connect() as conn:
        refused = await hub.refusal(conn, viewer)
        user = await users.get(conn, ticket.tenant_id, ticket.user_id)
    if refused is not None:
        await deny(refused.code, refused.why, refused.audit_reason)
        return
    assert user is not None  # refusal() found the user
    viewer.username = user.username
    await ws.accept()
    if await hub.viewer_joined(viewer) is None:
        await deny(CloseCode.SESSION_ENDED, "session is not live", "session_not_live")
        return
    # A revocation that landed between the check above and joining found no socket to
    # close; the database has it by now, so one more look closes that gap.
    async with state.engine.connect() as conn:
        late = await hub.refusal(conn, viewer)
    if late is not None:
        viewer.peer.close(late.code, late.why)

    async def handle(data: bytes) -> None:
        try:
            kind = inbound_type(Plane.VIEWER, data, max_size=settings.viewer_max_message_bytes)
            hub.from_viewer(viewer, kind, data)
        except ProtocolError as exc:
            viewer.peer.close(exc.close_code, str(exc))
            hub.audit_later(
                Event(
                    limit_event(exc),
                    tenant_id=viewer.tenant_id,
                    session_id=viewer.session_id,
                    user_id=viewer.user_id,
                    actor=viewer.username,
                    source_address=viewer.peer.source,
                    detail={"plane": PLANE, "error": str(exc), "close_code": int(exc.close_code)},
                )
            )

    try:
        await viewer.peer.run(handle, heartbeats=hub.heartbeats)
    finally:
        await hub.viewer_left(viewer)
        if viewer.peer.remote_close_code == CloseCode.MESSAGE_TOO_BIG:
            # Refused by the WebSocket parser as it read (transport_limits), before
            # ``handle`` could see it: audited here instead.
            await hub.audit(
                Event(
                    "limit.message_too_big",
                    tenant_id=viewer.tenant_id,
                    session_id=viewer.session_id,
                    user_id=viewer.user_id,
                    actor=viewer.username,
                    source_address=viewer.peer.source,
                    detail={
                        "plane": PLANE,
                        "limit": settings.viewer_max_message_bytes,
                        "close_code": int(CloseCode.MESSAGE_TOO_BIG),
                    },
                )
            )

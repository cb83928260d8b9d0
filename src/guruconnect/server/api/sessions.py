"""Sessions: list, end, and mint the viewer ticket that opens one viewer socket."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.api.access import visible_machines
from guruconnect.server.api.deps import Authenticated, Principal, State, require, source_address
from guruconnect.server.auth import secrets_format
from guruconnect.server.auth.permissions import Permission, for_scope
from guruconnect.server.db import sessions, users, viewer_tickets
from guruconnect.server.db.events import Event
from guruconnect.server.db.sessions import Session

router = APIRouter(prefix="/api/sessions", tags=["sessions"])
NOT_FOUND = "session not found"


class SessionOut(BaseModel):
    id: uuid.UUID
    machine_id: uuid.UUID
    technician_id: uuid.UUID | None
    kind: str
    scope: str
    state: str
    codec: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None

    @classmethod
    def of(cls, session: Session) -> SessionOut:
        values = {k: v for k, v in session.__dict__.items() if k != "tenant_id"}
        return cls(**values)


class TicketRequest(BaseModel):
    scope: Literal["view", "control"]


class ViewerTicketOut(BaseModel):
    #: Single use, short-lived; pass it as ``?ticket=`` (or a Bearer header) to /ws/viewer.
    ticket: str
    session_id: uuid.UUID
    scope: str
    expires_at: datetime
    #: The path to open, with the ticket in it.
    url: str


async def reachable_session(
    conn: AsyncConnection, principal: Principal, session_id: uuid.UUID
) -> Session:
    session = await sessions.get(conn, principal.user.tenant_id, session_id)
    if session is None or not await users.can_reach_session(
        conn,
        principal.user,
        machine_id=session.machine_id,
        technician_id=session.technician_id,
        kind=session.kind,
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    return session


@router.get("")
async def list_sessions(
    principal: Authenticated,
    state: State,
    live: bool | None = None,
    machine_id: uuid.UUID | None = None,
) -> list[SessionOut]:
    require(principal, Permission.SESSIONS_VIEW)
    async with state.engine.connect() as conn:
        allowed = {m.id for m in await visible_machines(conn, principal)}
        wanted = allowed & {machine_id} if machine_id else allowed
        found = (
            await sessions.list_for_tenant(
                conn, principal.user.tenant_id, machine_ids=wanted, live=live
            )
            if wanted or principal.is_admin
            else []
        )
    return [SessionOut.of(s) for s in found if s.machine_id in allowed]


@router.get("/{session_id}", responses={404: {"description": NOT_FOUND}})
async def get_session(session_id: uuid.UUID, principal: Authenticated, state: State) -> SessionOut:
    require(principal, Permission.SESSIONS_VIEW)
    async with state.engine.connect() as conn:
        return SessionOut.of(await reachable_session(conn, principal, session_id))


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": NOT_FOUND}},
)
async def end_session(session_id: uuid.UUID, principal: Authenticated, state: State) -> Response:
    require(principal, Permission.SESSIONS_VIEW)
    async with state.engine.connect() as conn:
        await reachable_session(conn, principal, session_id)
    await state.hub.end_session(session_id, "ended_by_technician", by=principal.user.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{session_id}/viewer-token",
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "Scope not permitted"},
        404: {"description": NOT_FOUND},
        409: {"description": "Session not live"},
    },
)
async def viewer_token(
    session_id: uuid.UUID,
    body: TicketRequest,
    principal: Authenticated,
    request: Request,
    state: State,
) -> ViewerTicketOut:
    require(principal, for_scope(body.scope))
    ttl = timedelta(seconds=state.settings.viewer_ticket_ttl_seconds)
    ticket, ticket_hash = secrets_format.new_viewer_ticket()
    async with state.engine.begin() as conn:
        session = await reachable_session(conn, principal, session_id)
        if not session.live or session_id not in state.hub.sessions:
            raise HTTPException(status.HTTP_409_CONFLICT, detail="the session is not live")
        if body.scope == "control" and session.scope != "control":
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail="this session was granted for viewing only"
            )
        row = await viewer_tickets.create(
            conn,
            tenant_id=session.tenant_id,
            session_id=session.id,
            user_id=principal.user.id,
            token_id=principal.claims.jti,
            scope=body.scope,
            ticket_hash=ticket_hash,
            ttl=ttl,
        )
    await state.audit.record(
        Event(
            "viewer.ticket_issued",
            tenant_id=session.tenant_id,
            session_id=session.id,
            machine_id=session.machine_id,
            user_id=principal.user.id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"scope": body.scope, "ticket_id": str(row.id)},
        )
    )
    return ViewerTicketOut(
        ticket=ticket,
        session_id=session.id,
        scope=body.scope,
        expires_at=row.expires_at,
        url=f"/ws/viewer?session_id={session.id}&ticket={ticket}",
    )

"""The audit trail, tenant-scoped, for admins and users granted ``audit.read``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from guruconnect.server.api.deps import Authenticated, State, require
from guruconnect.server.auth.permissions import Permission
from guruconnect.server.db import events

router = APIRouter(prefix="/api/events", tags=["audit"])


class EventOut(BaseModel):
    id: uuid.UUID
    event_type: str
    created_at: datetime
    session_id: uuid.UUID | None
    machine_id: uuid.UUID | None
    user_id: uuid.UUID | None
    actor: str | None
    source_address: str | None
    detail: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventOut]
    #: Pass as ``before`` for the next (older) page; null on the last page.
    next_before: uuid.UUID | None


@router.get("")
async def list_events(
    principal: Authenticated,
    state: State,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    session_id: uuid.UUID | None = None,
    machine_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    before: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventPage:
    require(principal, Permission.AUDIT_READ)
    async with state.engine.connect() as conn:
        found = await events.list_events(
            conn,
            principal.user.tenant_id,
            event_type=event_type,
            session_id=session_id,
            machine_id=machine_id,
            user_id=user_id,
            before=before,
            limit=limit,
        )
    page = [
        EventOut(
            id=e.id,
            event_type=e.event_type,
            created_at=e.created_at,
            session_id=e.session_id,
            machine_id=e.machine_id,
            user_id=e.user_id,
            actor=e.actor,
            source_address=e.source_address,
            detail=e.detail,
        )
        for e in found
    ]
    return EventPage(events=page, next_before=page[-1].id if len(page) == limit else None)

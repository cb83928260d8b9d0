"""The audit trail (``session_events``): append-only rows, read tenant-scoped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import session_events
from guruconnect.server.db.types import storable, storable_json, utcnow


@dataclass(frozen=True)
class Event:
    event_type: str
    tenant_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    machine_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    actor: str | None = None
    source_address: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEvent(Event):
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=utcnow)


async def append(conn: AsyncConnection, event: Event) -> uuid.UUID:
    event_id = uuid.uuid4()
    await conn.execute(
        insert(session_events).values(
            id=event_id,
            tenant_id=event.tenant_id,
            session_id=event.session_id,
            machine_id=event.machine_id,
            user_id=event.user_id,
            event_type=event.event_type,
            actor=storable(event.actor) if event.actor is not None else None,
            source_address=event.source_address,
            detail=storable_json(event.detail),
            created_at=utcnow(),
        )
    )
    return event_id


async def list_events(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    event_type: str | None = None,
    user_id: uuid.UUID | None = None,
    machine_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    before: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[StoredEvent]:
    """Newest first. ``before`` is the id of the last event of the previous page; order and
    cursor are (created_at, id), so rows sharing a timestamp are neither lost nor repeated."""
    query = select(session_events).where(session_events.c.tenant_id == tenant_id)
    for column, value in (
        (session_events.c.event_type, event_type),
        (session_events.c.user_id, user_id),
        (session_events.c.machine_id, machine_id),
        (session_events.c.session_id, session_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(session_events.c.created_at >= since)
    if until is not None:
        query = query.where(session_events.c.created_at < until)
    if before is not None:
        anchor = (
            select(session_events.c.created_at)
            .where(session_events.c.id == before, session_events.c.tenant_id == tenant_id)
            .scalar_subquery()
        )
        query = query.where(
            or_(
                session_events.c.created_at < anchor,
                and_(session_events.c.created_at == anchor, session_events.c.id < before),
            )
        )
    query = query.order_by(session_events.c.created_at.desc(), session_events.c.id.desc())
    return [StoredEvent(**dict(row._mapping)) for row in await conn.execute(query.limit(limit))]

"""Viewer tickets: minted by the API, consumed once by the viewer socket."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import viewer_tickets
from guruconnect.server.db.types import utcnow


@dataclass(frozen=True)
class ViewerTicket:
    id: uuid.UUID
    tenant_id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID
    token_id: uuid.UUID
    scope: str
    created_at: datetime
    expires_at: datetime


_COLUMNS = [viewer_tickets.c[name] for name in ViewerTicket.__dataclass_fields__]


async def create(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    token_id: uuid.UUID,
    scope: str,
    ticket_hash: str,
    ttl: timedelta,
) -> ViewerTicket:
    now = utcnow()
    ticket = ViewerTicket(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        session_id=session_id,
        user_id=user_id,
        token_id=token_id,
        scope=scope,
        created_at=now,
        expires_at=now + ttl,
    )
    await conn.execute(insert(viewer_tickets).values(**ticket.__dict__, ticket_hash=ticket_hash))
    return ticket


async def consume(conn: AsyncConnection, ticket_hash: str) -> ViewerTicket | None:
    """Use the ticket once: one UPDATE checks unused and unexpired and marks it used."""
    now = utcnow()
    result = await conn.execute(
        update(viewer_tickets)
        .where(
            viewer_tickets.c.ticket_hash == ticket_hash,
            viewer_tickets.c.used_at.is_(None),
            viewer_tickets.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(*_COLUMNS)
    )
    row = result.first()
    return ViewerTicket(**row._mapping) if row else None


async def prune_expired(conn: AsyncConnection) -> int:
    result = await conn.execute(
        delete(viewer_tickets).where(viewer_tickets.c.expires_at <= utcnow())
    )
    return result.rowcount

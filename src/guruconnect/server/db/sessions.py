"""Remote sessions: who connected to which machine, through which states, and why it ended."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import sessions
from guruconnect.server.db.types import utcnow

ENDED = "ended"


@dataclass(frozen=True)
class Session:
    id: uuid.UUID
    tenant_id: uuid.UUID
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

    @property
    def live(self) -> bool:
        return self.state != ENDED


def _select() -> Select[Any]:
    return select(*(sessions.c[name] for name in Session.__dataclass_fields__))


async def create(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    machine_id: uuid.UUID,
    technician_id: uuid.UUID | None,
    kind: str,
    scope: str,
    node_id: str = "default",
) -> Session:
    session = Session(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        machine_id=machine_id,
        technician_id=technician_id,
        kind=kind,
        scope=scope,
        state="requested",
        codec=None,
        created_at=utcnow(),
        started_at=None,
        ended_at=None,
        end_reason=None,
    )
    await conn.execute(insert(sessions).values(**session.__dict__, node_id=node_id))
    return session


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, session_id: uuid.UUID) -> Session | None:
    row = (
        await conn.execute(
            _select().where(sessions.c.id == session_id, sessions.c.tenant_id == tenant_id)
        )
    ).first()
    return Session(**row._mapping) if row else None


async def live_for_machine(conn: AsyncConnection, machine_id: uuid.UUID) -> Session | None:
    row = (
        await conn.execute(
            _select()
            .where(sessions.c.machine_id == machine_id, sessions.c.state != ENDED)
            .order_by(sessions.c.created_at.desc())
        )
    ).first()
    return Session(**row._mapping) if row else None


async def list_for_tenant(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    machine_ids: Collection[uuid.UUID] | None = None,
    live: bool | None = None,
    limit: int = 100,
) -> list[Session]:
    query = _select().where(sessions.c.tenant_id == tenant_id)
    if machine_ids is not None:
        query = query.where(sessions.c.machine_id.in_(machine_ids))
    if live is True:
        query = query.where(sessions.c.state != ENDED)
    elif live is False:
        query = query.where(sessions.c.state == ENDED)
    rows = await conn.execute(query.order_by(sessions.c.created_at.desc()).limit(limit))
    return [Session(**row._mapping) for row in rows]


async def set_state(
    conn: AsyncConnection, session_id: uuid.UUID, state: str, *, codec: str | None = None
) -> None:
    values: dict[str, Any] = {"state": state}
    if state == "active":
        values["started_at"] = utcnow()
    if codec is not None:
        values["codec"] = codec
    await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.state != ENDED)
        .values(**values)
    )


async def set_codec(conn: AsyncConnection, session_id: uuid.UUID, codec: str) -> None:
    await conn.execute(update(sessions).where(sessions.c.id == session_id).values(codec=codec))


async def end(conn: AsyncConnection, session_id: uuid.UUID, reason: str) -> bool:
    """End a live session; False if it had ended already (the first reason stands)."""
    result = await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.state != ENDED)
        .values(state=ENDED, ended_at=utcnow(), end_reason=reason[:255])
    )
    return result.rowcount > 0


async def end_all_live(conn: AsyncConnection, reason: str, node_id: str) -> list[Session]:
    """Startup reconciliation: sessions a crashed process of this node left open are over.
    Other nodes' sessions are theirs."""
    live = [
        Session(**row._mapping)
        for row in await conn.execute(
            _select().where(sessions.c.state != ENDED, sessions.c.node_id == node_id)
        )
    ]
    if live:
        await conn.execute(
            update(sessions)
            .where(sessions.c.id.in_([s.id for s in live]), sessions.c.state != ENDED)
            .values(state=ENDED, ended_at=utcnow(), end_reason=reason)
        )
    return live

"""Per-agent keys: stored as a lookup prefix and a SHA-256 digest, never in clear."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import agent_keys
from guruconnect.server.db.types import utcnow


@dataclass(frozen=True)
class AgentKey:
    id: uuid.UUID
    tenant_id: uuid.UUID
    machine_id: uuid.UUID | None
    prefix: str
    key_hash: str
    label: str | None
    created_by: uuid.UUID | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_COLUMNS = [agent_keys.c[name] for name in AgentKey.__dataclass_fields__]


async def create(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    prefix: str,
    key_hash: str,
    label: str | None,
    machine_id: uuid.UUID | None,
    created_by: uuid.UUID | None,
) -> AgentKey:
    key = AgentKey(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        machine_id=machine_id,
        prefix=prefix,
        key_hash=key_hash,
        label=label,
        created_by=created_by,
        created_at=utcnow(),
        last_used_at=None,
        revoked_at=None,
    )
    await conn.execute(insert(agent_keys).values(**key.__dict__))
    return key


async def by_prefix(conn: AsyncConnection, prefix: str) -> AgentKey | None:
    row = (await conn.execute(select(*_COLUMNS).where(agent_keys.c.prefix == prefix))).first()
    return AgentKey(**row._mapping) if row else None


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID) -> AgentKey | None:
    row = (
        await conn.execute(
            select(*_COLUMNS).where(agent_keys.c.id == key_id, agent_keys.c.tenant_id == tenant_id)
        )
    ).first()
    return AgentKey(**row._mapping) if row else None


async def list_for_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> list[AgentKey]:
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(agent_keys.c.tenant_id == tenant_id)
        .order_by(agent_keys.c.created_at.desc())
    )
    return [AgentKey(**row._mapping) for row in rows]


async def bind_machine(conn: AsyncConnection, key_id: uuid.UUID, machine_id: uuid.UUID) -> bool:
    """Bind an unbound key (compare-and-set); False if another connection bound it first."""
    result = await conn.execute(
        update(agent_keys)
        .where(agent_keys.c.id == key_id, agent_keys.c.machine_id.is_(None))
        .values(machine_id=machine_id)
    )
    return result.rowcount == 1


async def is_revoked(conn: AsyncConnection, key_id: uuid.UUID) -> bool:
    row = (
        await conn.execute(select(agent_keys.c.revoked_at).where(agent_keys.c.id == key_id))
    ).first()
    return row is None or row.revoked_at is not None


async def touch(conn: AsyncConnection, key_id: uuid.UUID) -> None:
    await conn.execute(
        update(agent_keys).where(agent_keys.c.id == key_id).values(last_used_at=utcnow())
    )


async def revoke(conn: AsyncConnection, tenant_id: uuid.UUID, key_id: uuid.UUID) -> bool:
    result = await conn.execute(
        update(agent_keys)
        .where(
            agent_keys.c.id == key_id,
            agent_keys.c.tenant_id == tenant_id,
            agent_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return result.rowcount > 0

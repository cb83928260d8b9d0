"""Tenants: the MSP-level boundary every customer-owned row carries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import tenants
from guruconnect.server.db.types import utcnow

DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    name: str
    created_at: datetime


async def by_name(conn: AsyncConnection, name: str) -> Tenant | None:
    row = (
        await conn.execute(
            select(tenants.c.id, tenants.c.name, tenants.c.created_at).where(
                tenants.c.name == name, tenants.c.deleted_at.is_(None)
            )
        )
    ).first()
    return Tenant(*row) if row else None


async def create(conn: AsyncConnection, name: str) -> Tenant:
    tenant = Tenant(id=uuid.uuid4(), name=name, created_at=utcnow())
    await conn.execute(
        insert(tenants).values(id=tenant.id, name=tenant.name, created_at=tenant.created_at)
    )
    return tenant


async def list_all(conn: AsyncConnection) -> list[Tenant]:
    rows = await conn.execute(
        select(tenants.c.id, tenants.c.name, tenants.c.created_at)
        .where(tenants.c.deleted_at.is_(None))
        .order_by(tenants.c.name)
    )
    return [Tenant(*row) for row in rows]


async def get(conn: AsyncConnection, tenant_id: uuid.UUID) -> Tenant | None:
    row = (
        await conn.execute(
            select(tenants.c.id, tenants.c.name, tenants.c.created_at).where(
                tenants.c.id == tenant_id, tenants.c.deleted_at.is_(None)
            )
        )
    ).first()
    return Tenant(*row) if row else None

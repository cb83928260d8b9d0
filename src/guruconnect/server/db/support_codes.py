"""One-time support codes, consumed atomically: one UPDATE decides who wins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import support_codes
from guruconnect.server.db.types import utcnow


@dataclass(frozen=True)
class SupportCode:
    id: uuid.UUID
    tenant_id: uuid.UUID
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    machine_id: uuid.UUID | None
    session_id: uuid.UUID | None


_COLUMNS = [support_codes.c[name] for name in SupportCode.__dataclass_fields__]


async def create(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    code_hash: str,
    created_by: uuid.UUID,
    ttl: timedelta,
) -> SupportCode:
    now = utcnow()
    code = SupportCode(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        created_by=created_by,
        created_at=now,
        expires_at=now + ttl,
        redeemed_at=None,
        machine_id=None,
        session_id=None,
    )
    await conn.execute(insert(support_codes).values(**code.__dict__, code_hash=code_hash))
    return code


async def consume(conn: AsyncConnection, code_hash: str) -> SupportCode | None:
    """Mark the code redeemed if it is unused and unexpired; None otherwise.

    The check and the write are one statement, so of two racing redemptions exactly one
    sees its row updated, on SQLite and PostgreSQL alike.
    """
    now = utcnow()
    result = await conn.execute(
        update(support_codes)
        .where(
            support_codes.c.code_hash == code_hash,
            support_codes.c.redeemed_at.is_(None),
            support_codes.c.expires_at > now,
        )
        .values(redeemed_at=now)
        .returning(*_COLUMNS)
    )
    row = result.first()
    return SupportCode(**row._mapping) if row else None


async def find_redeemable(conn: AsyncConnection, code_hash: str) -> SupportCode | None:
    """The code if redeeming it now would succeed (unused, unexpired); nothing changes."""
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                support_codes.c.code_hash == code_hash,
                support_codes.c.redeemed_at.is_(None),
                support_codes.c.expires_at > utcnow(),
            )
        )
    ).first()
    return SupportCode(**row._mapping) if row else None


async def attach(
    conn: AsyncConnection, code_id: uuid.UUID, *, machine_id: uuid.UUID, session_id: uuid.UUID
) -> None:
    await conn.execute(
        update(support_codes)
        .where(support_codes.c.id == code_id)
        .values(machine_id=machine_id, session_id=session_id)
    )


async def list_for_tenant(
    conn: AsyncConnection, tenant_id: uuid.UUID, limit: int = 100
) -> list[SupportCode]:
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(support_codes.c.tenant_id == tenant_id)
        .order_by(support_codes.c.created_at.desc())
        .limit(limit)
    )
    return [SupportCode(**row._mapping) for row in rows]


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, code_id: uuid.UUID
) -> SupportCode | None:
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                support_codes.c.id == code_id, support_codes.c.tenant_id == tenant_id
            )
        )
    ).first()
    return SupportCode(**row._mapping) if row else None

"""Account security rows: forced password changes, TOTP state, recovery codes, and the
tenant's security policy. Every query names its tenant or a user already resolved in it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import auth_tokens, mfa_recovery_codes, tenants, users
from guruconnect.server.db.types import utcnow


@dataclass(frozen=True)
class AccountState:
    """What limits a logged-in user until they act (checked on every request)."""

    must_change_password: bool
    mfa_enabled: bool
    mfa_required: bool

    @property
    def mfa_enrolment_required(self) -> bool:
        return self.mfa_required and not self.mfa_enabled


@dataclass(frozen=True)
class Mfa:
    secret: str | None
    pending_secret: str | None
    enabled_at: datetime | None
    last_step: int | None

    @property
    def enabled(self) -> bool:
        return self.secret is not None and self.enabled_at is not None


@dataclass(frozen=True)
class TenantPolicy:
    mfa_required: bool
    audit_keep_content: bool


async def state(conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> AccountState:
    row = (
        await conn.execute(
            select(users.c.must_change_password, users.c.mfa_enabled_at, tenants.c.mfa_required)
            .join(tenants, tenants.c.id == users.c.tenant_id)
            .where(users.c.id == user_id, users.c.tenant_id == tenant_id)
        )
    ).first()
    if row is None:
        return AccountState(False, False, False)
    return AccountState(
        must_change_password=bool(row.must_change_password),
        mfa_enabled=row.mfa_enabled_at is not None,
        mfa_required=bool(row.mfa_required),
    )


async def mfa(conn: AsyncConnection, user_id: uuid.UUID) -> Mfa:
    row = (
        await conn.execute(
            select(
                users.c.mfa_secret,
                users.c.mfa_pending_secret,
                users.c.mfa_enabled_at,
                users.c.mfa_last_step,
            ).where(users.c.id == user_id)
        )
    ).one()
    return Mfa(row.mfa_secret, row.mfa_pending_secret, row.mfa_enabled_at, row.mfa_last_step)


async def set_pending_secret(conn: AsyncConnection, user_id: uuid.UUID, secret: str) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(mfa_pending_secret=secret))


async def enable(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    secret: str,
    step: int,
    recovery_hashes: list[str],
) -> bool:
    """Confirm the pending secret (``step`` is the code that confirmed it); False if the
    pending secret changed meanwhile."""
    now = utcnow()
    result = await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.mfa_pending_secret == secret)
        .values(
            mfa_secret=secret,
            mfa_pending_secret=None,
            mfa_enabled_at=now,
            mfa_last_step=step,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        return False
    await replace_recovery_codes(conn, tenant_id, user_id, recovery_hashes)
    return True


async def disable(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            mfa_secret=None,
            mfa_pending_secret=None,
            mfa_enabled_at=None,
            mfa_last_step=None,
            updated_at=utcnow(),
        )
    )
    await conn.execute(delete(mfa_recovery_codes).where(mfa_recovery_codes.c.user_id == user_id))


async def accept_step(conn: AsyncConnection, user_id: uuid.UUID, step: int) -> bool:
    """Record ``step`` as used; False if it (or a later one) was used already. One UPDATE,
    so two requests carrying the same code cannot both pass."""
    result = await conn.execute(
        update(users)
        .where(
            users.c.id == user_id,
            or_(users.c.mfa_last_step.is_(None), users.c.mfa_last_step < step),
        )
        .values(mfa_last_step=step)
    )
    return result.rowcount == 1


async def replace_recovery_codes(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, hashes: list[str]
) -> None:
    await conn.execute(delete(mfa_recovery_codes).where(mfa_recovery_codes.c.user_id == user_id))
    now = utcnow()
    if hashes:
        await conn.execute(
            insert(mfa_recovery_codes),
            [
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant_id,
                    "user_id": user_id,
                    "code_hash": h,
                    "created_at": now,
                }
                for h in hashes
            ],
        )


async def use_recovery_code(conn: AsyncConnection, user_id: uuid.UUID, code_hash: str) -> bool:
    """Spend one recovery code; False if unknown or already used."""
    result = await conn.execute(
        update(mfa_recovery_codes)
        .where(
            mfa_recovery_codes.c.user_id == user_id,
            mfa_recovery_codes.c.code_hash == code_hash,
            mfa_recovery_codes.c.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    return result.rowcount == 1


async def recovery_codes_left(conn: AsyncConnection, user_id: uuid.UUID) -> int:
    count = await conn.scalar(
        select(func.count())
        .select_from(mfa_recovery_codes)
        .where(mfa_recovery_codes.c.user_id == user_id, mfa_recovery_codes.c.used_at.is_(None))
    )
    return int(count or 0)


async def set_password(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    password_hash: str,
    *,
    must_change: bool,
) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.tenant_id == tenant_id)
        .values(password_hash=password_hash, must_change_password=must_change, updated_at=utcnow())
    )


async def revoke_other_tokens(
    conn: AsyncConnection, user_id: uuid.UUID, keep: uuid.UUID | None, reason: str
) -> list[uuid.UUID]:
    """Revoke every live token of a user except ``keep``; returns their jtis."""
    now = utcnow()
    query = select(auth_tokens.c.id).where(
        auth_tokens.c.user_id == user_id,
        auth_tokens.c.revoked_at.is_(None),
        auth_tokens.c.expires_at > now,
    )
    if keep is not None:
        query = query.where(auth_tokens.c.id != keep)
    live = list((await conn.execute(query)).scalars().all())
    if live:
        await conn.execute(
            update(auth_tokens)
            .where(auth_tokens.c.id.in_(live))
            .values(revoked_at=now, revoked_reason=reason)
        )
    return live


async def policy(conn: AsyncConnection, tenant_id: uuid.UUID) -> TenantPolicy:
    row = (
        await conn.execute(
            select(tenants.c.mfa_required, tenants.c.audit_keep_content).where(
                tenants.c.id == tenant_id
            )
        )
    ).first()
    if row is None:
        return TenantPolicy(False, False)
    return TenantPolicy(bool(row.mfa_required), bool(row.audit_keep_content))


async def set_policy(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    mfa_required: bool | None = None,
    audit_keep_content: bool | None = None,
) -> TenantPolicy:
    values: dict[str, bool] = {}
    if mfa_required is not None:
        values["mfa_required"] = mfa_required
    if audit_keep_content is not None:
        values["audit_keep_content"] = audit_keep_content
    if values:
        await conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**values))
    return await policy(conn, tenant_id)


async def rehash(conn: AsyncConnection, user_id: uuid.UUID, password_hash: str) -> None:
    """Store a new hash of the *same* password (new Argon2 parameters)."""
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, updated_at=utcnow())
    )

"""Issued access tokens and the blacklist: a token whose row has ``revoked_at`` is dead."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.auth.user_tokens import AUDIENCE, TokenClaims
from guruconnect.server.db.schema import auth_tokens, users
from guruconnect.server.db.types import utcnow


@dataclass(frozen=True)
class TokenState:
    revoked: bool
    user_live: bool


async def record(conn: AsyncConnection, claims: TokenClaims) -> None:
    await conn.execute(
        insert(auth_tokens).values(
            id=claims.jti,
            tenant_id=claims.tenant_id,
            user_id=claims.user_id,
            audience=AUDIENCE,
            issued_at=claims.issued_at,
            expires_at=claims.expires_at,
        )
    )


async def state(conn: AsyncConnection, claims: TokenClaims) -> TokenState | None:
    """What the database says of a token whose signature already checked out.

    ``None``: no such token for that user and tenant (never issued here, or pruned).
    """
    row = (
        await conn.execute(
            select(auth_tokens.c.revoked_at, users.c.disabled, users.c.deleted_at)
            .join(users, users.c.id == auth_tokens.c.user_id)
            .where(
                auth_tokens.c.id == claims.jti,
                auth_tokens.c.user_id == claims.user_id,
                auth_tokens.c.tenant_id == claims.tenant_id,
                users.c.tenant_id == claims.tenant_id,
            )
        )
    ).first()
    if row is None:
        return None
    return TokenState(
        revoked=row.revoked_at is not None,
        user_live=not row.disabled and row.deleted_at is None,
    )


async def revoke(conn: AsyncConnection, jti: uuid.UUID, reason: str) -> bool:
    result = await conn.execute(
        update(auth_tokens)
        .where(auth_tokens.c.id == jti, auth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    return result.rowcount > 0


async def revoke_user(conn: AsyncConnection, user_id: uuid.UUID, reason: str) -> list[uuid.UUID]:
    """Revoke every live token of a user; returns their jtis (to close open sockets)."""
    now = utcnow()
    live = (
        (
            await conn.execute(
                select(auth_tokens.c.id).where(
                    auth_tokens.c.user_id == user_id,
                    auth_tokens.c.revoked_at.is_(None),
                    auth_tokens.c.expires_at > now,
                )
            )
        )
        .scalars()
        .all()
    )
    if live:
        await conn.execute(
            update(auth_tokens)
            .where(auth_tokens.c.id.in_(live))
            .values(revoked_at=now, revoked_reason=reason)
        )
    return list(live)


async def prune_expired(conn: AsyncConnection, now: datetime | None = None) -> int:
    """Delete rows of tokens that have expired: the signature check refuses those anyway."""
    result = await conn.execute(
        delete(auth_tokens).where(auth_tokens.c.expires_at <= (now or utcnow()))
    )
    return result.rowcount


async def is_live(conn: AsyncConnection, token_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Whether a user token is unrevoked and unexpired (a viewer ticket inherits it)."""
    row = (
        await conn.execute(
            select(auth_tokens.c.id).where(
                auth_tokens.c.id == token_id,
                auth_tokens.c.user_id == user_id,
                auth_tokens.c.revoked_at.is_(None),
                auth_tokens.c.expires_at > utcnow(),
            )
        )
    ).first()
    return row is not None

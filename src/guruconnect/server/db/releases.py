"""Published agent releases and the update policies that choose what each machine is offered.

A release row carries the operator's signed manifest verbatim. Editing a row (or the file
on disk) cannot produce an update an agent accepts: the agent checks the signature with its
built-in keys and the file against the signed hash.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.releases.decision import version_key
from guruconnect.server.db.schema import releases, update_policies
from guruconnect.server.db.types import utcnow


@dataclass(frozen=True)
class Release:
    id: uuid.UUID
    version: str
    platform: str
    arch: str
    channel: str
    filename: str
    sha256: str
    size_bytes: int
    notes: str | None
    created_at: datetime
    manifest: str | None
    signature: str | None
    key_id: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class UpdatePolicy:
    id: uuid.UUID
    tenant_id: uuid.UUID
    machine_id: uuid.UUID | None
    client_name: str | None
    pinned_version: str | None
    paused: bool
    created_at: datetime


_RELEASE = [releases.c[name] for name in Release.__dataclass_fields__]
_POLICY = [update_policies.c[name] for name in UpdatePolicy.__dataclass_fields__]


async def create(conn: AsyncConnection, **values: object) -> Release:
    release = Release(id=uuid.uuid4(), created_at=utcnow(), **values)  # type: ignore[arg-type]
    await conn.execute(insert(releases).values(**release.__dict__))
    return release


async def exists(conn: AsyncConnection, *, version: str, platform: str, arch: str) -> bool:
    query = select(releases.c.id).where(
        releases.c.version == version, releases.c.platform == platform, releases.c.arch == arch
    )
    return (await conn.execute(query)).first() is not None


async def list_all(conn: AsyncConnection) -> list[Release]:
    rows = await conn.execute(
        select(*_RELEASE).where(releases.c.deleted_at.is_(None)).order_by(releases.c.created_at)
    )
    return [Release(**row._mapping) for row in rows]


async def by_filename(conn: AsyncConnection, filename: str) -> Release | None:
    row = (
        await conn.execute(
            select(*_RELEASE).where(
                releases.c.filename == filename, releases.c.deleted_at.is_(None)
            )
        )
    ).first()
    return Release(**row._mapping) if row else None


async def candidates(
    conn: AsyncConnection, *, platform: str, arch: str, channel: str = "stable"
) -> list[Release]:
    rows = await conn.execute(
        select(*_RELEASE).where(
            releases.c.platform == platform,
            releases.c.arch == arch,
            releases.c.channel == channel,
            releases.c.deleted_at.is_(None),
            releases.c.manifest.is_not(None),
        )
    )
    return [Release(**row._mapping) for row in rows]


def choose(
    available: Sequence[Release], policy: UpdatePolicy | None, current_version: str
) -> Release | None:
    """The release to offer: the newest one the policy allows, if newer than what runs."""
    if policy is not None and policy.paused:
        return None
    allowed = [
        r
        for r in available
        if policy is None
        or policy.pinned_version is None
        or version_key(r.version) <= version_key(policy.pinned_version)
    ]
    if not allowed:
        return None
    best = max(allowed, key=lambda r: version_key(r.version))
    return best if version_key(best.version) > version_key(current_version) else None


# -- policies ---------------------------------------------------------------------------


async def list_policies(conn: AsyncConnection, tenant_id: uuid.UUID) -> list[UpdatePolicy]:
    rows = await conn.execute(
        select(*_POLICY)
        .where(update_policies.c.tenant_id == tenant_id)
        .order_by(update_policies.c.created_at)
    )
    return [UpdatePolicy(**row._mapping) for row in rows]


async def effective_policy(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    machine_id: uuid.UUID,
    client_name: str | None,
) -> UpdatePolicy | None:
    """The most specific policy: the machine's, else its client's, else the tenant's."""
    scopes = [
        and_(update_policies.c.machine_id == machine_id),
        and_(update_policies.c.machine_id.is_(None), update_policies.c.client_name.is_(None)),
    ]
    if client_name is not None:
        scopes.append(update_policies.c.client_name == client_name)
    rows = await conn.execute(
        select(*_POLICY).where(update_policies.c.tenant_id == tenant_id, or_(*scopes))
    )
    found = [UpdatePolicy(**row._mapping) for row in rows]
    for test in (
        lambda p: p.machine_id == machine_id,
        lambda p: p.client_name is not None,
        lambda p: True,
    ):
        for policy in found:
            if test(policy):
                return policy
    return None


async def set_policy(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    machine_id: uuid.UUID | None,
    client_name: str | None,
    pinned_version: str | None,
    paused: bool,
) -> UpdatePolicy:
    """Create or replace the policy of one scope."""
    await conn.execute(
        delete(update_policies).where(
            update_policies.c.tenant_id == tenant_id,
            update_policies.c.machine_id == machine_id
            if machine_id
            else update_policies.c.machine_id.is_(None),
            update_policies.c.client_name == client_name
            if client_name
            else update_policies.c.client_name.is_(None),
        )
    )
    policy = UpdatePolicy(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        machine_id=machine_id,
        client_name=client_name,
        pinned_version=pinned_version,
        paused=paused,
        created_at=utcnow(),
    )
    await conn.execute(insert(update_policies).values(**policy.__dict__))
    return policy


async def delete_policy(conn: AsyncConnection, tenant_id: uuid.UUID, policy_id: uuid.UUID) -> bool:
    result = await conn.execute(
        delete(update_policies).where(
            update_policies.c.tenant_id == tenant_id, update_policies.c.id == policy_id
        )
    )
    return bool(result.rowcount)

"""Users, their permission grants and their client access. Every query is tenant-scoped."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.auth.permissions import Role
from guruconnect.server.db.schema import (
    machines,
    user_client_access,
    user_permissions,
    users,
)
from guruconnect.server.db.types import utcnow


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    tenant_id: uuid.UUID
    username: str
    role: Role
    display_name: str | None
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    password_hash: str


@dataclass(frozen=True)
class ClientAccess:
    machine_ids: frozenset[uuid.UUID]
    client_names: frozenset[str]


#: Lower-case letters, digits and ``._@-``; starts with a letter or digit; 1 to 64 long.
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)


def normalise_username(username: str) -> str:
    return username.strip().lower()


def valid_username(username: str) -> bool:
    """Whether a *normalised* name is acceptable for a new user."""
    return _USERNAME.fullmatch(username) is not None


def _select() -> Select[Any]:
    return select(
        users.c.id,
        users.c.tenant_id,
        users.c.username,
        users.c.role,
        users.c.display_name,
        users.c.disabled,
        users.c.created_at,
        users.c.last_login_at,
        users.c.password_hash,
    ).where(users.c.deleted_at.is_(None))


def _user(row: Any) -> User:
    values = dict(row._mapping)
    values["role"] = Role(values["role"])
    return User(**values)


async def create(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    username: str,
    password_hash: str,
    role: Role,
    display_name: str | None = None,
) -> User:
    now = utcnow()
    user = User(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        username=normalise_username(username),
        role=role,
        display_name=display_name,
        disabled=False,
        created_at=now,
        last_login_at=None,
        password_hash=password_hash,
    )
    await conn.execute(
        insert(users).values(
            id=user.id,
            tenant_id=tenant_id,
            username=user.username,
            password_hash=password_hash,
            role=role.value,
            display_name=display_name,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
    )
    return user


async def username_taken(conn: AsyncConnection, username: str) -> bool:
    query = select(users.c.id).where(
        users.c.username == normalise_username(username), users.c.deleted_at.is_(None)
    )
    return (await conn.execute(query)).first() is not None


async def by_username(conn: AsyncConnection, username: str) -> User | None:
    """For login only: names are global, so this is the one lookup without a tenant."""
    row = (
        await conn.execute(_select().where(users.c.username == normalise_username(username)))
    ).first()
    return _user(row) if row else None


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
    query = _select().where(users.c.id == user_id, users.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    return _user(row) if row else None


async def list_for_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> list[User]:
    rows = await conn.execute(
        _select().where(users.c.tenant_id == tenant_id).order_by(users.c.username)
    )
    return [_user(row) for row in rows]


async def list_all(conn: AsyncConnection) -> list[tuple[User, str]]:
    """Every live user with its tenant's name (the admin CLI's view)."""
    from guruconnect.server.db.schema import tenants

    query = (
        _select()
        .add_columns(tenants.c.name.label("tenant_name"))
        .join(tenants, tenants.c.id == users.c.tenant_id)
        .order_by(tenants.c.name, users.c.username)
    )
    result = []
    for row in await conn.execute(query):
        values = dict(row._mapping)
        tenant_name = values.pop("tenant_name")
        values["role"] = Role(values["role"])
        result.append((User(**values), tenant_name))
    return result


async def update_fields(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, **values: Any
) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.tenant_id == tenant_id)
        .values(**values, updated_at=utcnow())
    )


async def record_login(
    conn: AsyncConnection, user_id: uuid.UUID, *, new_password_hash: str | None
) -> None:
    values: dict[str, Any] = {"last_login_at": utcnow()}
    if new_password_hash is not None:
        values["password_hash"] = new_password_hash
        values["updated_at"] = values["last_login_at"]
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def soft_delete(conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    now = utcnow()
    await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.tenant_id == tenant_id)
        .values(deleted_at=now, updated_at=now, disabled=True)
    )


async def lock_active_admins(conn: AsyncConnection, tenant_id: uuid.UUID) -> int:
    """Count a tenant's active admins, locking their rows until the transaction ends.

    The lock (PostgreSQL; SQLite serialises writers anyway) stops two admins demoting
    each other at the same moment and leaving the tenant with none.
    """
    query = (
        select(users.c.id)
        .where(
            users.c.tenant_id == tenant_id,
            users.c.role == Role.ADMIN.value,
            users.c.disabled.is_(False),
            users.c.deleted_at.is_(None),
        )
        .with_for_update()
    )
    return len((await conn.execute(query)).all())


async def permissions_of(conn: AsyncConnection, user_id: uuid.UUID) -> frozenset[str]:
    rows = await conn.execute(
        select(user_permissions.c.permission).where(user_permissions.c.user_id == user_id)
    )
    return frozenset(row[0] for row in rows)


async def set_permissions(conn: AsyncConnection, user: User, permissions: Iterable[str]) -> None:
    await conn.execute(delete(user_permissions).where(user_permissions.c.user_id == user.id))
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": user.tenant_id,
            "user_id": user.id,
            "permission": name,
            "created_at": now,
        }
        for name in sorted(set(permissions))
    ]
    if rows:
        await conn.execute(insert(user_permissions), rows)


async def client_access_of(conn: AsyncConnection, user_id: uuid.UUID) -> ClientAccess:
    rows = (
        await conn.execute(
            select(user_client_access.c.machine_id, user_client_access.c.client_name).where(
                user_client_access.c.user_id == user_id
            )
        )
    ).all()
    return ClientAccess(
        machine_ids=frozenset(r.machine_id for r in rows if r.machine_id is not None),
        client_names=frozenset(r.client_name for r in rows if r.client_name is not None),
    )


async def set_client_access(conn: AsyncConnection, user: User, access: ClientAccess) -> None:
    await conn.execute(delete(user_client_access).where(user_client_access.c.user_id == user.id))
    now = utcnow()
    base = {"tenant_id": user.tenant_id, "user_id": user.id, "created_at": now}
    rows = [
        {**base, "id": uuid.uuid4(), "machine_id": mid, "client_name": None}
        for mid in sorted(access.machine_ids)
    ] + [
        {**base, "id": uuid.uuid4(), "machine_id": None, "client_name": name}
        for name in sorted(access.client_names)
    ]
    if rows:
        await conn.execute(insert(user_client_access), rows)


async def missing_machines(
    conn: AsyncConnection, tenant_id: uuid.UUID, machine_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """The ids among ``machine_ids`` that are not live machines of this tenant."""
    wanted = set(machine_ids)
    if not wanted:
        return set()
    rows = await conn.execute(
        select(machines.c.id).where(
            machines.c.id.in_(wanted),
            machines.c.tenant_id == tenant_id,
            machines.c.deleted_at.is_(None),
        )
    )
    return wanted - {row[0] for row in rows}


async def can_reach_machine(conn: AsyncConnection, user: User, machine_id: uuid.UUID) -> bool:
    """Tenant first, then role: admins reach all their tenant's machines, technicians only
    those granted to them by machine or by client."""
    row = (
        await conn.execute(
            select(machines.c.client_name).where(
                machines.c.id == machine_id,
                machines.c.tenant_id == user.tenant_id,
                machines.c.deleted_at.is_(None),
            )
        )
    ).first()
    if row is None:
        return False
    if user.role is Role.ADMIN:
        return True
    access = await client_access_of(conn, user.id)
    return machine_id in access.machine_ids or (
        row.client_name is not None and row.client_name in access.client_names
    )


async def can_reach_session(
    conn: AsyncConnection,
    user: User,
    *,
    machine_id: uuid.UUID,
    technician_id: uuid.UUID | None,
    kind: str,
) -> bool:
    """A session is reachable by whoever reaches its machine and, for a support-code
    session, by the technician who created the code (its ad-hoc machine is granted to no
    one, so without this only admins could open it). The caller has checked the tenant."""
    if kind == "support_code" and technician_id is not None and technician_id == user.id:
        return True
    return await can_reach_machine(conn, user, machine_id)

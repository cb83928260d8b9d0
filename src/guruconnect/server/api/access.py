"""Who may reach what: the tenant first, then the role, then client access."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.api.deps import Principal
from guruconnect.server.db import machines, users
from guruconnect.server.db.machines import Machine

NOT_FOUND = "machine not found"


async def reachable_machine(
    conn: AsyncConnection, principal: Principal, machine_id: uuid.UUID
) -> Machine:
    """The machine, if this user may reach it; 404 otherwise (also for another tenant's)."""
    machine = await machines.get(conn, principal.user.tenant_id, machine_id)
    if machine is None or not await users.can_reach_machine(conn, principal.user, machine_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    return machine


async def visible_machines(
    conn: AsyncConnection,
    principal: Principal,
    *,
    client_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
    include_ended: bool = True,
) -> list[Machine]:
    """The machines this user reaches; the keyword arguments narrow the list (see
    :func:`machines.list_for_tenant`)."""
    tenant_id = principal.user.tenant_id
    narrow: dict[str, Any] = {
        "client_id": client_id,
        "site_id": site_id,
        "include_ended": include_ended,
    }
    if principal.is_admin:
        return await machines.list_for_tenant(conn, tenant_id, **narrow)
    access = await users.client_access_of(conn, principal.user.id)
    return await machines.list_for_tenant(
        conn,
        tenant_id,
        only=set(access.machine_ids),
        client_names=set(access.client_names),
        **narrow,
    )

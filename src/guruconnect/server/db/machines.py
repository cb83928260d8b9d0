"""Machines: what agents run on. A persistent agent's machine is found by its key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import machines
from guruconnect.server.db.types import storable, utcnow


@dataclass(frozen=True)
class Machine:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    client_name: str | None
    hostname: str | None
    os: str | None
    agent_version: str | None
    consent_policy: str
    ad_hoc: bool
    online: bool
    last_seen_at: datetime | None
    created_at: datetime


def _select() -> Select[Any]:
    return select(*(machines.c[name] for name in Machine.__dataclass_fields__)).where(
        machines.c.deleted_at.is_(None)
    )


async def create(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    name: str,
    ad_hoc: bool = False,
    client_name: str | None = None,
    consent_policy: str = "ask",
) -> Machine:
    machine = Machine(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        name=storable(name)[:255],
        client_name=client_name,
        hostname=None,
        os=None,
        agent_version=None,
        consent_policy=consent_policy,
        ad_hoc=ad_hoc,
        online=False,
        last_seen_at=None,
        created_at=utcnow(),
    )
    await conn.execute(insert(machines).values(**machine.__dict__))
    return machine


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, machine_id: uuid.UUID) -> Machine | None:
    row = (
        await conn.execute(
            _select().where(machines.c.id == machine_id, machines.c.tenant_id == tenant_id)
        )
    ).first()
    return Machine(**row._mapping) if row else None


async def get_any_tenant(conn: AsyncConnection, machine_id: uuid.UUID) -> Machine | None:
    """For the relay, which knows the machine from a verified key, not from a request."""
    row = (await conn.execute(_select().where(machines.c.id == machine_id))).first()
    return Machine(**row._mapping) if row else None


async def list_for_tenant(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    only: set[uuid.UUID] | None = None,
    client_names: set[str] | None = None,
) -> list[Machine]:
    """A tenant's machines; with ``only``/``client_names``, just those (a technician's
    reach: machines granted by id or by client)."""
    query = _select().where(machines.c.tenant_id == tenant_id)
    if only is not None or client_names is not None:
        conditions = []
        if only:
            conditions.append(machines.c.id.in_(only))
        if client_names:
            conditions.append(machines.c.client_name.in_(client_names))
        if not conditions:
            return []
        query = query.where(or_(*conditions))
    rows = await conn.execute(query.order_by(machines.c.online.desc(), machines.c.name))
    return [Machine(**row._mapping) for row in rows]


async def update_status(
    conn: AsyncConnection,
    machine_id: uuid.UUID,
    *,
    hostname: str | None = None,
    os: str | None = None,
    agent_version: str | None = None,
) -> None:
    values = _status_values(hostname, os, agent_version)
    await conn.execute(update(machines).where(machines.c.id == machine_id).values(**values))


def _status_values(
    hostname: str | None, os: str | None, agent_version: str | None
) -> dict[str, Any]:
    values: dict[str, Any] = {"last_seen_at": utcnow()}
    for key, value in (("hostname", hostname), ("os", os), ("agent_version", agent_version)):
        if value := storable(value or ""):
            values[key] = value[:255] if key != "agent_version" else value[:64]
    return values


async def set_connected(
    conn: AsyncConnection,
    machine_id: uuid.UUID,
    node_id: str,
    *,
    hostname: str | None = None,
    os: str | None = None,
    agent_version: str | None = None,
) -> None:
    """An agent's connect: :func:`update_status` and ``set_online(True)`` in one statement."""
    values = _status_values(hostname, os, agent_version)
    values.update(online=True, node_id=node_id)
    await conn.execute(update(machines).where(machines.c.id == machine_id).values(**values))


async def set_online(
    conn: AsyncConnection, machine_id: uuid.UUID, online: bool, node_id: str = "default"
) -> None:
    """``node_id``: the node the agent is connected to (forgotten when it goes offline)."""
    await conn.execute(
        update(machines)
        .where(machines.c.id == machine_id)
        .values(online=online, last_seen_at=utcnow(), node_id=node_id if online else None)
    )


async def mark_all_offline(conn: AsyncConnection, node_id: str) -> int:
    """Startup: no agent is connected to this node's process, which has just started.
    A machine online without a node (no live node leaves one so) is offline too."""
    result = await conn.execute(
        update(machines)
        .where(
            machines.c.online.is_(True),
            or_(machines.c.node_id == node_id, machines.c.node_id.is_(None)),
        )
        .values(online=False, node_id=None)
    )
    return result.rowcount

"""Machines: what agents run on. A persistent agent's machine is found by its key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, exists, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.agent_keys import AgentKey
from guruconnect.server.db.schema import (
    agent_keys,
    machine_placements,
    machines,
    sessions,
    sites,
    update_policies,
    user_client_access,
    users,
)
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
    notes: str | None = None
    tags: tuple[str, ...] = ()
    # Read through joins (``machine_placements``, ``sites``), not columns of ``machines``.
    client_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    site_name: str | None = None

    def row_values(self) -> dict[str, Any]:
        """The values of this machine's own columns."""
        values = {k: v for k, v in self.__dict__.items() if k not in _JOINED}
        values["tags"] = list(self.tags)
        return values


_JOINED = frozenset({"client_id", "site_id", "site_name"})
_OWN_COLUMNS = [name for name in Machine.__dataclass_fields__ if name not in _JOINED]
#: The placement columns a caller may write through :func:`update_fields`.
PLACEMENT = frozenset({"client_id", "site_id"})


def _select() -> Select[Any]:
    return (
        select(
            *(machines.c[name] for name in _OWN_COLUMNS),
            machine_placements.c.client_id,
            machine_placements.c.site_id,
            sites.c.name.label("site_name"),
        )
        .select_from(
            machines.outerjoin(
                machine_placements, machine_placements.c.machine_id == machines.c.id
            ).outerjoin(sites, machine_placements.c.site_id == sites.c.id)
        )
        .where(machines.c.deleted_at.is_(None))
    )


def _machine(row: Row[Any]) -> Machine:
    values = dict(row._mapping)
    values["tags"] = tuple(values.get("tags") or ())
    return Machine(**values)


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
    await conn.execute(insert(machines).values(**machine.row_values()))
    return machine


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, machine_id: uuid.UUID) -> Machine | None:
    row = (
        await conn.execute(
            _select().where(machines.c.id == machine_id, machines.c.tenant_id == tenant_id)
        )
    ).first()
    return _machine(row) if row else None


async def get_any_tenant(conn: AsyncConnection, machine_id: uuid.UUID) -> Machine | None:
    """For the relay, which knows the machine from a verified key, not from a request."""
    row = (await conn.execute(_select().where(machines.c.id == machine_id))).first()
    return _machine(row) if row else None


async def list_for_tenant(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    only: set[uuid.UUID] | None = None,
    client_names: set[str] | None = None,
    client_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
    include_ended: bool = True,
) -> list[Machine]:
    """A tenant's machines; with ``only``/``client_names``, just those (a technician's
    reach: machines granted by id or by client). ``client_id``/``site_id`` filter by
    group; without ``include_ended``, a support-code machine whose session has ended is
    left out (it stays in the session history)."""
    query = _select().where(machines.c.tenant_id == tenant_id)
    if client_id is not None:
        query = query.where(machine_placements.c.client_id == client_id)
    if site_id is not None:
        query = query.where(machine_placements.c.site_id == site_id)
    if not include_ended:
        live_session = exists().where(
            sessions.c.machine_id == machines.c.id, sessions.c.state != "ended"
        )
        query = query.where(or_(machines.c.ad_hoc.is_(False), live_session))
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
    return [_machine(row) for row in rows]


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


async def update_fields(
    conn: AsyncConnection, tenant_id: uuid.UUID, machine_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """Write the given columns of a live machine (the caller has checked them); a
    ``client_id`` (with its ``site_id``) places the machine, None ungroups it."""
    if "tags" in values:
        values = {**values, "tags": list(values["tags"])}
    if PLACEMENT & values.keys():
        await _place(conn, tenant_id, machine_id, values.get("client_id"), values.get("site_id"))
        values = {k: v for k, v in values.items() if k not in PLACEMENT}
    if not values:
        return
    await conn.execute(
        update(machines)
        .where(
            machines.c.id == machine_id,
            machines.c.tenant_id == tenant_id,
            machines.c.deleted_at.is_(None),
        )
        .values(**values)
    )


async def _place(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    machine_id: uuid.UUID,
    client_id: uuid.UUID | None,
    site_id: uuid.UUID | None,
) -> None:
    # Two placements of one machine at once would both delete, then both insert (one
    # unique violation): the machine's row lock makes them take turns (PostgreSQL; SQLite
    # has one writer anyway).
    await conn.execute(select(machines.c.id).where(machines.c.id == machine_id).with_for_update())
    await conn.execute(
        delete(machine_placements).where(
            machine_placements.c.machine_id == machine_id,
            machine_placements.c.tenant_id == tenant_id,
        )
    )
    if client_id is not None:
        await conn.execute(
            insert(machine_placements).values(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                machine_id=machine_id,
                client_id=client_id,
                site_id=site_id,
            )
        )


async def forget(conn: AsyncConnection, tenant_id: uuid.UUID, machine_id: uuid.UUID) -> bool:
    """Take a machine out of service for good: gone from every list and lookup, its
    grants and update policy dropped.

    The row itself stays as a tombstone (``deleted_at``): its sessions reference it, and a
    real DELETE would cascade them away (``sessions.machine_id`` is ON DELETE CASCADE),
    taking the session history with it. The audit rows would survive either way (their
    foreign keys SET NULL), but they would lose the machine they talk about.
    """
    result = await conn.execute(
        update(machines)
        .where(
            machines.c.id == machine_id,
            machines.c.tenant_id == tenant_id,
            machines.c.deleted_at.is_(None),
        )
        .values(deleted_at=utcnow(), online=False, node_id=None)
    )
    if result.rowcount != 1:
        return False
    await conn.execute(
        delete(user_client_access).where(
            user_client_access.c.machine_id == machine_id,
            user_client_access.c.tenant_id == tenant_id,
        )
    )
    await conn.execute(
        delete(update_policies).where(
            update_policies.c.machine_id == machine_id, update_policies.c.tenant_id == tenant_id
        )
    )
    return True


@dataclass(frozen=True)
class HistoryEntry:
    id: uuid.UUID
    technician_id: uuid.UUID | None
    technician: str | None
    kind: str
    scope: str
    state: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


async def session_history(
    conn: AsyncConnection, tenant_id: uuid.UUID, machine_id: uuid.UUID, *, limit: int = 100
) -> list[HistoryEntry]:
    """The machine's sessions, newest first, with who ran them."""
    rows = await conn.execute(
        select(
            sessions.c.id,
            sessions.c.technician_id,
            users.c.username.label("technician"),
            sessions.c.kind,
            sessions.c.scope,
            sessions.c.state,
            sessions.c.created_at,
            sessions.c.started_at,
            sessions.c.ended_at,
            sessions.c.end_reason,
        )
        .select_from(sessions.outerjoin(users, users.c.id == sessions.c.technician_id))
        .where(sessions.c.machine_id == machine_id, sessions.c.tenant_id == tenant_id)
        .order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
        .limit(limit)
    )
    return [HistoryEntry(**row._mapping) for row in rows]


async def bound_keys(
    conn: AsyncConnection, tenant_id: uuid.UUID, machine_id: uuid.UUID
) -> list[AgentKey]:
    """The agent keys bound to this machine, newest first (revoked ones included)."""
    rows = await conn.execute(
        select(*(agent_keys.c[name] for name in AgentKey.__dataclass_fields__))
        .where(agent_keys.c.machine_id == machine_id, agent_keys.c.tenant_id == tenant_id)
        .order_by(agent_keys.c.created_at.desc())
    )
    return [AgentKey(**row._mapping) for row in rows]

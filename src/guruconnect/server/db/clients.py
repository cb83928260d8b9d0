"""Clients (the MSP's customers) and their sites: the grouping of a tenant's machines."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.db.schema import clients, sites
from guruconnect.server.db.types import storable, utcnow


@dataclass(frozen=True)
class Site:
    id: uuid.UUID
    tenant_id: uuid.UUID
    client_id: uuid.UUID
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Client:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    created_at: datetime


class NameTaken(Exception):
    """A client (in this tenant) or a site (of this client) has that name already."""


_CLIENT_COLUMNS = [clients.c[name] for name in Client.__dataclass_fields__]
_SITE_COLUMNS = [sites.c[name] for name in Site.__dataclass_fields__]


async def create_client(conn: AsyncConnection, tenant_id: uuid.UUID, name: str) -> Client:
    """Raises :class:`NameTaken`; run it in a transaction of its own (a refused INSERT
    leaves a PostgreSQL transaction unusable)."""
    client = Client(uuid.uuid4(), tenant_id, storable(name), utcnow())
    if await client_named(conn, tenant_id, client.name) is not None:
        raise NameTaken(client.name)
    try:
        await conn.execute(insert(clients).values(**client.__dict__))
    except IntegrityError as exc:  # a racing create of the same name
        raise NameTaken(client.name) from exc
    return client


async def create_site(conn: AsyncConnection, client: Client, name: str) -> Site:
    site = Site(uuid.uuid4(), client.tenant_id, client.id, storable(name), utcnow())
    existing = await conn.execute(
        select(sites.c.id).where(sites.c.client_id == client.id, sites.c.name == site.name)
    )
    if existing.first() is not None:
        raise NameTaken(site.name)
    try:
        await conn.execute(insert(sites).values(**site.__dict__))
    except IntegrityError as exc:
        raise NameTaken(site.name) from exc
    return site


async def get_client(
    conn: AsyncConnection, tenant_id: uuid.UUID, client_id: uuid.UUID
) -> Client | None:
    row = (
        await conn.execute(
            select(*_CLIENT_COLUMNS).where(
                clients.c.id == client_id, clients.c.tenant_id == tenant_id
            )
        )
    ).first()
    return Client(**row._mapping) if row else None


async def client_named(conn: AsyncConnection, tenant_id: uuid.UUID, name: str) -> Client | None:
    row = (
        await conn.execute(
            select(*_CLIENT_COLUMNS).where(clients.c.tenant_id == tenant_id, clients.c.name == name)
        )
    ).first()
    return Client(**row._mapping) if row else None


async def get_site(conn: AsyncConnection, tenant_id: uuid.UUID, site_id: uuid.UUID) -> Site | None:
    row = (
        await conn.execute(
            select(*_SITE_COLUMNS).where(sites.c.id == site_id, sites.c.tenant_id == tenant_id)
        )
    ).first()
    return Site(**row._mapping) if row else None


async def list_clients(
    conn: AsyncConnection, tenant_id: uuid.UUID, *, names: set[str] | None = None
) -> list[tuple[Client, list[Site]]]:
    """The tenant's clients by name, each with its sites; ``names``: only those."""
    query = select(*_CLIENT_COLUMNS).where(clients.c.tenant_id == tenant_id)
    if names is not None:
        if not names:
            return []
        query = query.where(clients.c.name.in_(names))
    found = [Client(**row._mapping) for row in await conn.execute(query.order_by(clients.c.name))]
    if not found:
        return []
    by_client: dict[uuid.UUID, list[Site]] = {c.id: [] for c in found}
    rows = await conn.execute(
        select(*_SITE_COLUMNS)
        .where(sites.c.client_id.in_(by_client), sites.c.tenant_id == tenant_id)
        .order_by(sites.c.name)
    )
    for row in rows:
        site = Site(**row._mapping)
        by_client[site.client_id].append(site)
    return [(c, by_client[c.id]) for c in found]

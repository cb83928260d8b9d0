"""Clients and sites: the groups a tenant's machines are filed under.

Everyone who reads machines sees the clients they reach (an admin: all of the tenant's;
a technician: those granted by name, and those of the machines granted one by one);
creating them is the admin's. Assigning a machine is ``PATCH /api/machines/{id}``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from guruconnect.server.api.access import visible_machines
from guruconnect.server.api.deps import Admin, Authenticated, State, require, source_address
from guruconnect.server.api.machines import CLIENT_CREATED, SITE_CREATED, Name
from guruconnect.server.auth.permissions import Permission
from guruconnect.server.db import clients, users
from guruconnect.server.db.clients import Client, NameTaken, Site
from guruconnect.server.db.events import Event
from guruconnect.server.errors import invalid

router = APIRouter(tags=["clients"])


class SiteOut(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    name: str
    created_at: datetime

    @classmethod
    def of(cls, site: Site) -> SiteOut:
        return cls(id=site.id, client_id=site.client_id, name=site.name, created_at=site.created_at)


class ClientOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    sites: list[SiteOut]

    @classmethod
    def of(cls, client: Client, sites: list[Site]) -> ClientOut:
        return cls(
            id=client.id,
            name=client.name,
            created_at=client.created_at,
            sites=[SiteOut.of(s) for s in sites],
        )


class ClientCreate(BaseModel):
    name: Name


class SiteCreate(BaseModel):
    client_id: uuid.UUID
    name: Name


@router.get("/api/clients")
async def list_clients(principal: Authenticated, state: State) -> list[ClientOut]:
    require(principal, Permission.SESSIONS_VIEW)
    tenant_id = principal.user.tenant_id
    async with state.engine.connect() as conn:
        if principal.is_admin:
            found = await clients.list_clients(conn, tenant_id)
        else:
            access = await users.client_access_of(conn, principal.user.id)
            names = set(access.client_names) | {
                m.client_name for m in await visible_machines(conn, principal) if m.client_name
            }
            found = await clients.list_clients(conn, tenant_id, names=names)
    return [ClientOut.of(c, s) for c, s in found]


@router.post("/api/clients", status_code=status.HTTP_201_CREATED)
async def create_client(
    body: ClientCreate, principal: Admin, request: Request, state: State
) -> ClientOut:
    try:
        async with state.engine.begin() as conn:
            client = await clients.create_client(conn, principal.user.tenant_id, body.name)
    except NameTaken:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="a client with this name exists already"
        ) from None
    await state.audit.record(
        Event(
            CLIENT_CREATED,
            tenant_id=principal.user.tenant_id,
            user_id=principal.user.id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"client_id": str(client.id), "name": client.name},
        )
    )
    return ClientOut.of(client, [])


@router.post("/api/sites", status_code=status.HTTP_201_CREATED)
async def create_site(
    body: SiteCreate, principal: Admin, request: Request, state: State
) -> SiteOut:
    tenant_id = principal.user.tenant_id
    try:
        async with state.engine.begin() as conn:
            client = await clients.get_client(conn, tenant_id, body.client_id)
            if client is None:
                raise invalid("client_id", "unknown client")
            site = await clients.create_site(conn, client, body.name)
    except NameTaken:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="this client has a site with this name already"
        ) from None
    await state.audit.record(
        Event(
            SITE_CREATED,
            tenant_id=tenant_id,
            user_id=principal.user.id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"site_id": str(site.id), "client_id": str(client.id), "name": site.name},
        )
    )
    return SiteOut.of(site)

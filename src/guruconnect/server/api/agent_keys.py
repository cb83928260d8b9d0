"""Per-agent keys: issue (the key is shown once), list (never the secret), revoke (which
also closes that agent's open socket)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from guruconnect.server.api.deps import Authenticated, State, require, source_address
from guruconnect.server.auth import secrets_format
from guruconnect.server.auth.permissions import Permission
from guruconnect.server.db import agent_keys, machines
from guruconnect.server.db.agent_keys import AgentKey
from guruconnect.server.db.events import Event

router = APIRouter(prefix="/api/agent-keys", tags=["agent keys"])
NOT_FOUND = "agent key not found"


class AgentKeyCreate(BaseModel):
    label: str | None = Field(default=None, max_length=255)
    #: Bind the key to an existing machine; otherwise the first connection creates one.
    machine_id: uuid.UUID | None = None


class AgentKeyOut(BaseModel):
    id: uuid.UUID
    prefix: str
    label: str | None
    machine_id: uuid.UUID | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: AgentKey) -> AgentKeyOut:
        return cls(
            id=key.id,
            prefix=key.prefix,
            label=key.label,
            machine_id=key.machine_id,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class IssuedAgentKey(AgentKeyOut):
    #: The whole key. Shown in this response only; the server keeps a hash.
    key: str
    #: The URL agents connect to (GURUCONNECT_PUBLIC_URL); null: the page's own origin.
    server_url: str | None = None


@router.post("", status_code=status.HTTP_201_CREATED)
async def issue_key(
    body: AgentKeyCreate, principal: Authenticated, request: Request, state: State
) -> IssuedAgentKey:
    require(principal, Permission.AGENT_KEYS_MANAGE)
    tenant_id = principal.user.tenant_id
    new = secrets_format.new_agent_key()
    async with state.engine.begin() as conn:
        if body.machine_id and await machines.get(conn, tenant_id, body.machine_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="machine not found")
        key = await agent_keys.create(
            conn,
            tenant_id=tenant_id,
            prefix=new.lookup,
            key_hash=new.key_hash,
            label=body.label,
            machine_id=body.machine_id,
            created_by=principal.user.id,
        )
    await state.audit.record(
        Event(
            "agent_key.issued",
            tenant_id=tenant_id,
            user_id=principal.user.id,
            machine_id=body.machine_id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"key_id": str(key.id), "prefix": key.prefix},
        )
    )
    return IssuedAgentKey(
        **AgentKeyOut.of(key).model_dump(), key=new.key, server_url=state.settings.public_url
    )


@router.get("")
async def list_keys(principal: Authenticated, state: State) -> list[AgentKeyOut]:
    require(principal, Permission.AGENT_KEYS_MANAGE)
    async with state.engine.connect() as conn:
        keys = await agent_keys.list_for_tenant(conn, principal.user.tenant_id)
    return [AgentKeyOut.of(key) for key in keys]


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": NOT_FOUND}},
)
async def revoke_key(
    key_id: uuid.UUID, principal: Authenticated, request: Request, state: State
) -> Response:
    require(principal, Permission.AGENT_KEYS_MANAGE)
    tenant_id = principal.user.tenant_id
    async with state.engine.begin() as conn:
        key = await agent_keys.get(conn, tenant_id, key_id)
        if key is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
        await agent_keys.revoke(conn, tenant_id, key_id)
    closed = state.hub.revoke_agent_key(key_id)
    await state.audit.record(
        Event(
            "agent_key.revoked",
            tenant_id=tenant_id,
            user_id=principal.user.id,
            machine_id=key.machine_id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={
                "key_id": str(key_id),
                "prefix": key.prefix,
                "closed_socket": closed > 0,
                "closed_sockets": closed,
            },
        )
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)

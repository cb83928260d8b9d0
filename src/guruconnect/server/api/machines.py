"""Machines, and asking for a session on one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import update

from guruconnect.server.api.access import NOT_FOUND, reachable_machine, visible_machines
from guruconnect.server.api.deps import Admin, Authenticated, State, require
from guruconnect.server.api.sessions import SessionOut
from guruconnect.server.auth.permissions import Permission, for_scope
from guruconnect.server.db import sessions
from guruconnect.server.db.machines import Machine
from guruconnect.server.db.schema import machines as machines_table
from guruconnect.server.errors import invalid

router = APIRouter(prefix="/api/machines", tags=["machines"])


class MachineOut(BaseModel):
    id: uuid.UUID
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


class MachinePatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    client_name: str | None = Field(default=None, max_length=255)
    consent_policy: Literal["ask", "unattended"] | None = None


class SessionCreate(BaseModel):
    scope: Literal["view", "control"] = "control"


def _out(machine: Machine, online: bool) -> MachineOut:
    values = {k: v for k, v in machine.__dict__.items() if k != "tenant_id"}
    values["online"] = online
    return MachineOut(**values)


@router.get("")
async def list_machines(principal: Authenticated, state: State) -> list[MachineOut]:
    require(principal, Permission.SESSIONS_VIEW)
    async with state.engine.connect() as conn:
        found = await visible_machines(conn, principal)
    return [_out(m, state.hub.is_online(m.id)) for m in found]


@router.get("/{machine_id}", responses={404: {"description": NOT_FOUND}})
async def get_machine(machine_id: uuid.UUID, principal: Authenticated, state: State) -> MachineOut:
    require(principal, Permission.SESSIONS_VIEW)
    async with state.engine.connect() as conn:
        machine = await reachable_machine(conn, principal, machine_id)
    return _out(machine, state.hub.is_online(machine.id))


@router.patch("/{machine_id}", responses={404: {"description": NOT_FOUND}})
async def update_machine(
    machine_id: uuid.UUID, body: MachinePatch, principal: Admin, state: State
) -> MachineOut:
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "consent_policy"):
        if changes.get(field, ...) is None:
            raise invalid(field, "null is not allowed")
    async with state.engine.begin() as conn:
        current = await reachable_machine(conn, principal, machine_id)
        if current.ad_hoc and changes.get("consent_policy") == "unattended":
            raise invalid("consent_policy", "a support-code machine always asks for consent")
        if changes:
            await conn.execute(
                update(machines_table)
                .where(
                    machines_table.c.id == machine_id,
                    machines_table.c.tenant_id == principal.user.tenant_id,
                )
                .values(**changes)
            )
        machine = await reachable_machine(conn, principal, machine_id)
    if "client_name" in changes:
        await state.hub.recheck_machine(machine_id)
    return _out(machine, state.hub.is_online(machine.id))


@router.post(
    "/{machine_id}/sessions",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "A live session exists already; join it"},
        404: {"description": NOT_FOUND},
        409: {"description": "The machine is offline"},
    },
)
async def request_session(
    machine_id: uuid.UUID,
    body: SessionCreate,
    principal: Authenticated,
    response: Response,
    state: State,
) -> SessionOut:
    require(principal, for_scope(body.scope))
    hub = state.hub
    async with state.engine.begin() as conn:
        machine = await reachable_machine(conn, principal, machine_id)
        if not hub.is_online(machine.id):
            raise HTTPException(status.HTTP_409_CONFLICT, detail="the machine is offline")
        live = hub.live_session_for_machine(machine.id)
        if live is not None:
            existing = await sessions.get(conn, principal.user.tenant_id, live.id)
            if existing is not None:
                response.status_code = status.HTTP_200_OK
                return SessionOut.of(existing)
        # A support-code machine always asks: its person gave a code for one session,
        # not standing permission.
        attended = machine.consent_policy == "ask" or machine.ad_hoc
        session = await sessions.create(
            conn,
            tenant_id=machine.tenant_id,
            machine_id=machine.id,
            technician_id=principal.user.id,
            kind="attended" if attended else "unattended",
            scope=body.scope,
            node_id=hub.settings.node_id,
        )
    live = await hub.start_session(
        session,
        technician=principal.user.display_name or principal.user.username,
        consent_required=attended,
    )
    if live.id != session.id:
        response.status_code = status.HTTP_200_OK
    async with state.engine.connect() as conn:
        current = await sessions.get(conn, session.tenant_id, live.id)
    return SessionOut.of(current or session)

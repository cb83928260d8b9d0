"""Machines: list (grouped by client and site), manage, forget, re-key, their history, and
asking for a session on one.

Who may do what (checked here, server-side, in this order):

- reaching the machine comes first: another tenant's machine, or one a technician has no
  client access to, is 404 whatever the request (its existence is not confirmed);
- reading needs ``sessions.view``;
- renaming, notes and tags need ``sessions.control`` (a view-only user changes nothing);
- what decides who reaches a machine or whether it asks for consent (client, site,
  consent policy) and forgetting it are the admin's;
- re-keying needs ``agent_keys.manage``.

Every change is audited after it commits (one post-commit point per endpoint).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field, StringConstraints, field_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server import console_events
from guruconnect.server.api.access import NOT_FOUND, reachable_machine, visible_machines
from guruconnect.server.api.agent_keys import AgentKeyOut, IssuedAgentKey
from guruconnect.server.api.deps import (
    Authenticated,
    Principal,
    State,
    require,
    source_address,
)
from guruconnect.server.api.sessions import SessionOut
from guruconnect.server.audit_types import AuditType
from guruconnect.server.auth import secrets_format
from guruconnect.server.auth.permissions import Permission, for_scope
from guruconnect.server.db import agent_keys, clients, machines, sessions
from guruconnect.server.db.events import Event
from guruconnect.server.db.machines import HistoryEntry, Machine
from guruconnect.server.errors import invalid

router = APIRouter(prefix="/api/machines", tags=["machines"])

# The audit event types this module writes.
MACHINE_RENAMED = AuditType.MACHINE_RENAMED
MACHINE_UPDATED = AuditType.MACHINE_UPDATED
MACHINE_DELETED = AuditType.MACHINE_DELETED
MACHINE_REKEYED = AuditType.MACHINE_REKEYED
CLIENT_CREATED = AuditType.CLIENT_CREATED
SITE_CREATED = AuditType.SITE_CREATED
AGENT_KEY_ISSUED = AuditType.AGENT_KEY_ISSUED
AGENT_KEY_REVOKED = AuditType.AGENT_KEY_REVOKED

MAX_TAGS = 20
MAX_NOTES = 4000
TAG_PATTERN = re.compile(r"^[\w][\w .:/+-]{0,31}$")
#: The end reason of a live session of a machine that is forgotten.
END_REASON_DELETED = "machine_deleted"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class MachineOut(BaseModel):
    id: uuid.UUID
    name: str
    client_id: uuid.UUID | None
    client_name: str | None
    site_id: uuid.UUID | None
    site_name: str | None
    hostname: str | None
    os: str | None
    agent_version: str | None
    consent_policy: str
    ad_hoc: bool
    online: bool
    notes: str | None
    tags: list[str]
    last_seen_at: datetime | None
    created_at: datetime


class MachineDetail(MachineOut):
    #: The keys bound to this machine (revoked ones too), for users who manage agent keys;
    #: null for the others.
    agent_keys: list[AgentKeyOut] | None


class MachinePatch(BaseModel):
    name: Name | None = None
    #: The client (from /api/clients); null ungroups the machine.
    client_id: uuid.UUID | None = None
    #: Older form: a client by name, created if the tenant has none by that name.
    client_name: Name | None = None
    #: A site of the machine's client; choosing one also sets its client. Null: no site.
    site_id: uuid.UUID | None = None
    notes: str | None = Field(default=None, max_length=MAX_NOTES)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    consent_policy: Literal["ask", "unattended"] | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str] | None) -> list[str] | None:
        if tags is None:
            return None
        cleaned: list[str] = []
        for tag in tags:
            tag = tag.strip()
            if not TAG_PATTERN.fullmatch(tag):
                raise ValueError(
                    "a tag is 1 to 32 letters, digits, spaces or . : / + - _ "
                    "and starts with a letter or digit"
                )
            if tag.lower() not in (t.lower() for t in cleaned):
                cleaned.append(tag)
        return cleaned


class RekeyRequest(BaseModel):
    label: str | None = Field(default=None, max_length=255)


class SessionCreate(BaseModel):
    scope: Literal["view", "control"] = "control"


class HistoryOut(BaseModel):
    id: uuid.UUID
    technician_id: uuid.UUID | None
    #: The technician's username (null once the account is gone, or for none).
    technician: str | None
    kind: str
    scope: str
    state: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryOut:
        return cls(**entry.__dict__)


def _out(machine: Machine, online: bool) -> MachineOut:
    values = {k: v for k, v in machine.__dict__.items() if k != "tenant_id"}
    values["online"] = online
    values["tags"] = list(machine.tags)
    return MachineOut(**values)


def _event(
    principal: Principal, request: Request, event_type: str, machine_id: uuid.UUID, **detail: Any
) -> Event:
    return Event(
        event_type,
        tenant_id=principal.user.tenant_id,
        user_id=principal.user.id,
        machine_id=machine_id,
        actor=principal.user.username,
        source_address=source_address(request),
        detail=detail,
    )


def _admin_only(principal: Principal, what: str) -> None:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"only an admin may change {what}")


@router.get("")
async def list_machines(
    principal: Authenticated,
    state: State,
    client: Annotated[uuid.UUID | None, Query(description="Only this client's machines")] = None,
    site: Annotated[uuid.UUID | None, Query(description="Only this site's machines")] = None,
    include: Annotated[
        Literal["ended"] | None,
        Query(description="`ended`: also support-code machines whose session is over"),
    ] = None,
) -> list[MachineOut]:
    require(principal, Permission.SESSIONS_VIEW)
    async with state.engine.connect() as conn:
        found = await visible_machines(
            conn, principal, client_id=client, site_id=site, include_ended=include == "ended"
        )
    return [_out(m, state.hub.is_online(m.id)) for m in found]


@router.get("/{machine_id}", responses={404: {"description": NOT_FOUND}})
async def get_machine(
    machine_id: uuid.UUID, principal: Authenticated, state: State
) -> MachineDetail:
    require(principal, Permission.SESSIONS_VIEW)
    async with state.engine.connect() as conn:
        machine = await reachable_machine(conn, principal, machine_id)
        keys = (
            await machines.bound_keys(conn, machine.tenant_id, machine.id)
            if Permission.AGENT_KEYS_MANAGE in principal.permissions
            else None
        )
    return MachineDetail(
        **_out(machine, state.hub.is_online(machine.id)).model_dump(),
        agent_keys=[AgentKeyOut.of(k) for k in keys] if keys is not None else None,
    )


@router.get("/{machine_id}/sessions", responses={404: {"description": NOT_FOUND}})
async def machine_history(
    machine_id: uuid.UUID,
    principal: Authenticated,
    state: State,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[HistoryOut]:
    require(principal, Permission.SESSIONS_VIEW)
    async with state.engine.connect() as conn:
        machine = await reachable_machine(conn, principal, machine_id)
        found = await machines.session_history(conn, machine.tenant_id, machine.id, limit=limit)
    return [HistoryOut.of(entry) for entry in found]


async def _grouping(
    conn: AsyncConnection,
    principal: Principal,
    current: Machine,
    body: MachinePatch,
    sent: set[str],
    created: list[clients.Client],
) -> dict[str, Any]:
    """The client/site columns a patch asks for, checked against the tenant's clients; a
    client created on the way (``client_name`` of a new name) is added to ``created``."""
    if not sent & {"client_id", "client_name", "site_id"}:
        return {}
    _admin_only(principal, "a machine's client or site")
    if "client_id" in sent and "client_name" in sent:
        raise invalid("client_id", "give a client_id or a client_name, not both")
    tenant_id = principal.user.tenant_id
    client: clients.Client | None
    if "client_id" in sent:
        client = (
            await clients.get_client(conn, tenant_id, body.client_id)
            if body.client_id is not None
            else None
        )
        if body.client_id is not None and client is None:
            raise invalid("client_id", "unknown client")
    elif "client_name" in sent:
        client = None
        if body.client_name is not None:
            client = await clients.client_named(conn, tenant_id, body.client_name)
            if client is None:
                client = await clients.create_client(conn, tenant_id, body.client_name)
                created.append(client)
    else:
        client = (
            await clients.get_client(conn, tenant_id, current.client_id)
            if current.client_id
            else None
        )
    site: clients.Site | None = None
    if "site_id" in sent and body.site_id is not None:
        site = await clients.get_site(conn, tenant_id, body.site_id)
        if site is None:
            raise invalid("site_id", "unknown site")
        if not sent & {"client_id", "client_name"}:
            client = await clients.get_client(conn, tenant_id, site.client_id)
        if client is None or site.client_id != client.id:
            raise invalid("site_id", "the site belongs to another client")
    elif "site_id" not in sent and client is not None and client.id == current.client_id:
        site_id = current.site_id  # same client: the site stays
        return {"client_id": client.id, "client_name": client.name, "site_id": site_id}
    return {
        "client_id": client.id if client else None,
        "client_name": client.name if client else None,
        "site_id": site.id if site else None,
    }


@router.patch("/{machine_id}", responses={404: {"description": NOT_FOUND}})
async def update_machine(
    machine_id: uuid.UUID,
    body: MachinePatch,
    principal: Authenticated,
    request: Request,
    state: State,
) -> MachineOut:
    sent = set(body.model_fields_set)
    for field in ("name", "consent_policy", "tags"):
        if field in sent and getattr(body, field) is None:
            raise invalid(field, "null is not allowed")
    async with state.engine.connect() as conn:
        current = await reachable_machine(conn, principal, machine_id)
    require(principal, Permission.SESSIONS_VIEW)
    if sent & {"name", "notes", "tags"}:
        require(principal, Permission.SESSIONS_CONTROL)
    if "consent_policy" in sent:
        _admin_only(principal, "a machine's consent policy")
        if current.ad_hoc and body.consent_policy == "unattended":
            raise invalid("consent_policy", "a support-code machine always asks for consent")

    values: dict[str, Any] = {}
    if "name" in sent:
        values["name"] = body.name
    if "notes" in sent:
        values["notes"] = (body.notes or "").strip() or None
    if "tags" in sent:
        values["tags"] = tuple(body.tags or ())
    if "consent_policy" in sent:
        values["consent_policy"] = body.consent_policy
    created: list[clients.Client] = []
    async with state.engine.begin() as conn:
        current = await reachable_machine(conn, principal, machine_id)
        values.update(await _grouping(conn, principal, current, body, sent, created))
        changed = {k: v for k, v in values.items() if getattr(current, k) != v}
        if changed:
            await machines.update_fields(conn, current.tenant_id, machine_id, changed)
        machine = await reachable_machine(conn, principal, machine_id)

    # Committed: audit, tell the consoles, re-check who may still watch.
    for client in created:
        await state.audit.record(
            Event(
                CLIENT_CREATED,
                tenant_id=client.tenant_id,
                user_id=principal.user.id,
                actor=principal.user.username,
                source_address=source_address(request),
                detail={"client_id": str(client.id), "name": client.name},
            )
        )
    if "name" in changed:
        await state.audit.record(
            _event(
                principal, request, MACHINE_RENAMED, machine_id, old=current.name, new=machine.name
            )
        )
    others = {k: v for k, v in changed.items() if k != "name"}
    if others:
        await state.audit.record(
            _event(
                principal,
                request,
                MACHINE_UPDATED,
                machine_id,
                name=machine.name,
                changes=_describe_changes(current, others),
            )
        )
    console_events.notify_machine_changed(state, machine.tenant_id, machine_id)
    if "client_id" in changed:
        await state.hub.recheck_machine(machine_id)
    return _out(machine, state.hub.is_online(machine.id))


def _describe_changes(before: Machine, changed: dict[str, Any]) -> dict[str, Any]:
    """Old and new value of each changed field, for the audit row. Notes are described by
    their length only (they may hold what an audit reader should not see)."""
    described: dict[str, Any] = {}
    for key, new in changed.items():
        old = getattr(before, key)
        if key == "notes":
            described[key] = {"old_length": len(old or ""), "new_length": len(new or "")}
        elif isinstance(new, uuid.UUID | type(None)) and key.endswith("_id"):
            described[key] = {"old": str(old) if old else None, "new": str(new) if new else None}
        elif key == "tags":
            described[key] = {"old": list(old), "new": list(new)}
        else:
            described[key] = {"old": old, "new": new}
    if "site_id" in changed:
        described["site_id"]["old_name"] = before.site_name
    return described


@router.delete(
    "/{machine_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": NOT_FOUND}},
)
async def forget_machine(
    machine_id: uuid.UUID, principal: Authenticated, request: Request, state: State
) -> Response:
    """Forget a machine: gone from lists and lookups, its keys revoked and its agent
    disconnected, a live session ended; its sessions and audit rows stay."""
    async with state.engine.begin() as conn:
        machine = await reachable_machine(conn, principal, machine_id)
        if not principal.is_admin:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail="only an admin may forget a machine"
            )
        keys = [
            k
            for k in await machines.bound_keys(conn, machine.tenant_id, machine_id)
            if k.revoked_at is None
        ]
        for key in keys:
            await agent_keys.revoke(conn, machine.tenant_id, key.id)
        await machines.forget(conn, machine.tenant_id, machine_id)

    # Committed: stop what runs, audit, tell the consoles.
    live = state.hub.live_session_for_machine(machine_id)
    if live is not None:
        await state.hub.end_session(live.id, END_REASON_DELETED, by=principal.user.username)
    closed = sum(state.hub.revoke_agent_key(key.id) for key in keys)
    await state.audit.record(
        _event(
            principal,
            request,
            MACHINE_DELETED,
            machine_id,
            name=machine.name,
            hostname=machine.hostname,
            client_name=machine.client_name,
            ad_hoc=machine.ad_hoc,
            revoked_keys=[key.prefix for key in keys],
            closed_sockets=closed,
            ended_session=str(live.id) if live else None,
        )
    )
    console_events.notify_machine_changed(state, machine.tenant_id, machine_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{machine_id}/rekey",
    status_code=status.HTTP_201_CREATED,
    responses={
        404: {"description": NOT_FOUND},
        409: {"description": "A support-code machine has no agent key"},
    },
)
async def rekey_machine(
    machine_id: uuid.UUID,
    principal: Authenticated,
    request: Request,
    state: State,
    body: RekeyRequest | None = None,
) -> IssuedAgentKey:
    """Issue a new agent key bound to this machine (shown once) and revoke the keys bound
    to it before (their agent is disconnected): for an agent reinstalled or a key leaked."""
    new = secrets_format.new_agent_key()
    async with state.engine.begin() as conn:
        machine = await reachable_machine(conn, principal, machine_id)
        require(principal, Permission.AGENT_KEYS_MANAGE)
        if machine.ad_hoc:
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail="a support-code machine has no agent key"
            )
        old = [
            k
            for k in await machines.bound_keys(conn, machine.tenant_id, machine_id)
            if k.revoked_at is None
        ]
        for key in old:
            await agent_keys.revoke(conn, machine.tenant_id, key.id)
        label = (body.label if body else None) or machine.name
        issued = await agent_keys.create(
            conn,
            tenant_id=machine.tenant_id,
            prefix=new.lookup,
            key_hash=new.key_hash,
            label=label,
            machine_id=machine.id,
            created_by=principal.user.id,
        )

    # Committed: disconnect the old keys' agents, audit, tell the consoles.
    closed = {key.id: state.hub.revoke_agent_key(key.id) for key in old}
    for key in old:
        await state.audit.record(
            _event(
                principal,
                request,
                AGENT_KEY_REVOKED,
                machine_id,
                key_id=str(key.id),
                prefix=key.prefix,
                closed_socket=closed[key.id] > 0,
                closed_sockets=closed[key.id],
                reason="rekey",
            )
        )
    await state.audit.record(
        _event(
            principal,
            request,
            AGENT_KEY_ISSUED,
            machine_id,
            key_id=str(issued.id),
            prefix=issued.prefix,
        )
    )
    await state.audit.record(
        _event(
            principal,
            request,
            MACHINE_REKEYED,
            machine_id,
            name=machine.name,
            key_id=str(issued.id),
            prefix=issued.prefix,
            revoked_keys=[key.prefix for key in old],
        )
    )
    console_events.notify_machine_changed(state, machine.tenant_id, machine_id)
    return IssuedAgentKey(
        **AgentKeyOut.of(issued).model_dump(), key=new.key, server_url=state.settings.public_url
    )


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

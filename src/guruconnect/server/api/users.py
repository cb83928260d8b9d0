"""User administration, for admins, inside their own tenant only.

Another tenant's user id answers 404, exactly like an id that does not exist.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, BeforeValidator, Field, StringConstraints
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.concurrency import run_in_threadpool

from guruconnect.server.api.deps import Admin, Principal, State, source_address
from guruconnect.server.audit_types import AuditType
from guruconnect.server.auth.permissions import TECHNICIAN_DEFAULTS, Permission, Role
from guruconnect.server.db import accounts, auth_tokens, users
from guruconnect.server.db.events import Event
from guruconnect.server.db.users import (
    USERNAME_PATTERN,
    ClientAccess,
    User,
    normalise_username,
)
from guruconnect.server.errors import invalid

router = APIRouter(prefix="/api/users", tags=["users"])

#: Normalised (trimmed, lower-cased) before the pattern is checked, as login does.
Username = Annotated[
    str,
    StringConstraints(pattern=USERNAME_PATTERN),
    BeforeValidator(lambda v: normalise_username(v) if isinstance(v, str) else v),
]
#: Long enough to resist guessing offline; capped so hashing cannot be made expensive.
NewPassword = Annotated[str, StringConstraints(min_length=12, max_length=1024)]
ClientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
NOT_FOUND = "user not found"


class UserOut(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str | None
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    permissions: list[Permission]
    client_access: ClientAccessBody


class ClientAccessBody(BaseModel):
    machine_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)
    client_names: list[ClientName] = Field(default_factory=list, max_length=10_000)


class PermissionsBody(BaseModel):
    permissions: list[Permission] = Field(max_length=len(Permission))


class UserCreate(BaseModel):
    username: Username
    password: NewPassword
    role: Role = Role.TECHNICIAN
    display_name: str | None = Field(default=None, max_length=100)
    #: A technician's grants; omitted: the role's defaults (admins hold everything anyway).
    permissions: list[Permission] | None = Field(default=None, max_length=len(Permission))


class UserPatch(BaseModel):
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=100)
    disabled: bool | None = None
    password: NewPassword | None = None


UserOut.model_rebuild()


async def _out(conn: AsyncConnection, user: User) -> UserOut:
    access = await users.client_access_of(conn, user.id)
    granted = await users.permissions_of(conn, user.id)
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        disabled=user.disabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        permissions=sorted(Permission(p) for p in granted if p in Permission._value2member_map_),
        client_access=ClientAccessBody(
            machine_ids=sorted(access.machine_ids), client_names=sorted(access.client_names)
        ),
    )


async def _target(conn: AsyncConnection, principal: Principal, user_id: uuid.UUID) -> User:
    user = await users.get(conn, principal.user.tenant_id, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    return user


async def _keep_an_admin(conn: AsyncConnection, target: User) -> None:
    """Refuse the change that would leave a tenant with no usable admin."""
    if (
        target.role is Role.ADMIN
        and not target.disabled
        and await users.lock_active_admins(conn, target.tenant_id) <= 1
    ):
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="a tenant must keep at least one active admin"
        )


def _event(
    event_type: str, principal: Principal, request: Request, target: uuid.UUID, **detail: object
) -> Event:
    return Event(
        event_type,
        tenant_id=principal.user.tenant_id,
        user_id=target,
        actor=principal.user.username,
        source_address=source_address(request),
        detail={"by": str(principal.user.id), **detail},
    )


@router.get("")
async def list_users(principal: Admin, state: State) -> list[UserOut]:
    async with state.engine.connect() as conn:
        return [
            await _out(conn, user)
            for user in await users.list_for_tenant(conn, principal.user.tenant_id)
        ]


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {"description": "Taken"}})
async def create_user(
    body: UserCreate, principal: Admin, request: Request, state: State
) -> UserOut:
    password_hash = await run_in_threadpool(state.passwords.hash, body.password)
    taken = HTTPException(status.HTTP_409_CONFLICT, detail="username is taken")
    try:
        async with state.engine.begin() as conn:
            if await users.username_taken(conn, body.username):
                raise taken
            user = await users.create(
                conn,
                tenant_id=principal.user.tenant_id,
                username=body.username,
                password_hash=password_hash,
                role=body.role,
                display_name=body.display_name,
            )
            granted = (
                TECHNICIAN_DEFAULTS if body.permissions is None else frozenset(body.permissions)
            )
            await users.set_permissions(conn, user, [p.value for p in granted])
            out = await _out(conn, user)
    except IntegrityError:  # the same name created at the same moment by someone else
        raise taken from None
    await state.audit.record(
        _event(AuditType.USER_CREATED, principal, request, user.id, role=user.role.value)
    )
    return out


@router.get("/{user_id}", responses={404: {"description": NOT_FOUND}})
async def get_user(user_id: uuid.UUID, principal: Admin, state: State) -> UserOut:
    async with state.engine.connect() as conn:
        return await _out(conn, await _target(conn, principal, user_id))


@router.patch("/{user_id}", responses={404: {"description": NOT_FOUND}})
async def update_user(
    user_id: uuid.UUID, body: UserPatch, principal: Admin, request: Request, state: State
) -> UserOut:
    changes = body.model_dump(exclude_unset=True)
    for field in ("role", "disabled"):
        if changes.get(field, ...) is None:
            raise invalid(field, "null is not allowed")
    password = changes.pop("password", None)
    if password is not None:
        changes["password_hash"] = await run_in_threadpool(state.passwords.hash, password)
    if "role" in changes:
        changes["role"] = Role(changes["role"]).value
    revoked: list[uuid.UUID] = []
    async with state.engine.begin() as conn:
        target = await _target(conn, principal, user_id)
        if changes.get("role") == Role.TECHNICIAN.value or changes.get("disabled") is True:
            await _keep_an_admin(conn, target)
        if changes:
            await users.update_fields(conn, target.tenant_id, target.id, **changes)
        demoted = target.role is Role.ADMIN and changes.get("role") == Role.TECHNICIAN.value
        if demoted and not await users.permissions_of(conn, target.id):
            # A new technician's starting grants, as if created as one.
            await users.set_permissions(conn, target, [p.value for p in TECHNICIAN_DEFAULTS])
        # A disabled account or a changed password must not keep old sessions alive.
        if changes.get("disabled") is True or password is not None:
            revoked = await auth_tokens.revoke_user(conn, target.id, "user_changed")
        updated = await _target(conn, principal, user_id)
        out = await _out(conn, updated)
    if revoked or changes.get("disabled") is True:
        state.hub.revoke_user(user_id)
    elif "role" in changes:
        # A demoted admin keeps only the machines their client access names.
        await state.hub.recheck_user(user_id)
    fields = sorted(k for k in changes if k != "password_hash") + (
        ["password"] if password is not None else []
    )
    await state.audit.record(
        _event(
            AuditType.USER_UPDATED, principal, request, user_id, fields=fields, revoked=len(revoked)
        )
    )
    return out


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": NOT_FOUND}},
)
async def delete_user(
    user_id: uuid.UUID, principal: Admin, request: Request, state: State
) -> Response:
    async with state.engine.begin() as conn:
        target = await _target(conn, principal, user_id)
        await _keep_an_admin(conn, target)
        await users.soft_delete(conn, target.tenant_id, target.id)
        revoked = await auth_tokens.revoke_user(conn, target.id, "user_deleted")
    state.hub.revoke_user(user_id, "user deleted")
    await state.audit.record(
        _event(AuditType.USER_DELETED, principal, request, user_id, revoked=len(revoked))
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{user_id}/permissions", responses={404: {"description": NOT_FOUND}})
async def set_permissions(
    user_id: uuid.UUID, body: PermissionsBody, principal: Admin, request: Request, state: State
) -> UserOut:
    async with state.engine.begin() as conn:
        target = await _target(conn, principal, user_id)
        await users.set_permissions(conn, target, [p.value for p in body.permissions])
        out = await _out(conn, target)
    await state.hub.recheck_user(target.id)
    await state.audit.record(
        _event(
            AuditType.USER_PERMISSIONS_SET,
            principal,
            request,
            user_id,
            permissions=[p.value for p in body.permissions],
        )
    )
    return out


@router.put(
    "/{user_id}/client-access",
    responses={404: {"description": NOT_FOUND}, 422: {"description": "Unknown machine"}},
)
async def set_client_access(
    user_id: uuid.UUID, body: ClientAccessBody, principal: Admin, request: Request, state: State
) -> UserOut:
    async with state.engine.begin() as conn:
        target = await _target(conn, principal, user_id)
        missing = await users.missing_machines(conn, target.tenant_id, body.machine_ids)
        if missing:
            raise invalid(
                "machine_ids", f"unknown machine ids: {', '.join(sorted(map(str, missing)))}"
            )
        await users.set_client_access(
            conn,
            target,
            ClientAccess(frozenset(body.machine_ids), frozenset(body.client_names)),
        )
        out = await _out(conn, target)
    await state.hub.recheck_user(target.id)
    await state.audit.record(
        _event(
            AuditType.USER_CLIENT_ACCESS_SET,
            principal,
            request,
            user_id,
            machines=len(set(body.machine_ids)),
            clients=sorted(set(body.client_names)),
        )
    )
    return out


class PasswordReset(BaseModel):
    password: NewPassword


@router.post(
    "/{user_id}/reset-password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": NOT_FOUND}},
)
async def reset_password(
    user_id: uuid.UUID, body: PasswordReset, principal: Admin, request: Request, state: State
) -> Response:
    """Set a temporary password: the user must change it at the next login (until then
    their token works only for that), and every session of theirs ends now."""
    password_hash = await run_in_threadpool(state.passwords.hash, body.password)
    async with state.engine.begin() as conn:
        target = await _target(conn, principal, user_id)
        await accounts.set_password(
            conn, target.tenant_id, target.id, password_hash, must_change=True
        )
        revoked = await auth_tokens.revoke_user(conn, target.id, "password_reset")
    state.hub.revoke_user(target.id, "password reset by an admin")
    await state.audit.record(
        _event(AuditType.USER_PASSWORD_RESET, principal, request, target.id, revoked=len(revoked))
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{user_id}/reset-mfa",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": NOT_FOUND}},
)
async def reset_mfa(
    user_id: uuid.UUID, principal: Admin, request: Request, state: State
) -> Response:
    """For a user who lost their device: turn their second factor off (if the tenant
    requires one, they must set it up again at the next login)."""
    async with state.engine.begin() as conn:
        target = await _target(conn, principal, user_id)
        await accounts.disable(conn, target.id)
        revoked = await auth_tokens.revoke_user(conn, target.id, "mfa_reset")
    state.hub.revoke_user(target.id, "two-factor login reset by an admin")
    await state.audit.record(
        _event(AuditType.USER_MFA_RESET, principal, request, target.id, revoked=len(revoked))
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""One-time support codes for customers without an agent."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, status
from pydantic import BaseModel

from guruconnect.server.api.deps import Authenticated, State, require, source_address
from guruconnect.server.auth import secrets_format
from guruconnect.server.auth.permissions import Permission
from guruconnect.server.db import support_codes
from guruconnect.server.db.events import Event
from guruconnect.server.db.support_codes import SupportCode
from guruconnect.server.web.join import join_url

router = APIRouter(prefix="/api/support-codes", tags=["support codes"])


class SupportCodeOut(BaseModel):
    id: uuid.UUID
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    machine_id: uuid.UUID | None
    session_id: uuid.UUID | None

    @classmethod
    def of(cls, code: SupportCode) -> SupportCodeOut:
        return cls(
            id=code.id,
            created_by=code.created_by,
            created_at=code.created_at,
            expires_at=code.expires_at,
            redeemed_at=code.redeemed_at,
            machine_id=code.machine_id,
            session_id=code.session_id,
        )


class IssuedSupportCode(SupportCodeOut):
    #: The code to give the customer, e.g. ``K7QX2-MZ9RB``. Shown once; stored as a hash.
    code: str
    #: The customer's join page for this code (``/join/CODE``), to send as a link.
    join_url: str


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_code(
    principal: Authenticated, request: Request, state: State
) -> IssuedSupportCode:
    require(principal, Permission.SUPPORT_CODES_CREATE)
    code = secrets_format.new_support_code()
    code_hash = secrets_format.support_code_digest(code)
    assert code_hash is not None
    async with state.engine.begin() as conn:
        row = await support_codes.create(
            conn,
            tenant_id=principal.user.tenant_id,
            code_hash=code_hash,
            created_by=principal.user.id,
            ttl=timedelta(seconds=state.settings.support_code_ttl_seconds),
        )
    await state.audit.record(
        Event(
            "support_code.created",
            tenant_id=principal.user.tenant_id,
            user_id=principal.user.id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"code_id": str(row.id), "expires_at": row.expires_at.isoformat()},
        )
    )
    return IssuedSupportCode(
        **SupportCodeOut.of(row).model_dump(),
        code=secrets_format.display_support_code(code),
        join_url=join_url(request, state.settings, code),
    )


@router.get("")
async def list_codes(principal: Authenticated, state: State) -> list[SupportCodeOut]:
    require(principal, Permission.SUPPORT_CODES_CREATE)
    async with state.engine.connect() as conn:
        rows = await support_codes.list_for_tenant(conn, principal.user.tenant_id)
    if not principal.is_admin:
        rows = [r for r in rows if r.created_by == principal.user.id]
    return [SupportCodeOut.of(r) for r in rows]

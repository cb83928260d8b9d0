"""Agent releases: public downloads, the list, install commands, update policies.

``/downloads/NAME`` serves only files that are published releases, looked up by exact
name in the database: nothing else under the data directory (or anywhere) is reachable,
and there is no listing. Range and ETag come from Starlette's ``FileResponse``.
"""

from __future__ import annotations

import asyncio
import re
import stat
import uuid
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, model_validator

from guruconnect.releases.manifest import VERSION_PATTERN
from guruconnect.server import install_commands
from guruconnect.server.api.deps import Admin, Authenticated, State, require
from guruconnect.server.auth.permissions import Permission
from guruconnect.server.db import machines, releases
from guruconnect.server.db.events import Event
from guruconnect.server.public_url import public_url

router = APIRouter(tags=["releases"])
#: What a published file may be called (the publish command names them so).
_DOWNLOAD_NAME = re.compile(r"guruconnect-agent-[A-Za-z0-9._+-]{1,150}")
_CONTENT_TYPES = {
    "linux": "application/octet-stream",
    "windows": "application/vnd.microsoft.portable-executable",
}
NOT_FOUND = "no such download"


def release_dir(state: State) -> Path:
    return state.settings.home / "releases"


@router.api_route("/downloads/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def download(name: str, request: Request, state: State) -> Response:
    if not _DOWNLOAD_NAME.fullmatch(name) or ".." in name:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    async with state.engine.connect() as conn:
        release = await releases.by_filename(conn, name)
    if release is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    path = release_dir(state) / release.filename
    try:
        found = await asyncio.to_thread(path.lstat)
    except OSError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND) from None
    if not stat.S_ISREG(found.st_mode):  # a symlink planted in releases/ leads nowhere
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND)
    headers = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    response = FileResponse(
        path,
        media_type=_CONTENT_TYPES.get(release.platform, "application/octet-stream"),
        filename=release.filename,
        headers=headers,
        stat_result=found,
    )
    etag = response.headers["etag"]
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={**headers, "ETag": etag})
    return response


class ReleaseOut(BaseModel):
    id: uuid.UUID
    version: str
    platform: str
    arch: str
    channel: str
    filename: str
    sha256: str
    size_bytes: int
    notes: str | None
    key_id: str | None
    created_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, r: releases.Release) -> ReleaseOut:
        return cls(**{name: getattr(r, name) for name in cls.model_fields})


@router.get("/api/releases")
async def list_releases(principal: Authenticated, state: State) -> list[ReleaseOut]:
    async with state.engine.connect() as conn:
        return [ReleaseOut.of(r) for r in await releases.list_all(conn)]


class InstallCommands(BaseModel):
    #: ``__AGENT_KEY__`` stands for the key; the page fills it in.
    placeholder: str = install_commands.KEY_PLACEHOLDER
    linux: str | None
    windows: str | None
    linux_release: ReleaseOut | None
    windows_release: ReleaseOut | None


def _newest(found: list[releases.Release], platform: str) -> releases.Release | None:
    return releases.choose(
        [r for r in found if r.platform == platform and r.arch == "x86_64"], None, "0"
    )


@router.get("/api/install-commands")
async def get_install_commands(
    principal: Authenticated, request: Request, state: State
) -> InstallCommands:
    require(principal, Permission.AGENT_KEYS_MANAGE)
    async with state.engine.connect() as conn:
        found = [r for r in await releases.list_all(conn) if r.channel == "stable"]
    base = public_url(request, state.settings)
    linux, windows = _newest(found, "linux"), _newest(found, "windows")
    return InstallCommands(
        linux=install_commands.linux(base, linux.filename, linux.sha256) if linux else None,
        windows=(
            install_commands.windows(base, windows.filename, windows.sha256) if windows else None
        ),
        linux_release=ReleaseOut.of(linux) if linux else None,
        windows_release=ReleaseOut.of(windows) if windows else None,
    )


# -- update policies --------------------------------------------------------------------


class PolicyIn(BaseModel):
    """Neither machine nor client: the tenant-wide default."""

    machine_id: uuid.UUID | None = None
    client_name: str | None = Field(default=None, min_length=1, max_length=255)
    pinned_version: str | None = Field(default=None, max_length=64)
    paused: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> PolicyIn:
        if self.machine_id is not None and self.client_name is not None:
            raise ValueError("give a machine_id or a client_name, not both")
        if self.pinned_version is not None and not VERSION_PATTERN.fullmatch(self.pinned_version):
            raise ValueError("pinned_version is not a version")
        return self


class PolicyOut(BaseModel):
    id: uuid.UUID
    machine_id: uuid.UUID | None
    client_name: str | None
    pinned_version: str | None
    paused: bool
    created_at: datetime


def _policy_out(p: releases.UpdatePolicy) -> PolicyOut:
    return PolicyOut(**{name: getattr(p, name) for name in PolicyOut.model_fields})


@router.get("/api/update-policies")
async def list_policies(principal: Admin, state: State) -> list[PolicyOut]:
    async with state.engine.connect() as conn:
        found = await releases.list_policies(conn, principal.user.tenant_id)
    return [_policy_out(p) for p in found]


@router.put("/api/update-policies")
async def set_policy(body: PolicyIn, principal: Admin, state: State) -> PolicyOut:
    tenant_id = principal.user.tenant_id
    async with state.engine.begin() as conn:
        if body.machine_id and await machines.get(conn, tenant_id, body.machine_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="machine not found")
        policy = await releases.set_policy(
            conn,
            tenant_id=tenant_id,
            machine_id=body.machine_id,
            client_name=body.client_name,
            pinned_version=body.pinned_version,
            paused=body.paused,
        )
    await state.audit.record(
        Event(
            "update_policy.set",
            tenant_id=tenant_id,
            user_id=principal.user.id,
            machine_id=body.machine_id,
            actor=principal.user.username,
            detail={
                "client_name": body.client_name,
                "pinned_version": body.pinned_version,
                "paused": body.paused,
            },
        )
    )
    await state.hub.offer_updates(tenant_id)
    return _policy_out(policy)


@router.delete("/api/update-policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_policy(policy_id: uuid.UUID, principal: Admin, state: State) -> None:
    tenant_id = principal.user.tenant_id
    async with state.engine.begin() as conn:
        if not await releases.delete_policy(conn, tenant_id, policy_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="policy not found")
    await state.audit.record(
        Event(
            "update_policy.deleted",
            tenant_id=tenant_id,
            user_id=principal.user.id,
            actor=principal.user.username,
            detail={"policy_id": str(policy_id)},
        )
    )
    await state.hub.offer_updates(tenant_id)


class Announced(BaseModel):
    offered: int


@router.post("/api/releases/announce")
async def announce(principal: Admin, state: State) -> Announced:
    """Tell the tenant's connected agents to look for updates now (after a publish)."""
    return Announced(offered=await state.hub.offer_updates(principal.user.tenant_id))

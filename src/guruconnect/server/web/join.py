"""The customer's join page: ``/join`` (type a code) and ``/join/CODE`` (the link a
technician sends), and the agent download bound to that code.

A code is looked up only as redeeming it would: unused and unexpired, or nothing. A wrong,
used or expired code gets one and the same answer, and every lookup or download counts
against the support-code limiter (the key redemption uses), so the page is no faster an
oracle than redeeming. What a valid code shows (who asks, for which company) is what the
consent dialog would show after redeeming it.

The download is the built agent (``Settings.agent_dist_dir``) named
``guruconnect-join_<CODE>_<scheme>_<host>_<port>``: the agent reads its code and server from
that name, serves the one session and deletes itself (``guruconnect.agent.join``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request, status
from fastapi.responses import FileResponse, JSONResponse, Response

from guruconnect.agent.join_target import (
    BadTarget,
    JoinTarget,
    Server,
    join_file_name,
    link_for,
    parse_server,
)
from guruconnect.server.api.deps import source_address
from guruconnect.server.auth import secrets_format
from guruconnect.server.config import Settings
from guruconnect.server.db import releases, support_codes, tenants, users
from guruconnect.server.db.support_codes import SupportCode
from guruconnect.server.public_url import public_url
from guruconnect.server.rate_limits import LimiterUnavailable, rate
from guruconnect.server.state import AppState, app_state

router = APIRouter(include_in_schema=False)

NOT_VALID = "This code is not valid: it may be mistyped, already used or expired."
#: What the session is for: a support code always asks to see and control, once.
PURPOSE = "a one-time remote support session: to see and control this computer"


@dataclass(frozen=True)
class Platform:
    name: str
    label: str
    dist_file: str
    windows: bool


PLATFORMS = {
    p.name: p
    for p in (
        Platform("linux-x86_64", "Linux (x86-64)", "guruconnect-linux-x86_64", False),
        Platform("windows-x86_64", "Windows (64-bit)", "guruconnect-windows-x86_64.exe", True),
    )
}


def public_server(request: Request, settings: Settings) -> Server | None:
    """The server's public URL (``GURUCONNECT_PUBLIC_URL``, or as this request reached it);
    None if its address cannot be bound into a file name (an IPv6 literal)."""
    try:
        return parse_server(public_url(request, settings))
    except BadTarget:
        return None


def join_url(request: Request, settings: Settings, code: str) -> str:
    """The link a technician sends for ``code``."""
    normal = secrets_format.normalise_support_code(code)
    return public_url(request, settings) + "/join/" + secrets_format.display_support_code(normal)


async def agent_file(state: AppState, platform: Platform) -> Path | None:
    """The agent file the join page serves for ``platform``: ``GURUCONNECT_AGENT_DIST_DIR``'s
    build when set, else the newest stable release published for it (``admin release
    publish``), else None."""
    dist = state.settings.agent_dist_dir
    if dist is not None:
        built = dist / platform.dist_file
        return built if built.is_file() else None
    system, arch = platform.name.split("-", 1)
    async with state.engine.connect() as conn:
        found = await releases.candidates(conn, platform=system, arch=arch)
    newest = releases.choose(found, None, "0")
    if newest is None:
        return None
    published = state.settings.home / "releases" / newest.filename
    return published if published.is_file() and not published.is_symlink() else None


def _page() -> FileResponse:
    from guruconnect.server.web.routes import STATIC_DIR

    return FileResponse(STATIC_DIR / "join.html", headers={"cache-control": "no-cache"})


@router.get("/join")
async def join_form() -> FileResponse:
    return _page()


@router.get("/join/{code}")
async def join_code(code: str) -> FileResponse:
    # The page is the same for every code (it holds no data): nothing to learn from it.
    return _page()


def _refusal(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"detail": detail},
        status_code=status_code,
        headers={"cache-control": "no-store", **(headers or {})},
    )


async def _redeemable(request: Request, state: AppState, code: str) -> SupportCode | JSONResponse:
    """The code if it could be redeemed now, else the response to give; counts the attempt."""
    item = rate(state.settings.support_code_rate_limit)
    source = source_address(request)
    try:
        allowed = await state.rate_limits.hit(item, "support_code", source)
    except LimiterUnavailable:
        allowed = False
    if not allowed:
        retry = 60
        with contextlib.suppress(LimiterUnavailable):
            retry = await state.rate_limits.retry_after(item, "support_code", source) or 60
        return _refusal(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many code attempts from this address; try again in a minute.",
            {"Retry-After": str(retry)},
        )
    code_hash = secrets_format.support_code_digest(code)
    if code_hash is None:
        return _refusal(status.HTTP_404_NOT_FOUND, NOT_VALID)
    async with state.engine.connect() as conn:
        found = await support_codes.find_redeemable(conn, code_hash)
    if found is None:
        return _refusal(status.HTTP_404_NOT_FOUND, NOT_VALID)
    return found


@router.get("/join/{code}/details")
async def join_details(code: str, request: Request) -> Response:
    state = app_state(request)
    found = await _redeemable(request, state, code)
    if isinstance(found, JSONResponse):
        return found
    async with state.engine.connect() as conn:
        technician = (
            await users.get(conn, found.tenant_id, found.created_by) if found.created_by else None
        )
        tenant = await tenants.get(conn, found.tenant_id)
    normal = secrets_format.normalise_support_code(code)
    shown = secrets_format.display_support_code(normal)
    server = public_server(request, state.settings)
    downloads = []
    if server is not None:
        for platform in PLATFORMS.values():
            if await agent_file(state, platform) is not None:
                downloads.append(
                    {
                        "platform": platform.name,
                        "label": platform.label,
                        "url": f"/join/{shown}/download/{platform.name}",
                        "file_name": join_file_name(normal, server, windows=platform.windows),
                    }
                )
    body = {
        "code": shown,
        "technician": (technician.display_name or technician.username) if technician else "",
        "company": tenant.name if tenant else "",
        "purpose": PURPOSE,
        "expires_at": found.expires_at.isoformat(),
        "downloads": downloads,
        "link": link_for(JoinTarget(normal, server)) if server is not None else None,
    }
    return JSONResponse(body, headers={"cache-control": "no-store"})


@router.get("/join/{code}/download/{platform}")
async def join_download(code: str, platform: str, request: Request) -> Response:
    state = app_state(request)
    chosen = PLATFORMS.get(platform)
    if chosen is None:
        return _refusal(status.HTTP_404_NOT_FOUND, "No agent for that platform.")
    found = await _redeemable(request, state, code)
    if isinstance(found, JSONResponse):
        return found
    server = public_server(request, state.settings)
    file = await agent_file(state, chosen)
    if server is None or file is None:
        return _refusal(status.HTTP_404_NOT_FOUND, "No agent for that platform on this server.")
    name = join_file_name(
        secrets_format.normalise_support_code(code), server, windows=chosen.windows
    )
    return FileResponse(
        file,
        filename=name,
        media_type="application/octet-stream",
        headers={"cache-control": "no-store"},
    )

"""Routes for the pages: one dashboard shell for every dashboard path (the page's script
picks the view from the path), the viewer page, static files and the keyboard table.

Nothing here needs a login: the pages hold no data; everything they show comes from the
API, which checks the caller. There is deliberately no setup page: the first admin is
created by the CLI only (a re-enterable web setup wizard is how ScreenConnect's
CVE-2024-1709 happened).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import structlog
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from guruconnect.protocol import SpecialKey
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.protocol.end_reasons import END_REASON_TEXT
from guruconnect.protocol.keys import browser_table
from guruconnect.server import audit_types
from guruconnect.server.web import join

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
WIRE_BUNDLE = STATIC_DIR / "build" / "wire.js"

#: Dashboard views; each path serves the same shell.
DASHBOARD_PATHS = (
    "/login",
    "/machines",
    "/sessions",
    "/support-codes",
    "/agent-keys",
    "/users",
    "/updates",
    "/audit",
    "/account",
)

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    # Pages change with the code; never serve a stale shell that loads new scripts.
    return FileResponse(STATIC_DIR / name, headers={"cache-control": "no-cache"})


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/machines", status_code=status.HTTP_302_FOUND)


async def dashboard() -> FileResponse:
    return _page("index.html")


for _path in DASHBOARD_PATHS:
    router.add_api_route(_path, dashboard, methods=["GET"])


@router.get("/machines/{machine_id}")
async def machine_page(machine_id: uuid.UUID) -> FileResponse:
    return _page("index.html")


@router.get("/viewer/{session_id}")
async def viewer(session_id: uuid.UUID) -> FileResponse:
    return _page("viewer.html")


@router.get("/web/keys.json")
async def keys_json() -> JSONResponse:
    """``KeyboardEvent.code`` -> ``[scan code, extended]``: the agent's own table, so the
    viewer and the agent cannot disagree about a key."""
    return JSONResponse(browser_table(), headers={"cache-control": "no-cache"})


@router.get("/web/audit-types.json")
async def audit_types_json() -> JSONResponse:
    """The audit event types and their labels: the server's own vocabulary (``AuditType``),
    so the audit page suggests exactly the types rows carry."""
    return JSONResponse(audit_types.browser_table(), headers={"cache-control": "no-cache"})


#: The special keys the viewer's menu offers (Ctrl+Alt+Del has a button of its own).
SPECIAL_KEY_MENU = (
    ("SPECIAL_KEY_WIN", "Windows key"),
    ("SPECIAL_KEY_ALT_TAB", "Alt+Tab"),
    ("SPECIAL_KEY_PRINT_SCREEN", "Print Screen"),
    ("SPECIAL_KEY_CTRL_ESC", "Ctrl+Esc"),
    ("SPECIAL_KEY_LOCK_WORKSTATION", "Lock workstation"),
)


def viewer_constants(consent_timeout_seconds: float) -> dict[str, object]:
    """What the viewer would otherwise copy by hand from Python: close codes by name, end
    reasons in words, the special-key menu, and how long the person at the machine has to
    answer a consent prompt (for the viewer's countdown)."""
    return {
        "closeCodes": {code.name: code.value for code in CloseCode},
        "endReasons": {reason.value: text for reason, text in END_REASON_TEXT.items()},
        "specialKeys": [
            {"value": SpecialKey.Value(name), "name": name, "label": label}
            for name, label in SPECIAL_KEY_MENU
        ],
        "consentTimeoutSeconds": consent_timeout_seconds,
    }


@router.get("/web/constants.json")
async def constants_json(request: Request) -> JSONResponse:
    """The viewer's constants, built from Python (see :func:`viewer_constants`)."""
    settings = request.app.state.guruconnect.settings
    return JSONResponse(
        viewer_constants(settings.consent_timeout_seconds),
        headers={"cache-control": "no-cache"},
    )


def mount(app: FastAPI) -> None:
    """Add the pages to ``app``."""
    if not WIRE_BUNDLE.is_file():
        log.warning("web bundle missing; run `make setup`", path=str(WIRE_BUNDLE))
    app.include_router(router)
    app.include_router(join.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

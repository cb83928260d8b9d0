"""The audit trail, tenant-scoped, for admins and users granted ``audit.read``: pages of
JSON for the dashboard, and a streamed export (CSV or JSON lines) of a filtered range."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from guruconnect.server.api.deps import Authenticated, State, require, source_address
from guruconnect.server.audit_types import AuditType
from guruconnect.server.auth.permissions import Permission
from guruconnect.server.db import events
from guruconnect.server.db.events import Event, StoredEvent

router = APIRouter(prefix="/api/events", tags=["audit"])


class EventOut(BaseModel):
    id: uuid.UUID
    event_type: str
    created_at: datetime
    session_id: uuid.UUID | None
    machine_id: uuid.UUID | None
    user_id: uuid.UUID | None
    actor: str | None
    source_address: str | None
    detail: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventOut]
    #: Pass as ``before`` for the next (older) page; null on the last page.
    next_before: uuid.UUID | None


@router.get("")
async def list_events(
    principal: Authenticated,
    state: State,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    session_id: uuid.UUID | None = None,
    machine_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    before: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventPage:
    require(principal, Permission.AUDIT_READ)
    async with state.engine.connect() as conn:
        found = await events.list_events(
            conn,
            principal.user.tenant_id,
            event_type=event_type,
            session_id=session_id,
            machine_id=machine_id,
            user_id=user_id,
            before=before,
            since=_utc(since),
            until=_utc(until),
            limit=limit,
        )
    page = [
        EventOut(
            id=e.id,
            event_type=e.event_type,
            created_at=e.created_at,
            session_id=e.session_id,
            machine_id=e.machine_id,
            user_id=e.user_id,
            actor=e.actor,
            source_address=e.source_address,
            detail=e.detail,
        )
        for e in found
    ]
    return EventPage(events=page, next_before=page[-1].id if len(page) == limit else None)


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


#: Columns of the export, in order.
COLUMNS = (
    "id",
    "created_at",
    "event_type",
    "actor",
    "source_address",
    "user_id",
    "machine_id",
    "session_id",
    "detail",
)
#: Rows fetched per query while streaming (each page on its own short connection).
EXPORT_PAGE = 500
#: What a spreadsheet would run as a formula when a cell starts with it.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Neutralise CSV injection: a cell a spreadsheet would read as a formula gets a
    leading apostrophe (shown as text, not evaluated)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _row(event: StoredEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "created_at": event.created_at.isoformat(),
        "event_type": event.event_type,
        "actor": event.actor,
        "source_address": event.source_address,
        "user_id": str(event.user_id) if event.user_id else None,
        "machine_id": str(event.machine_id) if event.machine_id else None,
        "session_id": str(event.session_id) if event.session_id else None,
        "detail": event.detail,
    }


def csv_line(row: dict[str, Any]) -> str:
    out = io.StringIO()
    cells = []
    for column in COLUMNS:
        value = row[column]
        if column == "detail":
            value = json.dumps(value, sort_keys=True, ensure_ascii=False)
        cells.append(safe_cell("" if value is None else str(value)))
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
async def export_events(
    principal: Authenticated,
    state: State,
    request: Request,
    format: ExportFormat = ExportFormat.CSV,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    session_id: uuid.UUID | None = None,
    machine_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    max_rows: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> StreamingResponse:
    """The filtered range, newest first, streamed page by page (never all in memory)."""
    require(principal, Permission.AUDIT_READ)
    tenant_id = principal.user.tenant_id
    filters = {
        "event_type": event_type,
        "session_id": session_id,
        "machine_id": machine_id,
        "user_id": user_id,
        "since": _utc(since),
        "until": _utc(until),
    }
    await state.audit.record(
        Event(
            AuditType.AUDIT_EXPORTED,
            tenant_id=tenant_id,
            user_id=principal.user.id,
            actor=principal.user.username,
            source_address=source_address(request),
            detail={"format": format.value}
            | {k: str(v) for k, v in filters.items() if v is not None},
        )
    )

    async def body() -> AsyncIterator[str]:
        if format is ExportFormat.CSV:
            header = io.StringIO()
            csv.writer(header, lineterminator="\r\n").writerow(COLUMNS)
            yield header.getvalue()
        before: uuid.UUID | None = None
        sent = 0
        while sent < max_rows:
            async with state.engine.connect() as conn:
                page = await events.list_events(
                    conn,
                    tenant_id,
                    before=before,
                    limit=min(EXPORT_PAGE, max_rows - sent),
                    **filters,  # type: ignore[arg-type]
                )
            for event in page:
                row = _row(event)
                if format is ExportFormat.CSV:
                    yield csv_line(row)
                else:
                    yield json.dumps(row, ensure_ascii=False) + "\n"
            sent += len(page)
            if len(page) < EXPORT_PAGE:
                break
            before = page[-1].id

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv; charset=utf-8" if format is ExportFormat.CSV else "application/x-ndjson"
    return StreamingResponse(
        body(),
        media_type=media,
        headers={
            "content-disposition": f'attachment; filename="audit-{stamp}.{format.value}"',
            "cache-control": "no-store",
        },
    )

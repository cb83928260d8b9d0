"""The audit trail you can use: one vocabulary, served to the browser; CSV and JSON-lines
export of a filtered range (tenant-scoped, ``audit.read``, injection-safe); content kept
only by tenant policy."""

from __future__ import annotations

import ast
import asyncio
import csv
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from guruconnect.server.api.events import COLUMNS, csv_line, safe_cell
from guruconnect.server.audit import AuditLog, content_detail
from guruconnect.server.audit_types import LABELS, AuditType, browser_table
from guruconnect.server.db.engine import create_engine
from guruconnect.server.db.events import Event
from guruconnect.server.db.schema import tenants
from tests.conftest import LiveServer

SERVER_SRC = Path(__file__).parents[2] / "src" / "guruconnect" / "server"


def _type_literals(node: ast.AST) -> Iterator[str]:
    """String constants that look like event types, in this expression (through ifs)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _type_literals(node.body)
        yield from _type_literals(node.orelse)
    elif isinstance(node, ast.JoinedStr):  # f"{plane}.auth_failed"
        tail = node.values[-1]
        if isinstance(tail, ast.Constant) and isinstance(tail.value, str):
            yield from (f"{plane}{tail.value}" for plane in ("agent", "viewer"))


def emitted_types() -> dict[str, str]:
    """Every event type a server module writes, with where: the first argument of
    ``Event(...)`` and of the ``*_event(...)`` helpers (their type argument), the values
    of ``event_type = ...`` and ``names = {...}``, and what ``limit_event`` returns."""
    found: dict[str, str] = {}
    for path in SERVER_SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            candidates: list[ast.AST] = []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name == "Event" and node.args:
                    candidates.append(node.args[0])
                elif name.endswith("_event") and node.args:
                    candidates.extend(node.args[:2])
            elif isinstance(node, ast.Assign) and any(
                getattr(t, "id", "") in {"event_type", "names"} for t in node.targets
            ):
                value = node.value
                candidates.extend(value.values if isinstance(value, ast.Dict) else [value])
            elif isinstance(node, ast.FunctionDef) and node.name == "limit_event":
                candidates.extend(
                    n.value for n in ast.walk(node) if isinstance(n, ast.Return) and n.value
                )
            for candidate in candidates:
                for literal in _type_literals(candidate):
                    if "." in literal and literal.replace(".", "").replace("_", "").isalpha():
                        found.setdefault(literal, f"{path.relative_to(SERVER_SRC)}")
    return found


def test_every_emitted_event_type_is_in_the_vocabulary() -> None:
    emitted = emitted_types()
    assert "session.created" in emitted  # the scan finds them
    assert "agent.auth_failed" in emitted
    unknown = {t: where for t, where in emitted.items() if t not in set(AuditType)}
    assert not unknown, f"add these to AuditType (server/audit_types.py): {unknown}"
    assert set(LABELS) == set(AuditType)


def test_audit_types_are_served_to_the_browser(server: LiveServer) -> None:
    response = server.client().get("/web/audit-types.json")
    assert response.status_code == 200
    assert response.json() == browser_table()
    types = [t["type"] for t in response.json()]
    assert "session.created" in types
    assert "session.started" not in types


def test_csv_cells_cannot_become_formulas() -> None:
    for hostile in ('=HYPERLINK("x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(hostile) == "'" + hostile
    assert safe_cell("alice") == "alice"
    row = dict.fromkeys(COLUMNS) | {"actor": "=cmd|' /C calc'!A0", "detail": {"a": 1}}
    [cells] = list(csv.reader(io.StringIO(csv_line(row))))
    assert cells[COLUMNS.index("actor")] == "'=cmd|' /C calc'!A0"
    assert json.loads(cells[COLUMNS.index("detail")]) == {"a": 1}


def test_export_is_filtered_tenant_scoped_and_needs_audit_read(server: LiveServer) -> None:
    server.create_user("root", is_admin=True)
    server.create_user("tech")
    server.create_tenant("other")
    server.create_user("boss", is_admin=True, tenant="other")
    root = server.client(token=server.login("root"))
    record(server, Event(AuditType.AUTH_LOGIN_FAILED, tenant_id=tenant_of(server), actor="@SUM(1)"))
    server.login("boss")  # an auth.login in another tenant
    for _ in range(3):
        server.login("tech")

    tech = server.client(token=server.login("tech"))
    assert tech.get("/api/events/export").status_code == 403

    response = root.get("/api/events/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(COLUMNS)
    actors = {r["actor"] for r in rows}
    assert "boss" not in actors  # another tenant's rows never leave it
    assert "tech" in actors
    assert "root" in actors
    assert "'@SUM(1)" in actors  # neutralised

    lines = root.get(
        "/api/events/export", params={"format": "jsonl", "event_type": "auth.login"}
    ).text.splitlines()
    parsed = [json.loads(line) for line in lines]
    assert {p["event_type"] for p in parsed} == {"auth.login"}
    assert [p["actor"] for p in parsed].count("tech") == 4
    newest = parsed[0]["created_at"]
    since = root.get(
        "/api/events/export",
        params={"format": "jsonl", "event_type": "auth.login", "since": newest},
    ).text.splitlines()
    assert 1 <= len(since) < len(parsed)
    [exported, *_] = server.events("audit.exported")
    assert exported.actor == "root"
    # No cell of the export starts a formula.
    assert all(not c.startswith(("=", "+", "-", "@")) for r in rows for c in r.values() if c)


def tenant_of(server: LiveServer, name: str = "default") -> uuid.UUID:
    found = server.database.sql(select(tenants.c.id).where(tenants.c.name == name))[0][0]
    assert isinstance(found, uuid.UUID)
    return found


def record(server: LiveServer, event: Event) -> None:
    """Write an audit row through the server's own AuditLog."""

    async def go() -> None:
        engine = create_engine(server.settings.database_url, schema=server.settings.database_schema)
        try:
            await AuditLog(engine).record(event)
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_chat_content_is_kept_only_when_the_tenant_says_so(server: LiveServer) -> None:
    server.create_user("root", is_admin=True)
    root = server.client(token=server.login("root"))
    tenant = tenant_of(server)
    chat = content_detail("the password is hunter2")
    record(server, Event(AuditType.CHAT_MESSAGE, tenant_id=tenant, detail=chat))
    assert root.put("/api/auth/policy", json={"audit_keep_content": True}).status_code == 200
    record(server, Event(AuditType.CHAT_MESSAGE, tenant_id=tenant, detail=content_detail("kept")))
    first, second = (e.detail for e in server.events("chat.message"))
    assert "content" not in first
    assert first["length"] == len("the password is hunter2")
    assert len(first["sha256"]) == 64
    assert second["content"] == "kept"


@pytest.mark.parametrize("text", ["", "é", "a" * 1000])
def test_content_detail_describes_without_the_text_by_default(text: str) -> None:
    detail = content_detail(text)
    assert detail["length"] == len(text)
    assert len(detail["sha256"]) == 64


def test_a_flood_of_transfers_is_written_in_batches_and_bounded(server: LiveServer) -> None:
    tenant = tenant_of(server)

    async def go() -> None:
        engine = create_engine(server.settings.database_url, schema=server.settings.database_schema)
        audit = AuditLog(engine, max_queued=450)
        try:
            starts = [
                audit.queue(
                    Event(AuditType.CHAT_MESSAGE, tenant_id=tenant, detail=content_detail(str(n)))
                )
                for n in range(500)
            ]
            assert starts.count(True) == 1  # one drain for the whole burst
            await audit.drain()
            assert audit.queue(Event(AuditType.CLIPBOARD_SENT, tenant_id=tenant))
            await audit.drain()
        finally:
            await engine.dispose()

    asyncio.run(go())
    assert len(server.events("chat.message")) == 450
    [dropped] = server.events("limit.audit_dropped")
    assert dropped.detail == {"dropped": 50}
    assert dropped.tenant_id == tenant
    assert len(server.events("clipboard.sent")) == 1

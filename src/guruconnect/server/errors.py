"""Turn what goes wrong inside a request into a clear answer, never a traceback.

- invalid input -> 422 with where and what (never the offending value) + an audit event;
  also a value the database itself refuses (SQLSTATE class 22, e.g. a NUL character in
  text on PostgreSQL), which would otherwise surface as a 500
- the database is unreachable -> 503
- anything else -> 500 "internal server error"; the traceback goes to the log only
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guruconnect.server.db.events import Event
from guruconnect.server.state import AppState

log = structlog.get_logger(__name__)


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | PoolTimeout | ConnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)


def _refused_value(exc: BaseException) -> bool:
    """The database refused a value it was given (SQLSTATE class 22: data exception)."""
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(code, str) and code.startswith("22")


def _clean(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without ``input``/``ctx``: they can echo a password back."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors
    ]


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean(exc.errors())
    state = getattr(request.app.state, "guruconnect", None)
    if isinstance(state, AppState):
        try:
            await state.audit.record(
                Event(
                    "request.invalid",
                    source_address=request.client.host if request.client else None,
                    detail={
                        "method": request.method,
                        "path": request.url.path,
                        "fields": [".".join(map(str, e["loc"])) for e in errors][:10],
                    },
                )
            )
        except Exception:
            log.exception("audit write failed")
    return JSONResponse(status_code=422, content={"detail": errors})


def invalid(field: str, message: str, *, where: str = "body") -> RequestValidationError:
    """A 422 raised by a route's own check, shaped like (and audited like) the ones the
    request models raise, so every 422 matches the API's documented error schema."""
    return RequestValidationError([{"loc": (where, field), "msg": message, "type": "value_error"}])


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)


_REFUSED_VALUE = {
    "loc": ["body"],
    "msg": "a value is not acceptable (for example a NUL character in text)",
    "type": "value_error",
}


async def _audit_refused(scope: Scope) -> None:
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "guruconnect", None)
    if not isinstance(state, AppState):
        return
    client = scope.get("client")
    try:
        await state.audit.record(
            Event(
                "request.invalid",
                source_address=client[0] if client else None,
                detail={"method": scope["method"], "path": scope["path"], "fields": ["body"]},
            )
        )
    except Exception:
        log.exception("audit write failed")


class InternalErrors:
    """Innermost catch-all, inside the security-header middleware, so a 500 or 503 carries
    the same headers as any other response (Starlette's own error page sits outside)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if _refused_value(exc) and not started:
                log.warning(
                    "database refused a value", path=scope["path"], error=type(exc).__name__
                )
                await _audit_refused(scope)
                await JSONResponse(status_code=422, content={"detail": [_REFUSED_VALUE]})(
                    scope, receive, send
                )
                return
            if _unavailable(exc):
                log.error("database unavailable", path=scope["path"], error=repr(exc))
                metrics = getattr(scope["app"].state, "metrics", None) if "app" in scope else None
                if metrics is not None:
                    metrics.database_errors.inc()
                status, detail = 503, "service temporarily unavailable"
            else:
                log.exception("unhandled error", path=scope["path"])
                status, detail = 500, "internal server error"
            if started:
                return  # too late for a clean answer; the connection is closed
            response = JSONResponse(status_code=status, content={"detail": detail})
            if status == 503:
                response.headers["Retry-After"] = "5"
            await response(scope, receive, send)

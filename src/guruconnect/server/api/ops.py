"""Operations: readiness (``/ready``) and Prometheus metrics (``/metrics``).

``/health`` (liveness) answers as long as the process serves requests; ``/ready`` also
needs the database to answer with the newest schema. ``/metrics`` exists only when
``GURUCONNECT_METRICS_TOKEN`` is set, and then only for requests bearing that token.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from guruconnect.server.db.engine import at_head
from guruconnect.server.state import AppState, app_state

log = structlog.get_logger(__name__)
router = APIRouter(tags=["health"])

State = Annotated[AppState, Depends(app_state)]
READY_TIMEOUT_SECONDS = 5.0


class Readiness(BaseModel):
    status: str
    database: str


@router.get(
    "/ready",
    responses={503: {"model": Readiness, "description": "not ready: the database is not"}},
)
async def ready(state: State, response: Response) -> Readiness:
    """Ready for traffic: the database answers and its schema is at the newest revision."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            current = await at_head(state.engine)
        problem = "" if current else "migrations not at head"
    except Exception as exc:
        log.warning("readiness check failed", error=type(exc).__name__)
        problem = "unreachable"
    if problem:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(status="not ready", database=problem)
    return Readiness(status="ready", database="ok")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, state: State) -> Response:
    token = state.settings.metrics_token
    if token is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Not Found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a metrics token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = request.app.state.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})

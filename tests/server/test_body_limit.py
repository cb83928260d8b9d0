"""The request-body limit as an ASGI layer: declared and streamed bodies, per-route limits.
(The end-to-end attack against the real server is in tests/security/test_issue15_http.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from guruconnect.server.body_limit import BodyLimit

pytestmark = pytest.mark.asyncio


async def _size(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


def _client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/{path:path}", _size, methods=["POST"])])
    limited = BodyLimit(app, limit=1024, overrides={"/upload": 4096, "/upload/small": 512})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://t")


async def _stream(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 100):
        yield b"x" * 100


async def test_declared_and_streamed_bodies_over_the_limit_get_413() -> None:
    async with _client() as client:
        assert (await client.post("/api", content=b"x" * 1024)).json() == {"size": 1024}
        declared = await client.post("/api", content=b"x" * 1025)
        assert declared.status_code == 413
        assert declared.json() == {"detail": "request body too large (limit 1024 bytes)"}
        assert declared.headers["connection"] == "close"
        streamed = await client.post("/api", content=_stream(2000))  # no Content-Length
        assert streamed.status_code == 413
        assert (await client.post("/api", content=_stream(1000))).json() == {"size": 1000}


async def test_a_route_may_have_its_own_limit() -> None:
    async with _client() as client:
        assert (await client.post("/upload/file", content=b"x" * 4000)).status_code == 200
        assert (await client.post("/upload/file", content=b"x" * 4097)).status_code == 413
        assert (await client.post("/upload/small", content=b"x" * 513)).status_code == 413
        assert (await client.post("/other", content=b"x" * 2000)).status_code == 413

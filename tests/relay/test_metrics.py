"""/metrics after a real session, its protection, /ready, and HEAD wherever GET answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount

from guruconnect.client import AgentClient, ApiClient
from guruconnect.client.connection import Refused
from guruconnect.protocol import VideoFrame
from tests.conftest import LiveServer
from tests.relay.conftest import Relay
from tests.timing import async_wait_until

TOKEN = "metrics-" + uuid.uuid4().hex


def scrape(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = server.client(token=TOKEN).get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metered(relay_factory: Callable[..., Relay]) -> Relay:
    return relay_factory(metrics_token=TOKEN)


@pytest.mark.asyncio
async def test_metrics_after_a_real_session(metered: Relay) -> None:
    relay = metered
    server = relay.server
    async with ApiClient(relay.url) as api:
        await api.login("root", "correct horse battery staple")
        agent, machine_id, _ = await relay.online_agent(api)
        session_id = await relay.active_session(api, agent, machine_id)
        viewer = await relay.viewer(api, session_id)
        await agent.expect("keyframe_request")
        frames = [
            VideoFrame(session_id=session_id, keyframe=True, data=bytes([n]) * 2048)
            for n in range(3)
        ]
        for frame in frames:
            await agent.send(frame)
            assert await viewer.expect("video_frame") == frame

        during = scrape(server)
        assert value(during, "guruconnect_agents_online") == 1
        assert value(during, "guruconnect_viewers") == 1
        assert value(during, "guruconnect_sessions", state="active") == 1
        assert value(during, "guruconnect_frames_relayed_total") >= 3
        assert value(during, "guruconnect_relayed_bytes_total") >= 3 * 2048
        assert (
            value(
                during,
                "guruconnect_http_request_duration_seconds_count",
                method="POST",
                status="2xx",
            )
            > 0
        )

        # A refused agent and a refused login are counted by plane/reason.
        with pytest.raises(Refused):
            await AgentClient.connect(relay.url, key="cak_" + "x" * 40)
        with pytest.raises(httpx.HTTPStatusError):
            await api.login("root", "not the password at all")
        await viewer.close()
        await agent.close()

        async def offline() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            now = scrape(server)
            return now if value(now, "guruconnect_agents_online") == 0 else None

        after = await async_wait_until(offline, 10, "the agent counted offline")
    refusals = {k[1]: v for k, v in after.items() if k[0] == "guruconnect_refusals_total"}
    assert any(dict(labels)["plane"] == "agent" for labels in refusals), refusals
    assert value(after, "guruconnect_login_failures_total", reason="bad_password") == 1
    assert value(after, "guruconnect_viewers") == 0
    print(
        "\nmetrics after one session:",
        {
            k[0] + str(dict(k[1]) or ""): v
            for k, v in sorted(after.items())
            if "bucket" not in k[0] and "created" not in k[0]
        },
    )


def test_metrics_need_the_token(metered: Relay) -> None:
    server = metered.server
    assert server.client().get("/metrics").status_code == 401
    assert server.client(token=TOKEN + "x").get("/metrics").status_code == 401
    assert server.client(token=TOKEN[:-1]).get("/metrics").status_code == 401
    basic = server.client().get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert server.client(token=TOKEN).get("/metrics").status_code == 200


def test_without_a_token_there_are_no_metrics(relay: Relay) -> None:
    client = relay.server.client(token="anything")
    assert client.get("/metrics").status_code == 404
    assert client.head("/metrics").status_code == 404
    assert "/metrics" not in relay.server.client().get("/openapi.json").text


def test_ready_is_the_database_at_head(relay: Relay) -> None:
    client = relay.server.client()
    assert client.get("/ready").json() == {"status": "ready", "database": "ok"}
    database = relay.server.database
    [(head,)] = database.sql("SELECT version_num FROM alembic_version")
    database.sql("UPDATE alembic_version SET version_num = '0001'")
    try:
        behind = client.get("/ready")
        assert behind.status_code == 503
        assert behind.json()["database"] == "migrations not at head"
        assert client.get("/health").status_code == 200  # liveness is not readiness
    finally:
        database.sql("UPDATE alembic_version SET version_num = :v", v=head)
    assert client.get("/ready").status_code == 200


def _routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every route with its full path (newer FastAPI wraps included routers)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix, route


def _get_paths(server: LiveServer) -> list[str]:
    """A concrete path for every route that answers GET (made-up ids in the parameters)."""
    paths = []
    for prefix, route in _routes(server.app.routes):
        if isinstance(route, Mount):
            paths.append(prefix + route.path + "/js/app.js")
            continue
        if "GET" not in (getattr(route, "methods", None) or ()):
            continue
        path = prefix + route.path
        for name in route.param_convertors:
            path = path.replace("{" + name + "}", str(uuid.uuid4()))
            path = path.replace("{" + name + ":path}", "js/app.js")
        paths.append(path)
    return paths


def test_head_answers_wherever_get_does(metered: Relay) -> None:
    server = metered.server
    client = server.client(token=server.login("root"))
    paths = _get_paths(server)
    assert {"/login", "/health", "/ready", "/metrics", "/"} <= set(paths), paths
    for path in paths:
        get = client.get(path, follow_redirects=False)
        head = client.head(path, follow_redirects=False)
        assert head.status_code == get.status_code != 405, (path, get.status_code, head.status_code)
        assert head.content == b"", path
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
    assert client.head("/api/auth/login").status_code == 405  # POST only: HEAD is no GET

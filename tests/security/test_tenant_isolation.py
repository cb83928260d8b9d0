"""Tenant isolation on every route that takes an id, read from the OpenAPI document.

Tenant B has a user, an agent key, an online machine with a live session, and a support
code. Tenant A's admin and a technician of A holding every permission (and access to A's
own machine) then try every id-taking route with B's ids and a valid body: each answer is
404 (403 for a technician lacking the role), never 2xx or 5xx, B's rows are unchanged, and
no list route of A shows any of B's ids. A new route that takes an id is covered the day
it appears: the test fails if it cannot build a request for it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from guruconnect.client import AgentClient, ApiClient
from guruconnect.server.auth.permissions import Permission
from tests.relay.conftest import Relay

pytestmark = pytest.mark.asyncio

#: A body each route accepts, so the answer is about the id, not a 422 on the body.
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/api/users/{user_id}"): {"display_name": "taken over"},
    ("PUT", "/api/users/{user_id}/permissions"): {"permissions": []},
    ("PUT", "/api/users/{user_id}/client-access"): {"machine_ids": [], "client_names": []},
    ("POST", "/api/users/{user_id}/reset-password"): {"password": "taken over, long enough"},
    ("PATCH", "/api/machines/{machine_id}"): {"name": "taken over"},
    ("POST", "/api/machines/{machine_id}/sessions"): {"scope": "control"},
    ("POST", "/api/sessions/{session_id}/viewer-token"): {"scope": "control"},
}


async def _tenant_b(relay: Relay) -> tuple[dict[str, str], AgentClient, str]:
    """B's ids by path parameter name, B's connected agent, and B's support code."""
    await asyncio.to_thread(relay.server.create_tenant, "tenant-b")
    user_id = await asyncio.to_thread(
        relay.server.create_user, "b-admin", is_admin=True, tenant="tenant-b"
    )
    await asyncio.to_thread(relay.server.create_user, "b-tech", tenant="tenant-b")
    api = await relay.api("b-admin")
    try:
        key = await api.issue_agent_key("b-pc")
        agent = await AgentClient.connect(relay.url, key=key["key"])
        await agent.send_status()
        machine_id = agent.auth.machine_id
        await api.set_consent_policy(machine_id, "unattended")
        session = await api.request_session(machine_id, "control")
        code = await api.create_support_code()
        b_tech = next(
            u for u in (await api._call("GET", "/api/users")) if u["username"] == "b-tech"
        )
        policy = await api._call(
            "PUT", "/api/update-policies", json={"machine_id": machine_id, "paused": True}
        )
    finally:
        await api.aclose()
    ids = {
        "user_id": str(b_tech["id"]),
        "key_id": str(key["id"]),
        "machine_id": machine_id,
        "session_id": str(session["id"]),
        "policy_id": str(policy["id"]),
    }
    del user_id
    return ids, agent, str(code["code"])


async def test_no_route_reaches_another_tenants_ids(relay: Relay, admin_api: ApiClient) -> None:
    b_ids, b_agent, b_code = await _tenant_b(relay)
    # A's technician holds every permission and reaches A's own machine.
    a_key = await admin_api.issue_agent_key("a-pc")
    a_agent = await AgentClient.connect(relay.url, key=a_key["key"])
    await admin_api._call(
        "PUT", f"/api/users/{relay.tech_id}/permissions", json={"permissions": list(Permission)}
    )
    await admin_api._call(
        "PUT",
        f"/api/users/{relay.tech_id}/client-access",
        json={"machine_ids": [a_agent.auth.machine_id], "client_names": []},
    )
    tech_api = await relay.api("tech")
    tokens = {"admin": admin_api.token, "tech": tech_api.token}
    try:
        async with httpx.AsyncClient(base_url=relay.url, timeout=15) as http:
            spec = (await http.get("/openapi.json")).json()
            tried = 0
            for path, methods in spec["paths"].items():
                params = re.findall(r"{(\w+)}", path)
                if not params:
                    continue
                for method in methods:
                    verb = method.upper()
                    url = path.format(**{p: b_ids[p] for p in params})
                    body = BODIES.get((verb, path))
                    for role, token in tokens.items():
                        response = await http.request(
                            verb, url, json=body, headers={"Authorization": f"Bearer {token}"}
                        )
                        allowed = {404} if role == "admin" else {403, 404}
                        assert response.status_code in allowed, (role, verb, url, response.text)
                        for secret in b_ids.values():
                            if secret not in url:
                                assert secret not in response.text
                        tried += 1
            assert tried >= 2 * 10  # every id-taking route, both roles

            # B's rows are as they were.
            b_api = await relay.api("b-admin")
            try:
                users = await b_api._call("GET", "/api/users")
                assert {u["username"]: u["disabled"] for u in users}["b-tech"] is False
                keys = await b_api._call("GET", "/api/agent-keys")
                assert all(k.get("revoked_at") is None for k in keys)
                machine = await b_api._call("GET", f"/api/machines/{b_ids['machine_id']}")
                assert machine["name"] == "b-pc"
                assert machine["online"] is True
                session = await b_api._call("GET", f"/api/sessions/{b_ids['session_id']}")
                assert session["ended_at"] is None
                policies = await b_api._call("GET", "/api/update-policies")
                assert [p["id"] for p in policies] == [b_ids["policy_id"]]
            finally:
                await b_api.aclose()

            # No list of A's shows anything of B's.
            for path in (
                "/api/users",
                "/api/machines",
                "/api/sessions",
                "/api/agent-keys",
                "/api/support-codes",
                "/api/events",
            ):
                for role, token in tokens.items():
                    response = await http.get(path, headers={"Authorization": f"Bearer {token}"})
                    assert response.status_code in (200, 403), (role, path, response.text)
                    for secret in (*b_ids.values(), b_code):
                        assert secret not in response.text, (role, path)
    finally:
        await tech_api.aclose()
        await a_agent.close()
        await b_agent.close()

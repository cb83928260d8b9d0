"""Hunting for hidden setup paths: every route, bent every way, by a stranger and by a
technician. None may create a user, mint a credential, change a role or show another
tenant's data; none may answer 5xx.

Variants of each path: as documented, trailing slash, an extra segment, ``%2f`` for a
slash, a doubled slash, a ``;x`` parameter, upper case; plus paths an installer might
have left behind. Methods: GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE, each with a body
that would create an admin if anything took it.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from guruconnect.client import ApiClient
from guruconnect.server.db.schema import (
    agent_keys,
    auth_tokens,
    support_codes,
    users,
    viewer_tickets,
)
from tests.relay.conftest import Relay
from tests.security.test_tenant_isolation import _tenant_b

pytestmark = [
    pytest.mark.asyncio,
    # Routing does not depend on the database; the tenant checks run on both elsewhere.
    pytest.mark.parametrize("database", ["sqlite"], indirect=True),
]

METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
LEFTOVERS = [
    "/setup",
    "/install",
    "/api/setup",
    "/api/bootstrap",
    "/api/auth/register",
    "/api/auth/signup",
    "/api/admin",
    "/api/admin/users",
    "/api/users/bootstrap",
    "/api/users/admin",
    "/docs",
    "/redoc",
    "/api/debug",
]
EVIL_BODY = {
    "username": "intruder",
    "password": "intruder password 123",
    "role": "admin",
    "is_admin": True,
    "permissions": ["agent_keys.manage", "audit.read"],
    "label": "intruder",
    "scope": "control",
}
#: What a technician may do by design (and logging out would end the run's own token).
TECH_OWN = {"/api/support-codes", "/api/auth/logout"}
CREDENTIAL = re.compile(r"eyJ[\w-]+\.[\w-]+|cak_[\w-]{20,}|cvt_[\w-]{20,}|access_token")


def variants(path: str) -> list[str]:
    out = {path, path + "/", path + "/x", path + ";x", path.upper(), "/" + path}
    if path.count("/") > 1:
        head, _, tail = path.rpartition("/")
        out |= {f"{head}%2f{tail}", f"{head}%2F{tail}", f"{head}//{tail}"}
    return sorted(out)


def _counts(relay: Relay) -> dict[str, int]:
    return {
        table.name: relay.server.database.sql(select(func.count()).select_from(table))[0][0]
        for table in (users, agent_keys, support_codes, viewer_tickets, auth_tokens)
    }


async def test_no_variant_of_any_route_opens_a_door(relay: Relay, admin_api: ApiClient) -> None:
    b_ids, b_agent, b_code = await _tenant_b(relay)
    tech = await relay.api("tech")
    try:
        before = await asyncio.to_thread(_counts, relay)
        async with httpx.AsyncClient(base_url=relay.url, timeout=15) as http:
            spec = (await http.get("/openapi.json")).json()
            paths = [
                re.sub(r"{(\w+)}", lambda m: b_ids.get(m.group(1), str(uuid.uuid4())), p)
                for p in spec["paths"]
            ]
            sent = 0
            for path in sorted({*paths, *LEFTOVERS}):
                for url in variants(path):
                    for method in METHODS:
                        for who, headers in (
                            ("stranger", {}),
                            ("tech", {"Authorization": f"Bearer {tech.token}"}),
                        ):
                            if who == "tech" and method == "POST" and url in TECH_OWN:
                                continue  # a technician's own business, not a door
                            if who == "stranger" and url == "/api/auth/login":
                                continue  # the front door; its wrong credentials are tested
                            response = await http.request(
                                method, url, json=EVIL_BODY, headers=headers
                            )
                            sent += 1
                            where = (who, method, url, response.status_code)
                            assert response.status_code < 500, (*where, response.text[:200])
                            assert not CREDENTIAL.search(response.text), where
                            for secret in (*b_ids.values(), b_code):
                                if secret not in url:
                                    assert secret not in response.text, where
            assert sent > 1000
        after = await asyncio.to_thread(_counts, relay)
        # The technician's own token and a login or two are the only rows that may appear.
        for table in ("users", "agent_keys", "support_codes", "viewer_tickets"):
            assert after[table] == before[table], (table, before, after)
        me = (await tech._call("GET", "/api/auth/me"))["role"]
        assert me == "technician"
    finally:
        await tech.aclose()
        await b_agent.close()

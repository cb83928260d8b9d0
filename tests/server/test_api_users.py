"""The /api/users admin API over real HTTP, on SQLite and PostgreSQL.

Every rule here is attacked from the side a wrong implementation would leave open:
another tenant's ids, a technician's token, a revoked token, a password echoed back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from guruconnect.server.auth.permissions import Role
from guruconnect.server.db import tenants, users
from guruconnect.server.db.engine import create_engine, migrate
from guruconnect.server.db.schema import (
    auth_tokens,
    machines,
    session_events,
    user_client_access,
    user_permissions,
)
from guruconnect.server.db.schema import (
    tenants as tenants_table,
)
from guruconnect.server.db.schema import (
    users as users_table,
)
from guruconnect.server.db.users import ClientAccess
from tests.conftest import PASSWORD, Database, LiveServer

NEW_PASSWORD = "a different passphrase entirely"
TECHNICIAN_DEFAULTS = ["sessions.control", "sessions.view", "support_codes.create"]
BAD_CREDENTIALS = "invalid username or password"


# -- helpers ---------------------------------------------------------------------------------


def machine_values(
    tenant_id: uuid.UUID,
    name: str,
    client_name: str | None = None,
    *,
    deleted: bool = False,
) -> dict[str, Any]:
    """The one definition of a test machine row: the values of its INSERT, with a new id."""
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "name": name,
        "client_name": client_name,
        "consent_policy": "ask",
        "online": False,
        "created_at": now,
        "deleted_at": now if deleted else None,
    }


def add_machine(
    server: LiveServer,
    tenant_id: uuid.UUID,
    name: str,
    *,
    client_name: str | None = None,
    deleted: bool = False,
) -> uuid.UUID:
    values = machine_values(tenant_id, name, client_name, deleted=deleted)
    server.database.sql(insert(machines).values(values))
    machine_id: uuid.UUID = values["id"]
    return machine_id


def tenant_id_of(server: LiveServer, name: str) -> uuid.UUID:
    rows = server.database.sql(select(tenants_table.c.id).where(tenants_table.c.name == name))
    assert len(rows) == 1
    tenant_id: uuid.UUID = rows[0].id
    return tenant_id


def user_row(server: LiveServer, user_id: uuid.UUID) -> Any:
    columns = users_table.c
    rows = server.database.sql(
        select(
            columns.username,
            columns.role,
            columns.disabled,
            columns.deleted_at,
            columns.password_hash,
            columns.display_name,
            columns.tenant_id,
        ).where(columns.id == user_id)
    )
    assert len(rows) == 1
    return rows[0]


def admin_client(
    server: LiveServer, username: str = "root", tenant: str = "default"
) -> httpx.Client:
    server.create_user(username, is_admin=True, tenant=tenant)
    return server.client(token=server.login(username))


def create(client: httpx.Client, username: str, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/api/users", json={"username": username, "password": PASSWORD, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def me(server: LiveServer, token: str) -> httpx.Response:
    return server.client(token=token).get("/api/auth/me")


def login_response(server: LiveServer, username: str, password: str) -> httpx.Response:
    return server.client().post(
        "/api/auth/login", json={"username": username, "password": password}
    )


def usernames(client: httpx.Client) -> list[str]:
    response = client.get("/api/users")
    assert response.status_code == 200, response.text
    return [user["username"] for user in response.json()]


# -- CRUD ------------------------------------------------------------------------------------


def test_admin_creates_lists_gets_patches_and_deletes_a_user(server: LiveServer) -> None:
    root = admin_client(server)
    default_tenant = tenant_id_of(server, "default")

    created = create(
        root, "alice", display_name="Alice A", permissions=["audit.read", "audit.read"]
    )
    user_id = uuid.UUID(created["id"])
    assert created["username"] == "alice"
    assert created["display_name"] == "Alice A"
    assert created["role"] == "technician"
    assert created["disabled"] is False
    assert created["last_login_at"] is None
    assert created["permissions"] == ["audit.read"]
    assert created["client_access"] == {"machine_ids": [], "client_names": []}
    assert "password" not in created
    assert "password_hash" not in created
    assert PASSWORD not in json.dumps(created)

    row = user_row(server, user_id)
    assert row.username == "alice"
    assert row.role == "technician"
    assert row.tenant_id == default_tenant
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash

    # The new account is real: it logs in, in the admin's tenant, with its grants.
    alice_token = server.login("alice")
    who = me(server, alice_token).json()
    assert who["id"] == str(user_id)
    assert who["tenant_id"] == str(default_tenant)
    assert who["role"] == "technician"
    # Explicit grants replace the role's defaults: exactly what the admin asked for.
    assert who["permissions"] == ["audit.read"]

    assert usernames(root) == ["alice", "root"]
    fetched = root.get(f"/api/users/{user_id}")
    assert fetched.status_code == 200
    assert fetched.json()["username"] == "alice"
    assert fetched.json()["last_login_at"] is not None  # the login above was recorded

    patched = root.patch(f"/api/users/{user_id}", json={"display_name": "Alice B", "role": "admin"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["display_name"] == "Alice B"
    assert patched.json()["role"] == "admin"
    assert root.get(f"/api/users/{user_id}").json()["role"] == "admin"
    assert user_row(server, user_id).role == "admin"
    # A role change takes effect on the live token at once (no password change: no revoke).
    assert me(server, alice_token).json()["role"] == "admin"
    assert server.client(token=alice_token).get("/api/users").status_code == 200

    deleted = root.delete(f"/api/users/{user_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert root.get(f"/api/users/{user_id}").status_code == 404
    assert usernames(root) == ["root"]
    assert root.delete(f"/api/users/{user_id}").status_code == 404
    # Soft delete: the row stays for history, but it is dead.
    row = user_row(server, user_id)
    assert row.deleted_at is not None
    assert row.disabled is True


def test_user_changes_are_audited_with_actor_and_source(server: LiveServer) -> None:
    root = admin_client(server)
    default_tenant = tenant_id_of(server, "default")
    user_id = uuid.UUID(create(root, "alice", role="admin")["id"])
    assert (
        root.patch(
            f"/api/users/{user_id}", json={"display_name": "A", "password": NEW_PASSWORD}
        ).status_code
        == 200
    )
    assert root.delete(f"/api/users/{user_id}").status_code == 204

    for event_type in ("user.created", "user.updated", "user.deleted"):
        rows = [r for r in server.events(event_type) if r.user_id == user_id]
        assert len(rows) == 1, event_type
        (event,) = rows
        assert event.actor == "root"
        assert event.source_address == "127.0.0.1"
        assert event.tenant_id == default_tenant
    created = server.events("user.created")
    assert next(r for r in created if r.actor == "root").detail["role"] == "admin"
    (updated,) = server.events("user.updated")
    assert updated.detail["fields"] == ["display_name", "password"]
    # No audit row ever carries a password, old or new.
    everything = json.dumps([str(tuple(r)) for r in server.database.sql(select(session_events))])
    assert PASSWORD not in everything
    assert NEW_PASSWORD not in everything


# -- who may call ----------------------------------------------------------------------------


def test_technician_is_refused_every_users_route(server: LiveServer) -> None:
    admin_client(server)
    tech_id = server.create_user("tech")
    victim_id = server.create_user("victim")
    victim_token = server.login("victim")
    tech = server.client(token=server.login("tech"))

    attempts: list[tuple[str, str, Any]] = [
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"username": "mallory", "password": PASSWORD, "role": "admin"}),
        ("GET", f"/api/users/{victim_id}", None),
        ("PATCH", f"/api/users/{victim_id}", {"disabled": True}),
        ("PATCH", f"/api/users/{tech_id}", {"role": "admin"}),  # self-promotion
        ("DELETE", f"/api/users/{victim_id}", None),
        ("PUT", f"/api/users/{victim_id}/permissions", {"permissions": ["audit.read"]}),
        ("PUT", f"/api/users/{tech_id}/permissions", {"permissions": ["agent_keys.manage"]}),
        ("PUT", f"/api/users/{victim_id}/client-access", {"client_names": ["Contoso"]}),
        ("POST", f"/api/auth/revoke-user/{victim_id}", None),
    ]
    for method, path, body in attempts:
        response = tech.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json() == {"detail": "admin role required"}

    # Nothing of it happened.
    assert me(server, victim_token).status_code == 200
    tech_me = me(server, server.login("tech")).json()
    assert tech_me["role"] == "technician"
    assert tech_me["permissions"] == TECHNICIAN_DEFAULTS
    assert (
        server.database.sql(select(users_table.c.id).where(users_table.c.username == "mallory"))
        == []
    )
    assert server.database.sql(select(user_client_access.c.id)) == []


def test_no_or_bad_token_is_401_on_every_users_route(server: LiveServer) -> None:
    target = server.create_user("alice", is_admin=True)
    routes = [
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"username": "mallory", "password": PASSWORD}),
        ("GET", f"/api/users/{target}", None),
        ("PATCH", f"/api/users/{target}", {"disabled": True}),
        ("DELETE", f"/api/users/{target}", None),
        ("PUT", f"/api/users/{target}/permissions", {"permissions": []}),
        ("PUT", f"/api/users/{target}/client-access", {}),
        ("POST", f"/api/auth/revoke-user/{target}", None),
    ]
    for client in (server.client(), server.client(token="not.a.jwt")):
        for method, path, body in routes:
            response = client.request(method, path, json=body)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    assert (
        server.database.sql(select(users_table.c.id).where(users_table.c.username == "mallory"))
        == []
    )
    assert user_row(server, target).disabled is False


# -- tenants ---------------------------------------------------------------------------------


def test_another_tenants_users_are_invisible_and_untouchable(server: LiveServer) -> None:
    server.create_tenant("acme")
    root = admin_client(server)
    dave_id = server.create_user("dave")
    acme = admin_client(server, "acme-admin", tenant="acme")
    acme_admin_id = uuid.UUID(me(server, server.login("acme-admin")).json()["id"])
    acme_tech_id = server.create_user("acme-tech", tenant="acme")
    acme_tech_token = server.login("acme-tech")

    assert usernames(root) == ["dave", "root"]
    assert usernames(acme) == ["acme-admin", "acme-tech"]

    def probes(target: uuid.UUID) -> list[tuple[str, str, Any]]:
        return [
            ("GET", f"/api/users/{target}", None),
            ("PATCH", f"/api/users/{target}", {"disabled": True, "display_name": "pwned"}),
            ("PATCH", f"/api/users/{target}", {"password": NEW_PASSWORD}),
            ("PUT", f"/api/users/{target}/permissions", {"permissions": ["audit.read"]}),
            ("PUT", f"/api/users/{target}/client-access", {"client_names": ["Contoso"]}),
            ("POST", f"/api/auth/revoke-user/{target}", None),
            ("DELETE", f"/api/users/{target}", None),
        ]

    nowhere = uuid.uuid4()
    for method, path, body in probes(nowhere):
        response = root.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == {"detail": "user not found"}
    # Another tenant's user answers exactly like one that does not exist.
    for target in (acme_tech_id, acme_admin_id):
        for method, path, body in probes(target):
            response = root.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json() == {"detail": "user not found"}
    for method, path, body in probes(dave_id):
        response = acme.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)

    # And nothing was done to them.
    assert me(server, acme_tech_token).status_code == 200
    assert login_response(server, "acme-tech", PASSWORD).status_code == 200
    for victim in (acme_tech_id, acme_admin_id, dave_id):
        row = user_row(server, victim)
        assert row.deleted_at is None
        assert row.disabled is False
        assert row.display_name is None
    # Only the starting grants the CLI gave the technicians; nothing the probes tried.
    granted = server.database.sql(select(user_permissions.c.user_id, user_permissions.c.permission))
    assert {p for _, p in granted} <= set(TECHNICIAN_DEFAULTS)
    assert server.database.sql(select(user_client_access.c.id)) == []
    assert (
        server.database.sql(select(auth_tokens.c.id).where(auth_tokens.c.revoked_at.is_not(None)))
        == []
    )
    assert usernames(root) == ["dave", "root"]
    assert usernames(acme) == ["acme-admin", "acme-tech"]


def test_revoke_user_revokes_every_token_of_an_own_tenant_user(server: LiveServer) -> None:
    root = admin_client(server)
    alice_id = server.create_user("alice")
    tokens = [server.login("alice"), server.login("alice")]
    response = root.post(f"/api/auth/revoke-user/{alice_id}")
    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    for token in tokens:
        assert me(server, token).status_code == 401
    assert me(server, server.login("alice")).status_code == 200  # the account itself lives


# -- usernames -------------------------------------------------------------------------------


def test_username_conflicts_are_409_within_and_across_tenants(server: LiveServer) -> None:
    server.create_tenant("acme")
    root = admin_client(server)
    server.create_user("bob", tenant="acme")
    create(root, "alice")
    # Login looks users up by name alone, so a name is unique across every tenant.
    for name in ("alice", "  alice  ", "bob"):
        response = root.post("/api/users", json={"username": name, "password": NEW_PASSWORD})
        assert response.status_code == 409, (name, response.text)
        assert response.json() == {"detail": "username is taken"}
    rows = server.database.sql(
        select(users_table.c.id).where(users_table.c.username.in_(["alice", "bob"]))
    )
    assert len(rows) == 2
    assert login_response(server, "alice", NEW_PASSWORD).status_code == 401
    assert login_response(server, "bob", NEW_PASSWORD).status_code == 401


def test_usernames_are_case_insensitive(server: LiveServer) -> None:
    """'Alice' is 'alice': a taken name in another case is a conflict, not a new account,
    and a new name in mixed case is stored lower-cased (as the CLI does)."""
    root = admin_client(server)
    create(root, "alice")
    for name in ("Alice", "ALICE", " aLiCe "):
        response = root.post("/api/users", json={"username": name, "password": NEW_PASSWORD})
        assert response.status_code == 409, (name, response.text)
        assert response.json() == {"detail": "username is taken"}
    rows = server.database.sql(
        select(users_table.c.id).where(func.lower(users_table.c.username) == "alice")
    )
    assert len(rows) == 1
    created = create(root, "Carol")
    assert created["username"] == "carol"
    assert login_response(server, "CAROL", PASSWORD).status_code == 200


def test_a_deleted_users_name_can_be_reused(server: LiveServer) -> None:
    root = admin_client(server)
    old_id = create(root, "alice")["id"]
    old_token = server.login("alice")
    assert root.delete(f"/api/users/{old_id}").status_code == 204

    response = root.post("/api/users", json={"username": "alice", "password": NEW_PASSWORD})
    assert response.status_code == 201, response.text
    new_id = response.json()["id"]
    assert new_id != old_id
    assert [u["id"] for u in root.get("/api/users").json() if u["username"] == "alice"] == [new_id]
    # The new alice is a new account: the old one's token and password are dead.
    assert me(server, old_token).status_code == 401
    assert login_response(server, "alice", PASSWORD).status_code == 401
    assert me(server, server.login("alice", NEW_PASSWORD)).json()["id"] == new_id


# -- validation ------------------------------------------------------------------------------


def test_invalid_input_is_422_without_echoing_it_and_is_audited(server: LiveServer) -> None:
    root = admin_client(server)
    short = "elevenchars"  # 11 characters
    assert len(short) == 11

    response = root.post("/api/users", json={"username": "alice", "password": short})
    assert response.status_code == 422
    assert short not in response.text
    assert ["body", "password"] in [e["loc"] for e in response.json()["detail"]]
    assert all(set(e) == {"loc", "msg", "type"} for e in response.json()["detail"])

    for bad_name in ("bad name", "", "-leading", "x" * 65, "ünïcode", "a/b", "a;drop"):
        response = root.post("/api/users", json={"username": bad_name, "password": PASSWORD})
        assert response.status_code == 422, bad_name
        assert ["body", "username"] in [e["loc"] for e in response.json()["detail"]]
    response = root.post(
        "/api/users", json={"username": "alice", "password": PASSWORD, "role": "superuser"}
    )
    assert response.status_code == 422
    response = root.post(
        "/api/users",
        json={"username": "alice", "password": PASSWORD, "permissions": ["users.manage"]},
    )
    assert response.status_code == 422
    assert usernames(root) == ["root"]

    # The same rules hold on PATCH, and a null role or disabled flag is refused.
    root_id = me(server, server.login("root")).json()["id"]
    for body in ({"password": short}, {"role": "owner"}, {"role": None}, {"disabled": None}):
        response = root.patch(f"/api/users/{root_id}", json=body)
        assert response.status_code == 422, body
        assert short not in response.text
    assert login_response(server, "root", PASSWORD).status_code == 200

    # Exactly 12 characters is enough; names at the edge of the rule are fine.
    create(root, "twelve", password="twelve chars")
    for edge in ("x" * 64, "a.b-c_d@e", "0"):
        assert create(root, edge)["username"] == edge
    assert login_response(server, "x" * 64, PASSWORD).status_code == 200

    invalid = server.events("request.invalid")
    assert invalid, "no request.invalid audit row"
    first = invalid[0]
    assert first.source_address == "127.0.0.1"
    detail = first.detail
    assert detail["method"] == "POST"
    assert detail["path"] == "/api/users"
    assert "body.password" in detail["fields"]
    assert all(short not in str(tuple(row)) for row in invalid)


# -- last admin ------------------------------------------------------------------------------


def test_the_last_active_admin_of_a_tenant_cannot_be_removed(server: LiveServer) -> None:
    server.create_tenant("acme")
    root = admin_client(server)
    root_id = me(server, server.login("root")).json()["id"]
    acme = admin_client(server, "acme-admin", tenant="acme")
    acme_admin_id = me(server, server.login("acme-admin")).json()["id"]
    last_admin = {"detail": "a tenant must keep at least one active admin"}

    def refused(client: httpx.Client, target: str) -> None:
        for method, body in (
            ("PATCH", {"role": "technician"}),
            ("PATCH", {"disabled": True}),
            ("DELETE", None),
        ):
            response = client.request(method, f"/api/users/{target}", json=body)
            assert response.status_code == 409, (method, body, response.text)
            assert response.json() == last_admin
            row = user_row(server, uuid.UUID(target))
            assert (row.role, row.disabled, row.deleted_at) == ("admin", False, None)

    refused(root, root_id)

    second_id = create(root, "second", role="admin")["id"]
    second = server.client(token=server.login("second"))
    # Two active admins in default do not help acme's only admin: the count is per tenant.
    refused(acme, acme_admin_id)

    # A disabled admin does not count as a usable one.
    assert root.patch(f"/api/users/{second_id}", json={"disabled": True}).status_code == 200
    refused(root, root_id)
    assert root.patch(f"/api/users/{second_id}", json={"disabled": False}).status_code == 200

    # With a second active admin, the first may step down.
    second = server.client(token=server.login("second"))
    response = root.patch(f"/api/users/{root_id}", json={"role": "technician"})
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "technician"
    assert root.get("/api/users").status_code == 403  # the demotion is effective at once
    # ... and now "second" is the last one.
    refused(second, second_id)
    assert second.delete(f"/api/users/{root_id}").status_code == 204


# -- tokens follow the account ---------------------------------------------------------------


def test_disabling_a_user_revokes_their_tokens_and_blocks_login(server: LiveServer) -> None:
    root = admin_client(server)
    alice_id = server.create_user("alice")
    token = server.login("alice")
    assert me(server, token).status_code == 200

    response = root.patch(f"/api/users/{alice_id}", json={"disabled": True})
    assert response.status_code == 200
    assert response.json()["disabled"] is True

    assert me(server, token).status_code == 401
    refused = login_response(server, "alice", PASSWORD)
    wrong = login_response(server, "alice", "not the password at all")
    assert refused.status_code == wrong.status_code == 401
    assert refused.json() == wrong.json() == {"detail": BAD_CREDENTIALS}
    reasons = server.database.sql(
        select(auth_tokens.c.revoked_reason).where(auth_tokens.c.user_id == alice_id)
    )
    assert [r[0] for r in reasons] == ["user_changed"]

    # Re-enabled: a new login works, the revoked token stays revoked.
    assert root.patch(f"/api/users/{alice_id}", json={"disabled": False}).status_code == 200
    assert me(server, server.login("alice")).status_code == 200
    assert me(server, token).status_code == 401


def test_changing_a_password_revokes_tokens_other_edits_do_not(server: LiveServer) -> None:
    root = admin_client(server)
    alice_id = server.create_user("alice")
    token = server.login("alice")

    assert root.patch(f"/api/users/{alice_id}", json={"display_name": "Al"}).status_code == 200
    assert me(server, token).json()["display_name"] == "Al"  # still alive

    response = root.patch(f"/api/users/{alice_id}", json={"password": NEW_PASSWORD})
    assert response.status_code == 200
    assert NEW_PASSWORD not in response.text
    assert me(server, token).status_code == 401
    assert login_response(server, "alice", PASSWORD).status_code == 401
    assert me(server, server.login("alice", NEW_PASSWORD)).status_code == 200


def test_deleting_a_user_revokes_their_token(server: LiveServer) -> None:
    root = admin_client(server)
    alice_id = server.create_user("alice")
    token = server.login("alice")
    assert root.delete(f"/api/users/{alice_id}").status_code == 204
    assert me(server, token).status_code == 401
    refused = login_response(server, "alice", PASSWORD)
    assert refused.status_code == 401
    assert refused.json() == {"detail": BAD_CREDENTIALS}
    reasons = server.database.sql(
        select(auth_tokens.c.revoked_reason).where(auth_tokens.c.user_id == alice_id)
    )
    assert [r[0] for r in reasons] == ["user_deleted"]


# -- permissions and client access -----------------------------------------------------------


def test_permission_grants_are_set_shown_and_effective(server: LiveServer) -> None:
    root = admin_client(server)
    alice_id = server.create_user("alice")
    path = f"/api/users/{alice_id}/permissions"

    response = root.put(path, json={"permissions": ["audit.read", "agent_keys.manage"]})
    assert response.status_code == 200, response.text
    assert response.json()["permissions"] == ["agent_keys.manage", "audit.read"]
    assert root.get(f"/api/users/{alice_id}").json()["permissions"] == [
        "agent_keys.manage",
        "audit.read",
    ]
    token = server.login("alice")
    # Grants are exactly the list: the technician's defaults were replaced.
    assert me(server, token).json()["permissions"] == ["agent_keys.manage", "audit.read"]

    response = root.put(path, json={"permissions": ["audit.read", "users.manage"]})
    assert response.status_code == 422
    response = root.put(path, json={"permissions": ["admin"]})
    assert response.status_code == 422
    # A refused request leaves the grants as they were.
    assert root.get(f"/api/users/{alice_id}").json()["permissions"] == [
        "agent_keys.manage",
        "audit.read",
    ]

    # PUT replaces: an empty list takes every grant away, live tokens included.
    assert root.put(path, json={"permissions": []}).json()["permissions"] == []
    assert me(server, token).json()["permissions"] == []
    assert server.client(token=token).get("/api/machines").status_code == 403
    rows = server.database.sql(
        select(user_permissions.c.id).where(user_permissions.c.user_id == alice_id)
    )
    assert rows == []
    (event, *_) = server.events("user.permissions_set")
    assert event.actor == "root"


def test_client_access_accepts_only_live_machines_of_the_tenant(server: LiveServer) -> None:
    acme_id = server.create_tenant("acme")
    default_id = tenant_id_of(server, "default")
    root = admin_client(server)
    alice_id = server.create_user("alice")
    path = f"/api/users/{alice_id}/client-access"

    mine = add_machine(server, default_id, "desk-1", client_name="Contoso")
    foreign = add_machine(server, acme_id, "acme-desk", client_name="Contoso")
    gone = add_machine(server, default_id, "old-desk", deleted=True)
    missing = uuid.uuid4()

    for bad in (missing, foreign, gone):
        response = root.put(path, json={"machine_ids": [str(mine), str(bad)]})
        assert response.status_code == 422, (bad, response.text)
        message = response.json()["detail"][0]["msg"]
        assert str(bad) in message
        assert str(mine) not in message
    assert root.put(path, json={"machine_ids": ["not-a-uuid"]}).status_code == 422
    assert server.database.sql(select(user_client_access.c.id)) == []

    grant = {"machine_ids": [str(mine)], "client_names": ["Fabrikam", "Contoso"]}
    response = root.put(path, json=grant)
    assert response.status_code == 200, response.text
    expected = {"machine_ids": [str(mine)], "client_names": ["Contoso", "Fabrikam"]}
    assert response.json()["client_access"] == expected
    assert root.get(f"/api/users/{alice_id}").json()["client_access"] == expected
    access = user_client_access.c
    rows = server.database.sql(
        select(access.machine_id, access.client_name, access.tenant_id).where(
            access.user_id == alice_id
        )
    )
    assert len(rows) == 3
    assert {r.tenant_id for r in rows} == {default_id}
    assert {r.machine_id for r in rows if r.machine_id is not None} == {mine}

    # A refused change keeps the old grant; an empty body clears it.
    assert root.put(path, json={"machine_ids": [str(foreign)]}).status_code == 422
    assert root.get(f"/api/users/{alice_id}").json()["client_access"] == expected
    cleared = root.put(path, json={})
    assert cleared.json()["client_access"] == {"machine_ids": [], "client_names": []}
    (event, *_) = server.events("user.client_access_set")
    assert event.actor == "root"
    assert event.source_address == "127.0.0.1"


# -- the reach rule itself -------------------------------------------------------------------


async def _add_machine(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    name: str,
    client_name: str | None = None,
    *,
    deleted: bool = False,
) -> uuid.UUID:
    values = machine_values(tenant_id, name, client_name, deleted=deleted)
    await conn.execute(insert(machines).values(values))
    machine_id: uuid.UUID = values["id"]
    return machine_id


def test_can_reach_machine_is_tenant_first_then_role_then_grants(database: Database) -> None:
    async def scenario() -> dict[str, dict[str, bool]]:
        engine = create_engine(database.url, schema=database.schema)
        try:
            await migrate(engine, schema=database.schema)
            async with engine.begin() as conn:
                home = await tenants.by_name(conn, tenants.DEFAULT_TENANT)
                assert home is not None
                acme = await tenants.create(conn, "acme")

                async def user(name: str, tenant: uuid.UUID, role: Role) -> users.User:
                    return await users.create(
                        conn, tenant_id=tenant, username=name, password_hash="x", role=role
                    )

                people = {
                    "admin": await user("admin", home.id, Role.ADMIN),
                    "tech": await user("tech", home.id, Role.TECHNICIAN),
                    "bare": await user("bare", home.id, Role.TECHNICIAN),
                    "acme-admin": await user("acme-admin", acme.id, Role.ADMIN),
                }
                boxes = {
                    "by-id": await _add_machine(conn, home.id, "by-id"),
                    "by-client": await _add_machine(conn, home.id, "by-client", "Contoso"),
                    "other-client": await _add_machine(conn, home.id, "other", "Fabrikam"),
                    "no-client": await _add_machine(conn, home.id, "plain"),
                    "deleted": await _add_machine(conn, home.id, "gone", "Contoso", deleted=True),
                    "deleted-by-id": await _add_machine(conn, home.id, "gone2", deleted=True),
                    "acme-contoso": await _add_machine(conn, acme.id, "acme", "Contoso"),
                    "acme-by-id": await _add_machine(conn, acme.id, "acme2"),
                    "nonexistent": uuid.uuid4(),
                }
                await users.set_client_access(
                    conn,
                    people["tech"],
                    ClientAccess(
                        frozenset({boxes["by-id"], boxes["deleted-by-id"]}),
                        frozenset({"Contoso"}),
                    ),
                )
                # A grant row naming another tenant's machine (the API refuses to write
                # one, but the rule must not rely on that).
                await conn.execute(
                    insert(user_client_access).values(
                        id=uuid.uuid4(),
                        tenant_id=home.id,
                        user_id=people["tech"].id,
                        machine_id=boxes["acme-by-id"],
                        client_name=None,
                        created_at=datetime.now(UTC),
                    )
                )
            async with engine.connect() as conn:
                return {
                    who: {
                        box: await users.can_reach_machine(conn, person, machine_id)
                        for box, machine_id in boxes.items()
                    }
                    for who, person in people.items()
                }
        finally:
            await engine.dispose()

    reach = asyncio.run(scenario())

    def reachable(who: str) -> set[str]:
        return {box for box, ok in reach[who].items() if ok}

    assert reachable("admin") == {"by-id", "by-client", "other-client", "no-client"}
    assert reachable("tech") == {"by-id", "by-client"}
    assert reachable("bare") == set()
    assert reachable("acme-admin") == {"acme-contoso", "acme-by-id"}


# -- admin reset ------------------------------------------------------------------------------


def test_admin_reset_forces_a_change_at_the_next_login(server: LiveServer) -> None:
    server.create_user("root", is_admin=True)
    alice = server.create_user("alice")
    before = server.login("alice")
    root = server.client(token=server.login("root"))
    temporary = "temporary password 1"
    reset = root.post(f"/api/users/{alice}/reset-password", json={"password": temporary})
    assert reset.status_code == 204, reset.text
    assert server.client(token=before).get("/api/auth/me").status_code == 401
    [event] = server.events("user.password_reset")
    assert event.detail["revoked"] == 1
    assert event.actor == "root"

    login = server.client().post(
        "/api/auth/login", json={"username": "alice", "password": temporary}
    )
    assert login.status_code == 200
    assert login.json()["must_change_password"] is True
    limited = server.client(token=login.json()["access_token"])
    assert limited.get("/api/auth/me").json()["must_change_password"] is True
    for method, path in (
        ("GET", "/api/machines"),
        ("GET", "/api/sessions"),
        ("POST", "/api/auth/mfa/setup"),
    ):
        refused = limited.request(method, path, json={"password": temporary})
        assert refused.status_code == 403, path
        assert "password change required" in refused.json()["detail"]
    changed = limited.post(
        "/api/auth/password",
        json={"current_password": temporary, "new_password": "alice's own password"},
    )
    assert changed.status_code == 200, changed.text
    assert limited.get("/api/machines").status_code == 200
    assert limited.get("/api/auth/me").json()["must_change_password"] is False


def test_only_an_admin_of_the_tenant_resets(server: LiveServer) -> None:
    server.create_user("root", is_admin=True)
    alice = server.create_user("alice")
    server.create_tenant("other")
    server.create_user("boss", is_admin=True, tenant="other")
    body = {"password": "temporary password 1"}
    tech = server.client(token=server.login("alice"))
    assert tech.post(f"/api/users/{alice}/reset-password", json=body).status_code == 403
    boss = server.client(token=server.login("boss"))
    assert boss.post(f"/api/users/{alice}/reset-password", json=body).status_code == 404
    assert boss.post(f"/api/users/{alice}/reset-mfa").status_code == 404
    server.login("alice")  # unchanged

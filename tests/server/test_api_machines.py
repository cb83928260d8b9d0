"""Managing machines over real HTTP, on SQLite and PostgreSQL: clients and sites, rename,
notes, tags, consent, re-key, forget, history; and every rule attacked from the side a
wrong implementation would leave open (no client access, view-only, another tenant, bad
input)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from guruconnect.server.db.schema import agent_keys, machines, session_events, sessions
from tests.conftest import LiveServer
from tests.server.test_api_users import add_machine, admin_client, create, tenant_id_of


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert message in response.text, response.text


def add_session(
    server: LiveServer,
    tenant_id: uuid.UUID,
    machine_id: uuid.UUID,
    *,
    state: str = "ended",
    technician_id: uuid.UUID | None = None,
    kind: str = "attended",
) -> uuid.UUID:
    session_id = uuid.uuid4()
    now = datetime.now(UTC)
    server.database.sql(
        insert(sessions).values(
            id=session_id,
            tenant_id=tenant_id,
            machine_id=machine_id,
            technician_id=technician_id,
            kind=kind,
            scope="control",
            state=state,
            created_at=now,
            ended_at=now if state == "ended" else None,
            end_reason="ended_by_technician" if state == "ended" else None,
            node_id="default",
        )
    )
    return session_id


def count(server: LiveServer, table: Any, *where: Any) -> int:
    rows = server.database.sql(select(func.count()).select_from(table).where(*where))
    return int(rows[0][0])


def test_an_admin_manages_a_machine_from_client_to_forgetting_it(server: LiveServer) -> None:
    root = admin_client(server)
    tenant = tenant_id_of(server, "default")
    pc = add_machine(server, tenant, "pc-1")
    other = add_machine(server, tenant, "pc-2")
    root_id = uuid.UUID(ok(root.get("/api/auth/me"))["id"])

    # Clients and sites: created by name, once.
    acme = ok(root.post("/api/clients", json={"name": "  Acme  "}), 201)
    assert acme["name"] == "Acme"
    refused(root.post("/api/clients", json={"name": "Acme"}), 409, "exists already")
    hq = ok(root.post("/api/sites", json={"client_id": acme["id"], "name": "HQ"}), 201)
    refused(root.post("/api/sites", json={"client_id": acme["id"], "name": "HQ"}), 409, "already")
    globex = ok(root.post("/api/clients", json={"name": "Globex"}), 201)
    ok(root.post("/api/sites", json={"client_id": globex["id"], "name": "Lab"}), 201)
    listed = ok(root.get("/api/clients"))
    assert [(c["name"], [s["name"] for s in c["sites"]]) for c in listed] == [
        ("Acme", ["HQ"]),
        ("Globex", ["Lab"]),
    ]

    # Rename, notes, tags in one PATCH; two audit rows (renamed, updated).
    body = ok(
        root.patch(
            f"/api/machines/{pc}",
            json={
                "name": " Reception PC ",
                "notes": "under the desk",
                "tags": ["front", "Front", "win 11"],
            },
        )
    )
    assert (body["name"], body["notes"], body["tags"]) == (
        "Reception PC",
        "under the desk",
        ["front", "win 11"],
    )
    renamed = server.events("machine.renamed")
    assert [(e.detail["old"], e.detail["new"], e.machine_id) for e in renamed] == [
        ("pc-1", "Reception PC", pc)
    ]
    updated = server.events("machine.updated")
    assert updated[-1].detail["changes"]["notes"] == {"old_length": 0, "new_length": 14}
    assert "under the desk" not in str(updated[-1].detail)  # notes by length only

    # A site alone files the machine under the site's client.
    body = ok(root.patch(f"/api/machines/{pc}", json={"site_id": hq["id"]}))
    assert (body["client_id"], body["client_name"], body["site_id"], body["site_name"]) == (
        acme["id"],
        "Acme",
        hq["id"],
        "HQ",
    )
    ok(root.patch(f"/api/machines/{other}", json={"client_id": globex["id"]}))
    assert [m["name"] for m in ok(root.get("/api/machines", params={"client": acme["id"]}))] == [
        "Reception PC"
    ]
    assert [m["name"] for m in ok(root.get("/api/machines", params={"site": hq["id"]}))] == [
        "Reception PC"
    ]
    assert ok(root.get("/api/machines", params={"client": str(uuid.uuid4())})) == []
    # Another client: the old site does not follow.
    body = ok(root.patch(f"/api/machines/{pc}", json={"client_id": globex["id"]}))
    assert (body["client_name"], body["site_id"]) == ("Globex", None)
    # The older form, a client by name, files it under that client (created if new).
    body = ok(root.patch(f"/api/machines/{pc}", json={"client_name": "Initech"}))
    assert body["client_name"] == "Initech"
    assert body["client_id"] in [c["id"] for c in ok(root.get("/api/clients"))]
    assert [e.detail["name"] for e in server.events("client.created")] == [
        "Acme",
        "Globex",
        "Initech",
    ]
    body = ok(root.patch(f"/api/machines/{pc}", json={"client_id": None}))
    assert (body["client_id"], body["client_name"]) == (None, None)

    # Bad input: a clear 422 that says what is wrong, and nothing changes.
    for patch, message in [
        ({"name": ""}, "at least 1 character"),
        ({"name": "   "}, "at least 1 character"),
        ({"name": "x" * 256}, "at most 255 characters"),
        ({"name": None}, "null is not allowed"),
        ({"tags": ["ok", "<script>"]}, "a tag is 1 to 32"),
        ({"tags": ["x" * 33]}, "a tag is 1 to 32"),
        ({"tags": [f"t{n}" for n in range(21)]}, "at most 20 items"),
        ({"tags": "front"}, "valid list"),
        ({"notes": "n" * 4001}, "at most 4000 characters"),
        ({"client_id": str(uuid.uuid4())}, "unknown client"),
        ({"client_id": "not-a-uuid"}, "valid UUID"),
        ({"site_id": str(uuid.uuid4())}, "unknown site"),
        ({"client_id": globex["id"], "site_id": hq["id"]}, "the site belongs to another client"),
        ({"client_id": acme["id"], "client_name": "Acme"}, "not both"),
        ({"consent_policy": "sometimes"}, "consent_policy"),
    ]:
        refused(root.patch(f"/api/machines/{pc}", json=patch), 422, message)
    assert ok(root.get(f"/api/machines/{pc}"))["name"] == "Reception PC"
    refused(root.post("/api/clients", json={"name": ""}), 422, "at least 1 character")
    refused(
        root.post("/api/sites", json={"client_id": str(uuid.uuid4()), "name": "x"}),
        422,
        "unknown client",
    )

    # History: the machine's sessions, newest first, with who ran them.
    first = add_session(server, tenant, pc, technician_id=root_id)
    second = add_session(server, tenant, pc, state="active", technician_id=root_id)
    add_session(server, tenant, other)
    history = ok(root.get(f"/api/machines/{pc}/sessions"))
    assert [s["id"] for s in history] == [str(second), str(first)]
    assert history[0]["technician"] == "root"

    # The agent key that binds it, and a re-key: a new key, shown once; the old one revoked.
    old = ok(root.post("/api/agent-keys", json={"label": "old", "machine_id": str(pc)}), 201)
    detail = ok(root.get(f"/api/machines/{pc}"))
    assert [k["prefix"] for k in detail["agent_keys"]] == [old["prefix"]]
    new = ok(root.post(f"/api/machines/{pc}/rekey"), 201)
    assert new["key"].startswith("cak_")
    assert new["machine_id"] == str(pc)
    keys = {k["prefix"]: k for k in ok(root.get(f"/api/machines/{pc}"))["agent_keys"]}
    assert keys[old["prefix"]]["revoked_at"] is not None
    assert keys[new["prefix"]]["revoked_at"] is None
    assert "key" not in keys[new["prefix"]]
    stored = server.database.sql(
        select(agent_keys.c.key_hash).where(agent_keys.c.prefix == new["prefix"])
    )
    assert stored[0].key_hash != new["key"]
    assert new["key"] not in stored[0].key_hash
    rekeyed = server.events("machine.rekeyed")
    assert rekeyed[-1].detail["revoked_keys"] == [old["prefix"]]
    assert new["key"] not in str([e.detail for e in server.events("agent_key.issued")])

    # Forget: gone from every answer; its sessions and audit rows stay; its key is revoked.
    events_before = count(server, session_events, session_events.c.machine_id == pc)
    assert ok(root.delete(f"/api/machines/{pc}"), 204) is None
    refused(root.get(f"/api/machines/{pc}"), 404, "machine not found")
    refused(root.get(f"/api/machines/{pc}/sessions"), 404, "machine not found")
    refused(root.delete(f"/api/machines/{pc}"), 404, "machine not found")
    refused(root.patch(f"/api/machines/{pc}", json={"name": "back"}), 404, "machine not found")
    assert str(pc) not in [m["id"] for m in ok(root.get("/api/machines"))]
    assert count(server, sessions, sessions.c.machine_id == pc) == 2
    assert count(server, session_events, session_events.c.machine_id == pc) == events_before + 1
    deleted = server.events("machine.deleted")
    assert [(e.machine_id, e.detail["name"], e.detail["revoked_keys"]) for e in deleted] == [
        (pc, "Reception PC", [new["prefix"]])
    ]
    revoked = server.database.sql(
        select(agent_keys.c.revoked_at).where(agent_keys.c.prefix == new["prefix"])
    )
    assert revoked[0].revoked_at is not None
    assert count(server, machines, machines.c.id == pc, machines.c.deleted_at.is_not(None)) == 1


def test_access_is_enforced_on_the_server_and_attacked_from_every_side(server: LiveServer) -> None:
    root = admin_client(server)
    tenant = tenant_id_of(server, "default")
    acme = ok(root.post("/api/clients", json={"name": "Acme"}), 201)
    globex = ok(root.post("/api/clients", json={"name": "Globex"}), 201)
    mine = add_machine(server, tenant, "acme-pc")
    theirs = add_machine(server, tenant, "globex-pc")
    ok(root.patch(f"/api/machines/{mine}", json={"client_id": acme["id"]}))
    ok(root.patch(f"/api/machines/{theirs}", json={"client_id": globex["id"]}))
    ok(root.post("/api/agent-keys", json={"machine_id": str(theirs)}), 201)

    # A technician with access to Acme only; another, view-only, on Acme too.
    tina = create(root, "tina")
    ok(
        root.put(
            f"/api/users/{tina['id']}/client-access",
            json={"machine_ids": [], "client_names": ["Acme"]},
        )
    )
    vera = create(root, "vera", permissions=["sessions.view"])
    ok(
        root.put(
            f"/api/users/{vera['id']}/client-access",
            json={"machine_ids": [], "client_names": ["Acme"]},
        )
    )
    tech = server.client(token=server.login("tina"))
    viewer = server.client(token=server.login("vera"))

    # Without access to Globex: nothing of its machine, not even that it exists (404).
    for response in (
        tech.get(f"/api/machines/{theirs}"),
        tech.get(f"/api/machines/{theirs}/sessions"),
        tech.patch(f"/api/machines/{theirs}", json={"name": "mine now"}),
        tech.patch(f"/api/machines/{theirs}", json={"client_id": acme["id"]}),
        tech.delete(f"/api/machines/{theirs}"),
        tech.post(f"/api/machines/{theirs}/rekey"),
    ):
        refused(response, 404, "machine not found")
    assert [m["name"] for m in ok(tech.get("/api/machines"))] == ["acme-pc"]
    assert ok(tech.get("/api/machines", params={"client": globex["id"]})) == []
    assert [c["name"] for c in ok(tech.get("/api/clients"))] == ["Acme"]

    # With access and control: rename, notes, tags. Not what decides access or consent.
    ok(tech.patch(f"/api/machines/{mine}", json={"name": "acme-front", "tags": ["desk"]}))
    for patch, what in [
        ({"client_id": globex["id"]}, "client or site"),
        ({"client_id": None}, "client or site"),
        ({"client_name": "Globex"}, "client or site"),
        ({"consent_policy": "unattended"}, "consent policy"),
    ]:
        refused(tech.patch(f"/api/machines/{mine}", json=patch), 403, what)
    refused(tech.delete(f"/api/machines/{mine}"), 403, "only an admin")
    refused(tech.post(f"/api/machines/{mine}/rekey"), 403, "agent_keys.manage")
    refused(tech.post("/api/clients", json={"name": "Initech"}), 403, "admin role required")
    refused(tech.post("/api/sites", json={"client_id": acme["id"], "name": "x"}), 403, "admin")
    assert ok(tech.get(f"/api/machines/{mine}"))["agent_keys"] is None

    # View-only: reads, changes nothing.
    assert ok(viewer.get(f"/api/machines/{mine}"))["name"] == "acme-front"
    for patch in ({"name": "viewed"}, {"notes": "x"}, {"tags": []}):
        refused(viewer.patch(f"/api/machines/{mine}", json=patch), 403, "sessions.control")

    # Another tenant's admin: 404 on every id, and A's ids are no use in B's own requests.
    server.create_tenant("tenant-b")
    boss = admin_client(server, "boss", tenant="tenant-b")
    b_pc = add_machine(server, tenant_id_of(server, "tenant-b"), "b-pc")
    for response in (
        boss.get(f"/api/machines/{mine}"),
        boss.get(f"/api/machines/{mine}/sessions"),
        boss.patch(f"/api/machines/{mine}", json={"name": "taken"}),
        boss.delete(f"/api/machines/{mine}"),
        boss.post(f"/api/machines/{mine}/rekey"),
    ):
        refused(response, 404, "machine not found")
    refused(
        boss.patch(f"/api/machines/{b_pc}", json={"client_id": acme["id"]}), 422, "unknown client"
    )
    site = ok(root.post("/api/sites", json={"client_id": acme["id"], "name": "HQ"}), 201)
    refused(boss.patch(f"/api/machines/{b_pc}", json={"site_id": site["id"]}), 422, "unknown site")
    refused(
        boss.post("/api/sites", json={"client_id": acme["id"], "name": "x"}), 422, "unknown client"
    )
    assert ok(boss.get("/api/clients")) == []
    assert ok(boss.get("/api/machines", params={"client": acme["id"]})) == []
    # Same name in another tenant: a client of its own, not A's.
    assert ok(boss.post("/api/clients", json={"name": "Acme"}), 201)["id"] != acme["id"]

    # Nothing of A's changed through any of it.
    assert ok(root.get(f"/api/machines/{theirs}"))["name"] == "globex-pc"
    mine_now = ok(root.get(f"/api/machines/{mine}"))
    assert (mine_now["name"], mine_now["client_name"], mine_now["consent_policy"]) == (
        "acme-front",
        "Acme",
        "ask",
    )
    assert all(
        k["revoked_at"] is None for k in ok(root.get(f"/api/machines/{theirs}"))["agent_keys"]
    )


def test_support_code_machines_leave_the_default_list_when_their_session_ends(
    server: LiveServer,
) -> None:
    root = admin_client(server)
    tenant = tenant_id_of(server, "default")
    persistent = add_machine(server, tenant, "office-pc")
    done = add_machine(server, tenant, "customer-done")
    live = add_machine(server, tenant, "customer-live")
    server.database.sql(
        machines.update().where(machines.c.id.in_([done, live])).values(ad_hoc=True)
    )
    add_session(server, tenant, done, kind="support_code")
    add_session(server, tenant, live, kind="support_code", state="active")

    names = [m["name"] for m in ok(root.get("/api/machines"))]
    assert sorted(names) == ["customer-live", "office-pc"]
    everything = [m["name"] for m in ok(root.get("/api/machines", params={"include": "ended"}))]
    assert sorted(everything) == ["customer-done", "customer-live", "office-pc"]
    # Kept in history: the machine and its session are still there to look at.
    assert len(ok(root.get(f"/api/machines/{done}/sessions"))) == 1
    refused(root.get("/api/machines", params={"include": "everything"}), 422, "include")
    # A support-code machine has no key to re-key, and always asks.
    refused(root.post(f"/api/machines/{done}/rekey"), 409, "no agent key")
    refused(
        root.patch(f"/api/machines/{live}", json={"consent_policy": "unattended"}),
        422,
        "always asks",
    )
    del persistent

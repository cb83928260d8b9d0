"""Schema and migrations on both backends: idempotent, complete, and what the code expects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Uuid, bindparam, delete, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from guruconnect.server.auth.permissions import Role
from guruconnect.server.auth.user_tokens import TokenClaims
from guruconnect.server.db import auth_tokens, events, machines, tenants, users
from guruconnect.server.db.engine import alembic_config, create_engine, migrate
from guruconnect.server.db.events import Event
from guruconnect.server.db.schema import (
    auth_tokens as auth_tokens_table,
)
from guruconnect.server.db.schema import (
    clients as clients_table,
)
from guruconnect.server.db.schema import (
    machine_placements,
    metadata,
    session_events,
)
from guruconnect.server.db.schema import (
    sessions as sessions_table,
)
from guruconnect.server.db.schema import (
    tenants as tenants_table,
)
from guruconnect.server.db.schema import (
    users as users_table,
)
from guruconnect.server.db.types import UTCDateTime
from tests.conftest import Database

TABLES = {
    "tenants",
    "users",
    "user_permissions",
    "user_client_access",
    "machines",
    "clients",
    "sites",
    "agent_keys",
    "sessions",
    "session_events",
    "support_codes",
    "releases",
    "auth_tokens",
    "update_policies",
    "viewer_tickets",
    "machine_placements",
    "mfa_recovery_codes",
}


@pytest_asyncio.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database.url, schema=database.schema)
    await migrate(engine, schema=database.schema)
    yield engine
    await engine.dispose()


def _inspect_tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


@pytest.mark.asyncio
async def test_migrating_again_changes_nothing(engine: AsyncEngine, database: Database) -> None:
    await migrate(engine, schema=database.schema)
    await migrate(engine, schema=database.schema)
    async with engine.connect() as conn:
        assert await conn.run_sync(_inspect_tables) == TABLES | {"alembic_version"}
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        names = (await conn.execute(select(tenants_table.c.name))).scalars().all()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert [v[0] for v in versions] == [head]
    assert names == ["default"]


@pytest.mark.asyncio
async def test_migrations_build_exactly_the_declared_schema(engine: AsyncEngine) -> None:
    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def test_every_customer_owned_table_carries_a_tenant() -> None:
    for table in metadata.sorted_tables:
        if table.name in {"tenants", "releases"}:
            assert "tenant_id" not in table.c
            continue
        assert "tenant_id" in table.c, table.name
        # Audit rows may precede knowing the tenant (a failed login of an unknown name).
        assert table.c.tenant_id.nullable is (table.name == "session_events"), table.name
        assert table.c.id.type.python_type is uuid.UUID, table.name


@pytest.mark.asyncio
async def test_relay_lookups_are_indexed(engine: AsyncEngine) -> None:
    def indexes(conn: Connection) -> dict[str, list[tuple[tuple[str, ...], bool]]]:
        inspector = inspect(conn)
        found: dict[str, list[tuple[tuple[str, ...], bool]]] = {}
        for table in ("agent_keys", "support_codes", "sessions", "users"):
            entries = [
                (tuple(ix["column_names"]), bool(ix["unique"]))
                for ix in inspector.get_indexes(table)
            ]
            entries += [
                (tuple(uq["column_names"]), True) for uq in inspector.get_unique_constraints(table)
            ]
            found[table] = entries
        return found

    async with engine.connect() as conn:
        found = await conn.run_sync(indexes)
    assert (("prefix",), True) in found["agent_keys"]
    assert (("code_hash",), True) in found["support_codes"]
    assert (("machine_id", "state"), False) in found["sessions"]
    assert (("username",), True) in found["users"]


async def _tenant_and_user(engine: AsyncEngine, name: str = "alice") -> users.User:
    async with engine.begin() as conn:
        tenant = await tenants.create(conn, f"t-{uuid.uuid4().hex[:8]}")
        return await users.create(
            conn, tenant_id=tenant.id, username=name, password_hash="x", role=Role.TECHNICIAN
        )


@pytest.mark.asyncio
async def test_timestamps_come_back_aware_and_exact(engine: AsyncEngine) -> None:
    user = await _tenant_and_user(engine)
    async with engine.connect() as conn:
        stored = await users.get(conn, user.tenant_id, user.id)
    assert stored is not None
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at == user.created_at


@pytest.mark.asyncio
async def test_naive_timestamps_are_refused(engine: AsyncEngine) -> None:
    with pytest.raises(StatementError, match="aware datetime"):
        async with engine.begin() as conn:
            await conn.execute(
                insert(tenants_table).values(
                    id=uuid.uuid4(), name="naive", created_at=datetime(2026, 1, 1)
                )
            )


@pytest.mark.asyncio
async def test_live_usernames_are_unique_but_deleted_ones_are_free(engine: AsyncEngine) -> None:
    user = await _tenant_and_user(engine, "bob")
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await users.create(
                conn, tenant_id=user.tenant_id, username="BOB", password_hash="x", role=Role.ADMIN
            )
    async with engine.begin() as conn:
        await users.soft_delete(conn, user.tenant_id, user.id)
        again = await users.create(
            conn, tenant_id=user.tenant_id, username="bob", password_hash="y", role=Role.ADMIN
        )
    assert again.id != user.id


@pytest.mark.asyncio
async def test_deleting_a_tenant_cascades_but_audit_rows_of_deleted_users_stay(
    engine: AsyncEngine,
) -> None:
    user = await _tenant_and_user(engine)
    other = await _tenant_and_user(engine, "carol")
    async with engine.begin() as conn:
        await events.append(conn, Event("test.event", tenant_id=other.tenant_id, user_id=other.id))
        # A hard delete of a user keeps its audit rows, pointing at nobody.
        await conn.execute(delete(users_table).where(users_table.c.id == other.id))
        await conn.execute(delete(tenants_table).where(tenants_table.c.id == user.tenant_id))
    async with engine.connect() as conn:
        left = (await conn.execute(select(users_table.c.username))).scalars().all()
        [row] = (
            await conn.execute(
                select(session_events.c.user_id, session_events.c.tenant_id).where(
                    session_events.c.event_type == "test.event"
                )
            )
        ).all()
    assert left == []  # alice went with her tenant, carol was deleted
    assert row.user_id is None
    assert row.tenant_id == other.tenant_id


@pytest.mark.asyncio
async def test_prune_removes_only_expired_tokens(engine: AsyncEngine) -> None:
    user = await _tenant_and_user(engine)
    now = datetime.now(UTC).replace(microsecond=0)

    def claims(expires_in: timedelta) -> TokenClaims:
        return TokenClaims(
            jti=uuid.uuid4(),
            user_id=user.id,
            tenant_id=user.tenant_id,
            issued_at=now - timedelta(hours=2),
            expires_at=now + expires_in,
        )

    live, dead = claims(timedelta(minutes=5)), claims(-timedelta(minutes=5))
    async with engine.begin() as conn:
        await auth_tokens.record(conn, live)
        await auth_tokens.record(conn, dead)
        await auth_tokens.revoke(conn, dead.jti, "logout")
        assert await auth_tokens.prune_expired(conn, now) == 1
        remaining = (await conn.execute(select(auth_tokens_table.c.id))).scalars().all()
        assert remaining == [live.jti]
        count = (await conn.execute(select(func.count()).select_from(auth_tokens_table))).scalar()
    assert count == 1


def _migrate_to(connection: Connection, revision: str, schema: str | None, down: bool) -> None:
    if connection.dialect.name == "postgresql" and schema:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    config = alembic_config()
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


@pytest.mark.asyncio
async def test_revision_0005_files_client_names_under_clients_and_goes_back_down(
    database: Database,
) -> None:
    """Up from 0004 with data: each tenant's client names become clients holding their
    machines; down again: the new tables and columns go, and nothing else (the machines'
    sessions and audit rows survive both ways: ``machines`` is never rebuilt)."""
    engine = create_engine(database.url, schema=database.schema)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate_to, "0004", database.schema, False)
        now = datetime.now(UTC)
        tenant_id, machine_ids = uuid.uuid4(), [uuid.uuid4() for _ in range(4)]
        async with engine.begin() as conn:
            # Raw SQL: the declared tables have columns of later revisions (0006).
            await conn.execute(
                text(
                    "INSERT INTO tenants (id, name, created_at) VALUES (:id, 't-0005', :now)"
                ).bindparams(bindparam("id", type_=Uuid()), bindparam("now", type_=UTCDateTime())),
                {"id": tenant_id, "now": now},
            )
            for machine_id, client in zip(
                machine_ids, ["acme", "acme", "globex", None], strict=True
            ):
                await conn.execute(
                    text(
                        "INSERT INTO machines (id, tenant_id, name, client_name, consent_policy,"
                        " ad_hoc, online, created_at) VALUES (:id, :tenant, :name, :client,"
                        " 'ask', false, false, :now)"
                    ).bindparams(
                        bindparam("id", type_=Uuid()),
                        bindparam("tenant", type_=Uuid()),
                        bindparam("now", type_=UTCDateTime()),
                    ),
                    {
                        "id": machine_id,
                        "tenant": tenant_id,
                        "name": f"pc-{client}",
                        "client": client,
                        "now": now,
                    },
                )
            await conn.execute(
                insert(sessions_table).values(
                    id=uuid.uuid4(),
                    tenant_id=tenant_id,
                    machine_id=machine_ids[0],
                    kind="attended",
                    scope="control",
                    state="ended",
                    created_at=now,
                    node_id="default",
                )
            )
            await events.append(
                conn, Event("session.created", tenant_id, machine_id=machine_ids[0])
            )

        await migrate(engine, schema=database.schema)
        async with engine.connect() as conn:
            found = (
                await conn.execute(
                    select(clients_table.c.name, machine_placements.c.machine_id)
                    .join(machine_placements, machine_placements.c.client_id == clients_table.c.id)
                    .where(clients_table.c.tenant_id == tenant_id)
                )
            ).all()
            listed = await machines.list_for_tenant(conn, tenant_id)
        assert sorted((name, m) for name, m in found) == sorted(
            [("acme", machine_ids[0]), ("acme", machine_ids[1]), ("globex", machine_ids[2])]
        )
        by_id = {m.id: m for m in listed}
        assert by_id[machine_ids[0]].client_id == by_id[machine_ids[1]].client_id is not None
        assert by_id[machine_ids[3]].client_id is None
        assert by_id[machine_ids[3]].tags == ()

        async with engine.begin() as conn:
            await conn.run_sync(_migrate_to, "0004", database.schema, True)
        async with engine.connect() as conn:
            tables = await conn.run_sync(_inspect_tables)
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("machines")}
            )
            kept = [
                (await conn.execute(select(func.count()).select_from(table))).scalar()
                for table in (sessions_table, session_events)
            ]
        assert not tables & {"clients", "sites", "machine_placements"}
        assert not columns & {"notes", "tags"}
        assert kept == [1, 1]

        await migrate(engine, schema=database.schema)  # and up again
    finally:
        await engine.dispose()

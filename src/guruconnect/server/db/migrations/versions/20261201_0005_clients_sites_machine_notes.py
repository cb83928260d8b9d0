"""machines: clients and sites (a real grouping), notes, tags

Every distinct ``machines.client_name`` of a tenant becomes a row of ``clients`` and its
machines are placed in it (``machine_placements``); ``client_name`` stays, mirroring the
client's name, because client access and update policies are granted by that name.

``machines`` is never rebuilt (the batch mode's copy-and-move on SQLite): the database
runs with ``PRAGMA foreign_keys=ON``, and dropping the old table would cascade into its
sessions, agent keys and grants. Hence a table for the placement (foreign keys a plain
ALTER cannot add in a reflectable form) and ``DROP COLUMN`` on the way down.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

from guruconnect.server.db.types import UTCDateTime, utcnow

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_clients_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_clients_tenant_id_name")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_sites_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sites_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("client_id", "name", name=op.f("uq_sites_client_id_name")),
    )

    op.create_table(
        "machine_placements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("machine_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_machine_placements_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["machines.id"],
            name=op.f("fk_machine_placements_machine_id_machines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_machine_placements_site_id_sites"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_machine_placements_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_placements")),
        sa.UniqueConstraint("machine_id", name=op.f("uq_machine_placements_machine_id")),
    )
    with op.batch_alter_table("machine_placements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_machine_placements_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_machine_placements_site_id"), ["site_id"], unique=False
        )

    # Plain ADD COLUMNs (no foreign key, a constant default): no table rebuild on SQLite.
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.JSON(), server_default="[]", nullable=False))

    _group_existing_client_names()


def _group_existing_client_names() -> None:
    machines = sa.table(
        "machines",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("client_name", sa.String()),
    )
    placements = sa.table(
        "machine_placements",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("machine_id", sa.Uuid()),
        sa.column("client_id", sa.Uuid()),
    )
    clients = sa.table(
        "clients",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("created_at", UTCDateTime()),
    )
    bind = op.get_bind()
    pairs = bind.execute(
        sa.select(machines.c.tenant_id, machines.c.client_name)
        .where(machines.c.client_name.is_not(None))
        .distinct()
    ).all()
    now = utcnow()
    for tenant_id, client_name in pairs:
        client_id = uuid.uuid4()
        bind.execute(
            sa.insert(clients).values(
                id=client_id, tenant_id=tenant_id, name=client_name, created_at=now
            )
        )
        members = bind.execute(
            sa.select(machines.c.id).where(
                machines.c.tenant_id == tenant_id, machines.c.client_name == client_name
            )
        ).scalars()
        rows = [
            {"id": uuid.uuid4(), "tenant_id": tenant_id, "machine_id": m, "client_id": client_id}
            for m in members
        ]
        bind.execute(sa.insert(placements), rows)


def downgrade() -> None:
    for column in ("tags", "notes"):
        if _sqlite():
            # SQLite >= 3.35; the batch mode would rebuild (drop) the table instead.
            op.execute(f"ALTER TABLE machines DROP COLUMN {column}")
        else:
            op.drop_column("machines", column)
    op.drop_table("machine_placements")
    op.drop_table("sites")
    op.drop_table("clients")

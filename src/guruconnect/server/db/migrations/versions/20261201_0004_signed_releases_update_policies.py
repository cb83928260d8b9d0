"""releases: signed manifests; update_policies (pin, pause)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("manifest", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_releases_filename"), ["filename"])

    op.create_table(
        "update_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("machine_id", sa.Uuid(), nullable=True),
        sa.Column("client_name", sa.String(length=255), nullable=True),
        sa.Column("pinned_version", sa.String(length=64), nullable=True),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "machine_id IS NULL OR client_name IS NULL",
            name=op.f("ck_update_policies_machine_or_client"),
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["machines.id"],
            name=op.f("fk_update_policies_machine_id_machines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_update_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_update_policies")),
        sa.UniqueConstraint(
            "tenant_id",
            "machine_id",
            "client_name",
            name=op.f("uq_update_policies_tenant_id_machine_id_client_name"),
        ),
    )


def downgrade() -> None:
    op.drop_table("update_policies")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_releases_filename"), type_="unique")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("key_id")
        batch_op.drop_column("signature")
        batch_op.drop_column("manifest")

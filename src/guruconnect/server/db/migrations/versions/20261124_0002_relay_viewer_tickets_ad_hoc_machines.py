"""relay: viewer tickets, ad-hoc machines, session scope

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 11:04:26.197077
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "viewer_tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('view', 'control')", name=op.f("ck_viewer_tickets_scope")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_viewer_tickets_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_viewer_tickets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_viewer_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_viewer_tickets")),
        sa.UniqueConstraint("ticket_hash", name=op.f("uq_viewer_tickets_ticket_hash")),
    )
    with op.batch_alter_table("viewer_tickets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_viewer_tickets_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=10), server_default="control", nullable=False)
        )
        batch_op.create_check_constraint("scope", "scope IN ('view', 'control')")

    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ad_hoc", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint("ck_sessions_scope", type_="check")
        batch_op.drop_column("scope")

    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_column("ad_hoc")

    with op.batch_alter_table("viewer_tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_viewer_tickets_expires_at"))

    op.drop_table("viewer_tickets")

"""account security: forced password change, TOTP MFA, recovery codes, tenant policies

It only adds columns to ``users`` and ``tenants`` (in place, see ``_columns``) and one
new table.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Columns added in place. Never through the batch mode: on SQLite it rebuilds the table by
# dropping the old copy, and dropping ``tenants`` or ``users`` cascades (foreign keys are
# on) into every machine, session and key of the tenant.
def _columns() -> list[tuple[str, sa.Column[Any]]]:
    return [
        (
            "tenants",
            sa.Column("mfa_required", sa.Boolean(), server_default=sa.false(), nullable=False),
        ),
        (
            "tenants",
            sa.Column(
                "audit_keep_content", sa.Boolean(), server_default=sa.false(), nullable=False
            ),
        ),
        (
            "users",
            sa.Column(
                "must_change_password", sa.Boolean(), server_default=sa.false(), nullable=False
            ),
        ),
        ("users", sa.Column("mfa_secret", sa.String(length=64), nullable=True)),
        ("users", sa.Column("mfa_pending_secret", sa.String(length=64), nullable=True)),
        ("users", sa.Column("mfa_enabled_at", sa.DateTime(timezone=True), nullable=True)),
        ("users", sa.Column("mfa_last_step", sa.BigInteger(), nullable=True)),
    ]


def upgrade() -> None:
    for table, column in _columns():
        op.add_column(table, column)

    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_mfa_recovery_codes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mfa_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_recovery_codes")),
        sa.UniqueConstraint(
            "user_id", "code_hash", name=op.f("uq_mfa_recovery_codes_user_id_code_hash")
        ),
    )


def downgrade() -> None:
    op.drop_table("mfa_recovery_codes")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column in reversed(_columns()):
        if sqlite:
            # SQLite >= 3.35 drops a column in place (see _columns on the batch mode).
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column.name}")
        else:
            op.drop_column(table, column.name)

"""nodes: the server node a session runs on and a machine's agent is connected to

Startup reconciliation only ends the sessions, and marks offline the machines, of the
node that starts (``GURUCONNECT_NODE_ID``); rows from before this revision belong to the
node ``default``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("node_id", sa.String(length=64), server_default="default", nullable=False)
        )
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("node_id", sa.String(length=64), nullable=True))
    op.execute("UPDATE machines SET node_id = 'default' WHERE online")


def downgrade() -> None:
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_column("node_id")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("node_id")

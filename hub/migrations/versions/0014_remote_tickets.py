"""Remote tickets: a service's rules for them, and a ticket's check-in code and presence.

Revision ID: 0014_remote_tickets
Revises: 0013_clerks_audit
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0014_remote_tickets"
down_revision: str | None = "0013_clerks_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("remote", sa.JSON(), nullable=True))
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("remote_code", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("passes", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("passes")
        batch.drop_column("checked_in_at")
        batch.drop_column("remote_code")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("remote")

"""Services say whether citizens may take priority tickets of them.

Revision ID: 0010_priority_allowed
Revises: 0009_booking_rules
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0010_priority_allowed"
down_revision: str | None = "0009_booking_rules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(
            sa.Column("priority_allowed", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("priority_allowed")

"""Closures: days, or parts of days, when the office or some of its services close.

Revision ID: 0007_closures
Revises: 0006_appointments
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0007_closures"
down_revision: str | None = "0006_appointments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "closures",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start", sa.Time(), nullable=True),
        sa.Column("end", sa.Time(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_closures")),
    )
    op.create_index("ix_closures_day", "closures", ["day"])


def downgrade() -> None:
    op.drop_index("ix_closures_day", table_name="closures")
    op.drop_table("closures")

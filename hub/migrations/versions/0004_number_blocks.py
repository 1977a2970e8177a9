"""Number blocks that kiosks issue from while the hub does not answer.

Revision ID: 0004_number_blocks
Revises: 0003_web
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004_number_blocks"
down_revision: str | None = "0003_web"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "number_blocks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=8), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.code"], name=op.f("fk_number_blocks_service_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_blocks")),
        sa.UniqueConstraint(
            "business_day",
            "service",
            "first_seq",
            name=op.f("uq_number_blocks_business_day_service_first_seq"),
        ),
    )
    op.create_index(
        "ix_number_blocks_business_day_device",
        "number_blocks",
        ["business_day", "device"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_number_blocks_business_day_device", table_name="number_blocks")
    op.drop_table("number_blocks")

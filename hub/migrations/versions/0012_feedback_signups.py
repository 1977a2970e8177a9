"""Citizens' ratings of their visits, and e-service sign-ups recorded at a desk.

Revision ID: 0012_feedback_signups
Revises: 0011_notifications
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0012_feedback_signups"
down_revision: str | None = "0011_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=True),
        sa.Column("clerk", sa.String(length=128), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ratings")),
    )
    op.create_index("ix_ratings_business_day", "ratings", ["business_day"])
    op.create_table(
        "eservice_signups",
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("eservice", sa.String(length=80), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("clerk", sa.String(length=128), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "eservice", name=op.f("pk_eservice_signups")),
    )
    op.create_index("ix_eservice_signups_business_day", "eservice_signups", ["business_day"])


def downgrade() -> None:
    op.drop_index("ix_eservice_signups_business_day", table_name="eservice_signups")
    op.drop_table("eservice_signups")
    op.drop_index("ix_ratings_business_day", table_name="ratings")
    op.drop_table("ratings")

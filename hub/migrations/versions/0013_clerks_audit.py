"""Clerks' counters and services, the clerk at each counter, and the admins' audit.

Revision ID: 0013_clerks_audit
Revises: 0012_feedback_signups
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0013_clerks_audit"
down_revision: str | None = "0012_feedback_signups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("counters", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("services", sa.JSON(), nullable=True))
    op.create_table(
        "counter_clerks",
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("counter_id", name=op.f("pk_counter_clerks")),
    )
    op.create_index("ix_counter_clerks_username", "counter_clerks", ["username"])
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit")),
    )
    op.create_index("ix_admin_audit_at", "admin_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_admin_audit_at", table_name="admin_audit")
    op.drop_table("admin_audit")
    op.drop_index("ix_counter_clerks_username", table_name="counter_clerks")
    op.drop_table("counter_clerks")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("services")
        batch.drop_column("counters")

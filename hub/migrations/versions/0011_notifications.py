"""Citizens' notifications: their contacts per ticket, and the durable send queue.

Revision ID: 0011_notifications
Revises: 0010_priority_allowed
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0011_notifications"
down_revision: str | None = "0010_priority_allowed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notify_subscriptions",
        sa.Column("ticket", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("contact", sa.String(length=2048), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("ticket", "channel", name=op.f("pk_notify_subscriptions")),
    )
    op.create_index(
        "ix_notify_subscriptions_ended_at", "notify_subscriptions", ["ended_at"]
    )
    op.create_table(
        "notifications",
        sa.Column("ticket", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("ahead", sa.Integer(), nullable=True),
        sa.Column("counter", sa.String(length=120), nullable=True),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("ticket", "kind", "channel", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_event_at", "notifications", ["event_at"])
    op.create_index("ix_notifications_state_next_at", "notifications", ["state", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_state_next_at", table_name="notifications")
    op.drop_index("ix_notifications_event_at", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_notify_subscriptions_ended_at", table_name="notify_subscriptions")
    op.drop_table("notify_subscriptions")

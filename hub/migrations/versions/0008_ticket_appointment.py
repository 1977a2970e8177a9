"""Tickets know their appointment: the booking a check-in issued them for, and its slot.

Revision ID: 0008_ticket_appointment
Revises: 0007_closures
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0008_ticket_appointment"
down_revision: str | None = "0007_closures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKED_IN = "appointment IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("appointment", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("slot_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ux_tickets_appointment",
        "tickets",
        ["appointment"],
        unique=True,
        sqlite_where=sa.text(CHECKED_IN),
        postgresql_where=sa.text(CHECKED_IN),
    )


def downgrade() -> None:
    op.drop_index("ux_tickets_appointment", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("slot_at")
        batch.drop_column("appointment")

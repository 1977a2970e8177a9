"""Booking rules per service, and the address a booking came from (for its limit).

Revision ID: 0009_booking_rules
Revises: 0008_ticket_appointment
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0009_booking_rules"
down_revision: str | None = "0008_ticket_appointment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_rules",
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("slot_min", sa.Integer(), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("seats_by_hour", sa.JSON(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("cancel_before_min", sa.Integer(), nullable=False),
        sa.Column("hold_min", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service"], ["services.code"], name=op.f("fk_booking_rules_service_services")
        ),
        sa.PrimaryKeyConstraint("service", name=op.f("pk_booking_rules")),
    )
    op.add_column("appointments", sa.Column("client", sa.String(length=64), nullable=True))
    op.create_index("ix_appointments_client", "appointments", ["client"])
    op.create_index("ix_appointments_email", "appointments", ["email"])
    op.create_index("ix_appointments_hold_until", "appointments", ["hold_until"])


def downgrade() -> None:
    op.drop_index("ix_appointments_hold_until", table_name="appointments")
    op.drop_index("ix_appointments_email", table_name="appointments")
    op.drop_index("ix_appointments_client", table_name="appointments")
    with op.batch_alter_table("appointments") as batch:
        batch.drop_column("client")
    op.drop_table("booking_rules")

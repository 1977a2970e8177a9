"""The city: its branches, their history stored exactly once, its users and catalogue.

Revision ID: 0001_city
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_city"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "branches",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("address", sa.String(length=240), nullable=False),
        sa.Column("url", sa.String(length=240), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("catalogue", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_branches")),
        sa.UniqueConstraint("username", name=op.f("uq_branches_username")),
    )
    op.create_table(
        "catalogue_services",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=3), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_catalogue_services")),
        sa.UniqueConstraint("prefix", name=op.f("uq_catalogue_services_prefix")),
    )
    op.create_table(
        "catalogue_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_state")),
    )
    op.create_table(
        "city_users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("city_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_city_users")),
    )
    op.create_table(
        "branch_events",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=True),
        sa.Column("counter_id", sa.String(length=64), nullable=True),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=True),
        sa.Column("business_day", sa.Date(), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site"],
            ["branches.site"],
            name=op.f("fk_branch_events_site_branches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site", "seq", name=op.f("pk_branch_events")),
    )
    op.create_index(
        "ix_branch_events_business_day", "branch_events", ["business_day"], unique=False
    )
    op.create_index(
        "ix_branch_events_site_business_day",
        "branch_events",
        ["site", "business_day"],
        unique=False,
    )
    op.create_table(
        "branch_progress",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site"],
            ["branches.site"],
            name=op.f("fk_branch_progress_site_branches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_branch_progress")),
    )
    op.create_table(
        "city_roles",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["site"],
            ["branches.site"],
            name=op.f("fk_city_roles_site_branches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["username"],
            ["city_users.username"],
            name=op.f("fk_city_roles_username_city_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", "site", name=op.f("pk_city_roles")),
    )


def downgrade() -> None:
    op.drop_table("city_roles")
    op.drop_table("branch_progress")
    op.drop_index("ix_branch_events_site_business_day", table_name="branch_events")
    op.drop_index("ix_branch_events_business_day", table_name="branch_events")
    op.drop_table("branch_events")
    op.drop_table("city_users")
    op.drop_table("catalogue_state")
    op.drop_table("catalogue_services")
    op.drop_table("branches")

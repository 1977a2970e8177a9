"""The city link: audit-log ids never reused, the city's last ack, the city's services.

On SQLite ``events`` becomes an AUTOINCREMENT table (rebuilt with every row and id
kept), so an id deleted with the newest rows is never given again: the ids are the
sequence numbers the city stores the branch's log by. PostgreSQL's sequence already
never goes back.

Revision ID: 0015_uplink
Revises: 0014_remote_tickets
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0015_uplink"
down_revision: str | None = "0014_remote_tickets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_events(*, autoincrement: bool) -> None:
    """Rebuild ``events`` on SQLite with or without AUTOINCREMENT (the rows keep their ids)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "events", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild_events(autoincrement=True)
    op.create_table(
        "uplink_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("acked_seq", sa.Integer(), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("catalogue_version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uplink_state")),
    )
    op.create_table(
        "city_services",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("applied", sa.JSON(), nullable=False),
        sa.Column("kept_local", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_city_services")),
    )


def downgrade() -> None:
    op.drop_table("city_services")
    op.drop_table("uplink_state")
    _rebuild_events(autoincrement=False)

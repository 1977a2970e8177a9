"""Server-side sessions of the admin pages' users, and lockouts of guessed secrets.

Revision ID: 0005_sessions_lockouts
Revises: 0004_number_blocks
Create Date: 2026-12-06
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005_sessions_lockouts"
down_revision: str | None = "0004_number_blocks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_key", sa.String(length=64), nullable=True))
    users = sa.table("users", sa.column("username", sa.String), sa.column("session_key", sa.String))
    conn = op.get_bind()
    for (username,) in conn.execute(sa.select(users.c.username)).all():
        conn.execute(
            users.update()
            .where(users.c.username == username)
            .values(session_key=secrets.token_hex(16))
        )
    with op.batch_alter_table("users") as batch:
        batch.alter_column("session_key", existing_type=sa.String(length=64), nullable=False)
    op.create_table(
        "lockouts",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_lockouts")),
    )


def downgrade() -> None:
    op.drop_table("lockouts")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_key")

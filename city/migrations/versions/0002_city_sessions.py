"""A city user's session key: a new password (or a sign-out) ends their sessions.

Every session cookie carries the user's key; a new key ends every session that
carries the old one, as the hub's users' (``hub/users.py``). Each existing user gets a
key of their own (their sessions, which carried none, end once).

Revision ID: 0002_city_sessions
Revises: 0001_city
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_city_sessions"
down_revision: str | None = "0001_city"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "city_users",
        sa.Column("session_key", sa.String(length=32), server_default="", nullable=False),
    )
    op.execute("UPDATE city_users SET session_key = md5(random()::text || username)")
    op.alter_column("city_users", "session_key", server_default=None)


def downgrade() -> None:
    op.drop_column("city_users", "session_key")

"""The city's tables in PostgreSQL: their SQLAlchemy models, as the city's migrations make them.

The city keeps what its branches send (their audit logs, row for row, under
``(site, seq)``), how far it holds each branch's log, the branches themselves with
their broker accounts, the city's users with their roles per branch, and the
city's service catalogue with the branches that take it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hub.store.tables import NAMING_CONVENTION


class Base(DeclarativeBase):
    """The city's declarative base; :data:`metadata` is what its migrations are checked against.

    Its constraint names follow the hub's :data:`~hub.store.tables.NAMING_CONVENTION`.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class BranchRow(Base):
    """A row of ``branches``: an office of the city, and how its broker logs in."""

    __tablename__ = "branches"

    site: Mapped[str] = mapped_column(String(63), primary_key=True)
    """The branch's ``[site] id``: its topics are ``poradovnik/v1/<site>/…``."""
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(240))
    url: Mapped[str | None] = mapped_column(String(240))
    """The branch's public portal (``https://…``), where its my-ticket and booking pages are."""
    username: Mapped[str] = mapped_column(String(64), unique=True)
    """The branch's account on the city's broker."""
    password_hash: Mapped[str] = mapped_column(String(256))
    """The account's Mosquitto ``$7$`` hash."""
    catalogue: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """Whether the branch takes the city's service catalogue."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BranchEventRow(Base):
    """A row of ``branch_events``: one row of a branch's audit log, stored exactly once."""

    __tablename__ = "branch_events"
    __table_args__ = (
        Index("ix_branch_events_site_business_day", "site", "business_day"),
        Index("ix_branch_events_business_day", "business_day"),
    )

    site: Mapped[str] = mapped_column(
        String(63), ForeignKey("branches.site", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    ticket_id: Mapped[str | None] = mapped_column(String(32))
    counter_id: Mapped[str | None] = mapped_column(String(64))
    service: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    number: Mapped[str | None] = mapped_column(String(16))
    business_day: Mapped[date | None] = mapped_column(Date)
    priority: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When the city stored it: ``received_at - at`` is the row's lag."""


class BranchProgressRow(Base):
    """A row of ``branch_progress``: how far the city holds a branch's log.

    Written in the same transaction as the rows it counts, so after any crash or
    failover it says exactly what the database holds, and the ack the city publishes
    from it makes the branch send the rest.
    """

    __tablename__ = "branch_progress"

    site: Mapped[str] = mapped_column(
        String(63), ForeignKey("branches.site", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    """The highest sequence stored with none missing before it."""
    first_seq: Mapped[int] = mapped_column(BigInteger)
    """The first sequence the city holds (a branch that joined with history pruned
    starts above 1)."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CityUserRow(Base):
    """A row of ``city_users``: a person who signs in to the city's admin pages."""

    __tablename__ = "city_users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    """An argon2 hash."""
    city_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """Sees and manages every branch, the catalogue and the users."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    session_key: Mapped[str] = mapped_column(String(32))
    """Part of every session cookie of the user's: a new one (new password, sign-out)
    ends every session signed in before."""


class CityRoleRow(Base):
    """A row of ``city_roles``: what a user may do at one branch."""

    __tablename__ = "city_roles"

    username: Mapped[str] = mapped_column(
        String(64), ForeignKey("city_users.username", ondelete="CASCADE"), primary_key=True
    )
    site: Mapped[str] = mapped_column(
        String(63), ForeignKey("branches.site", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))
    """``viewer`` (dashboard, devices, statistics) or ``manager`` (also the catalogue)."""


class CatalogueServiceRow(Base):
    """A row of ``catalogue_services``: a service as the city defines it for its branches."""

    __tablename__ = "catalogue_services"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(3), unique=True)
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(Integer)


class CatalogueStateRow(Base):
    """The one row of ``catalogue_state``: the catalogue's version, raised by every change."""

    __tablename__ = "catalogue_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


metadata: Final = Base.metadata
"""Every city table, for the migrations' check and the queries."""

"""The hub's tables: their SQLAlchemy models, as the migrations must produce them.

Every table the hub keeps (the queue's, the broker accounts, users, API tokens,
e-service applications, site settings) is declared here once; :data:`metadata` is
what ``hub/migrations`` are checked against, and the Core table handles below are
what the store's queries and its write path are built from.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any, Final

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Time,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hub.model import AppointmentState, TicketState

DONE_CONDITION: Final = f"state = '{TicketState.DONE.value}'"
"""The finished tickets, as SQL: the partial index's condition, spelled the same in queries."""

APPOINTMENT_CONDITION: Final = "appointment IS NOT NULL"
"""The tickets issued by a check-in, as SQL (the partial index's condition)."""

ACTIVE_APPOINTMENT_CONDITION: Final = (
    f"state IN ('{AppointmentState.HELD.value}', '{AppointmentState.BOOKED.value}')"
)
"""The appointments that hold their seat, as SQL (the seat index's condition)."""


NAMING_CONVENTION: Final[dict[str, str]] = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are fixed so that later migrations (and SQLite batch mode) find them."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that always loads as an aware UTC datetime.

    SQLite keeps no zone (it returns naive values) and PostgreSQL returns the
    session's zone; both come back as UTC. Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC before it is stored."""
        return None if value is None else _utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """On SQLite, convert to UTC and format the text in one step.

        The usual chain (:meth:`process_bind_param`, then the SQLite ``DATETIME``
        processor, which formats through a dict) costs twice as much, and the write
        path converts about ten timestamps per issue→call→done cycle. The text is
        that processor's default storage format, which its result processor reads
        back; ``tests/hub/test_store.py`` checks that both produce the same text.
        """
        if dialect.name == "sqlite":
            return _sqlite_utc_text
        return super().bind_processor(dialect)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Turn whatever the database returned into an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} (the store keeps aware UTC)")
    return value.astimezone(UTC)


_SQLITE_DATETIME_TEXT: Final = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
"""SQLAlchemy's default SQLite storage format for datetimes, by position."""


def _sqlite_utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    v = _utc(value)
    return _SQLITE_DATETIME_TEXT % (
        v.year,
        v.month,
        v.day,
        v.hour,
        v.minute,
        v.second,
        v.microsecond,
    )


class Base(DeclarativeBase):
    """Declarative base of the hub's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ServiceRow(Base):
    """A row of ``services``: the catalog of services, in display order."""

    __tablename__ = "services"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    names: Mapped[dict[str, str]] = mapped_column(JSON)
    hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    daily_limit: Mapped[int | None] = mapped_column(Integer)
    open: Mapped[bool] = mapped_column(Boolean)
    weight: Mapped[float] = mapped_column(Float)
    default_service_time_s: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    priority_allowed: Mapped[bool] = mapped_column(Boolean, server_default=true())
    remote: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The remote tickets' rules (:class:`~hub.model.RemoteRules` as JSON; NULL: off)."""


class TicketRow(Base):
    """A row of ``tickets``: every ticket ever issued, live or finished."""

    __tablename__ = "tickets"
    # Every index costs each write that touches it a page in the WAL (see
    # SQLITE_PAGE_SIZE), so there are just two besides the primary key (and a partial
    # one that a walk-in's writes never touch). They serve every query of the store
    # but load_snapshot's search for live tickets (tests/hub/test_store.py checks the
    # query plans on SQLite).
    __table_args__ = (
        # Numbers are unique. Day first, so that it also serves every per-day query:
        # the day's numbering in load_snapshot, count_tickets, last_business_day.
        UniqueConstraint("business_day", "number_service", "seq"),
        # Finished visits, for the recent durations of load_snapshot. Partial: a
        # ticket enters it once, when done; other transitions leave it alone.
        # Queries spell the condition as this same literal: with a bound parameter
        # the database cannot always tell that the index applies.
        Index(
            "ix_tickets_done_service_business_day",
            "service",
            "business_day",
            sqlite_where=text(DONE_CONDITION),
            postgresql_where=text(DONE_CONDITION),
        ),
        # A booking is checked in once, whatever the hub remembers. Partial: a walk-in's
        # insert (appointment NULL) does not touch it.
        Index(
            "ux_tickets_appointment",
            "appointment",
            unique=True,
            sqlite_where=text(APPOINTMENT_CONDITION),
            postgresql_where=text(APPOINTMENT_CONDITION),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number_service: Mapped[str] = mapped_column(String(64), ForeignKey("services.code"))
    business_day: Mapped[date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(64), ForeignKey("services.code"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str | None] = mapped_column(String(16))
    lang: Mapped[str] = mapped_column(String(8))
    counter_id: Mapped[str | None] = mapped_column(String(64))
    calls: Mapped[int] = mapped_column(Integer)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    serving_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(64))
    appointment: Mapped[str | None] = mapped_column(String(32))
    slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remote_code: Mapped[str | None] = mapped_column(String(8))
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    passes: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class CounterRow(Base):
    """A row of ``counters``: a desk's definition and its live state."""

    __tablename__ = "counters"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    services: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    current_ticket_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("tickets.id"))
    position: Mapped[int] = mapped_column(Integer)


class EventRow(Base):
    """A row of ``events``: the append-only audit trail of every transition."""

    __tablename__ = "events"
    # AUTOINCREMENT on SQLite: an id is never reused, even after the newest rows were
    # deleted, so it can be the row's sequence number in the city's copy of the log.
    __table_args__ = (Index("ix_events_ticket_id", "ticket_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    ticket_id: Mapped[str | None] = mapped_column(String(32))
    counter_id: Mapped[str | None] = mapped_column(String(64))
    service: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReceiptRow(Base):
    """A row of ``receipts``: a device command already applied, and the answer it got.

    Written in the same transaction as the change the command caused, so a command
    delivered again is answered from here and never applied twice.
    """

    __tablename__ = "receipts"

    sender: Mapped[str] = mapped_column(String(128), primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    reply: Mapped[bytes] = mapped_column(LargeBinary)


class AccountRow(Base):
    """A row of ``broker_accounts``: one login of the office's MQTT broker."""

    __tablename__ = "broker_accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str | None] = mapped_column(String(64))
    counters: Mapped[list[str]] = mapped_column(JSON)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NumberBlockRow(Base):
    """A row of ``number_blocks``: day sequences set aside for a kiosk to issue offline.

    Written in the same transaction as the reservation's receipt; the engine never
    issues a block's numbers itself (see :meth:`~.engine.Engine.reserve`).
    """

    __tablename__ = "number_blocks"
    __table_args__ = (
        UniqueConstraint("business_day", "service", "first_seq"),
        Index("ix_number_blocks_business_day_device", "business_day", "device"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    device: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(64), ForeignKey("services.code"))
    prefix: Mapped[str] = mapped_column(String(8))
    business_day: Mapped[date] = mapped_column(Date)
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AppointmentRow(Base):
    """A row of ``appointments``: a citizen's booked (or held) slot of a service.

    A slot with room for several citizens at once has that many seats; the partial
    unique index lets a seat be held or booked once, so two citizens booking the last
    seat at the same moment cannot both get it, on SQLite and PostgreSQL alike.
    """

    __tablename__ = "appointments"
    __table_args__ = (
        Index(
            "ux_appointments_seat",
            "service",
            "starts_at",
            "seat",
            unique=True,
            sqlite_where=text(ACTIVE_APPOINTMENT_CONDITION),
            postgresql_where=text(ACTIVE_APPOINTMENT_CONDITION),
        ),
        Index("ix_appointments_starts_at", "starts_at"),
        Index("ix_appointments_client", "client"),
        Index("ix_appointments_email", "email"),
        Index("ix_appointments_hold_until", "hold_until"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    service: Mapped[str] = mapped_column(String(64), ForeignKey("services.code"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seat: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(254))
    lang: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    client: Mapped[str | None] = mapped_column(String(64))
    """The address the booking came from (for the per-address limit); erased with the
    e-mail address after the slot."""


class BookingRuleRow(Base):
    """A row of ``booking_rules``: whether and how a service takes appointments."""

    __tablename__ = "booking_rules"

    service: Mapped[str] = mapped_column(String(64), ForeignKey("services.code"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    slot_min: Mapped[int] = mapped_column(Integer)
    seats: Mapped[int] = mapped_column(Integer)
    seats_by_hour: Mapped[list[list[int]]] = mapped_column(JSON)
    """``[weekday, hour, seats]`` triples that differ from ``seats``."""
    horizon_days: Mapped[int] = mapped_column(Integer)
    cancel_before_min: Mapped[int] = mapped_column(Integer)
    hold_min: Mapped[int] = mapped_column(Integer)


class ClosureRow(Base):
    """A row of ``closures``: a day, or part of one, when the office or some services close."""

    __tablename__ = "closures"
    __table_args__ = (Index("ix_closures_day", "day"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    """The site-local day."""
    start: Mapped[time | None] = mapped_column(Time)
    """Local time the closure begins; null: the start of the day."""
    end: Mapped[time | None] = mapped_column(Time)
    """Local time the closure ends; null: the end of the day."""
    reason: Mapped[str] = mapped_column(String(200))
    services: Mapped[list[str]] = mapped_column(JSON)
    """The services closed; empty: every service."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserRow(Base):
    """A row of ``users``: a person who signs in to the admin pages (admin or clerk)."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    session_key: Mapped[str] = mapped_column(String(64))
    """Part of every session cookie of the user; a new one (at sign-out or a new
    password) ends every session signed in before."""
    counters: Mapped[list[str] | None] = mapped_column(JSON)
    """The counters a clerk may work at; null: any counter."""
    services: Mapped[list[str] | None] = mapped_column(JSON)
    """The services a clerk serves (a counter serving none of them is not theirs);
    null: any service."""


class CounterClerkRow(Base):
    """A row of ``counter_clerks``: the clerk signed in at a counter on the web panel.

    The counter's button panel acts for this clerk until ``until`` (the web session's
    lifetime, renewed as the clerk works), sign-out or a switch to another counter.
    """

    __tablename__ = "counter_clerks"
    __table_args__ = (Index("ix_counter_clerks_username", "username"),)

    counter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime())


class AdminAuditRow(Base):
    """A row of ``admin_audit``: one change an admin made to the office's set-up."""

    __tablename__ = "admin_audit"
    __table_args__ = (Index("ix_admin_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    """``admin:<user name>``."""
    kind: Mapped[str] = mapped_column(String(32))
    """What was changed: ``service``, ``counter``, ``user``, ``device``…"""
    object_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    """``create``, ``update``, ``delete``…"""
    summary: Mapped[str] = mapped_column(String(2000))
    """What changed, ``field: before → after`` (never a password or token)."""


class LockoutRow(Base):
    """A row of ``lockouts``: recent wrong attempts at one secret (a PIN, a password).

    Keyed by a digest of what was guessed at (an e-service reference, a user name), so
    the table holds no names; rows of past windows are deleted as new attempts come.
    """

    __tablename__ = "lockouts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiTokenRow(Base):
    """A row of ``api_tokens``: a city system's key to the REST API (kept hashed)."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The system's name; for e-service updates it is the ``system`` they must carry."""
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApplicationRow(Base):
    """A row of ``eservice_applications``: an application's current status."""

    __tablename__ = "eservice_applications"

    reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    system: Mapped[str] = mapped_column(String(64))
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    status_at: Mapped[datetime] = mapped_column(UTCDateTime())
    department: Mapped[str | None] = mapped_column(String(120))
    waiting_position: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApplicationUpdateRow(Base):
    """A row of ``eservice_updates``: every status update received, once per message id."""

    __tablename__ = "eservice_updates"
    __table_args__ = (Index("ix_eservice_updates_reference", "reference"),)

    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    department: Mapped[str | None] = mapped_column(String(120))
    clerk: Mapped[str | None] = mapped_column(String(120))
    waiting_position: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RatingRow(Base):
    """A row of ``ratings``: a citizen's rating of one finished visit (one per ticket)."""

    __tablename__ = "ratings"
    __table_args__ = (Index("ix_ratings_business_day", "business_day"),)

    ticket_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    business_day: Mapped[date] = mapped_column(Date)
    number: Mapped[str] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(64))
    counter_id: Mapped[str | None] = mapped_column(String(64))
    clerk: Mapped[str | None] = mapped_column(String(128))
    """The actor of the ticket's Done in the audit trail (``web:<user>``…), if known."""
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(16))
    """Where the rating came from: ``portal`` or ``counter``."""
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class SignUpRow(Base):
    """A row of ``eservice_signups``: an e-service a citizen was signed up for at a desk."""

    __tablename__ = "eservice_signups"
    __table_args__ = (Index("ix_eservice_signups_business_day", "business_day"),)

    ticket_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eservice: Mapped[str] = mapped_column(String(80), primary_key=True)
    business_day: Mapped[date] = mapped_column(Date)
    service: Mapped[str] = mapped_column(String(64))
    clerk: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class UplinkStateRow(Base):
    """The one row of ``uplink_state``: how far the city holds this branch's audit log."""

    __tablename__ = "uplink_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    """Always 1."""
    acked_seq: Mapped[int] = mapped_column(Integer)
    """The city's last acknowledgement: ``events`` above it are kept for the city."""
    acked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    catalogue_version: Mapped[int | None] = mapped_column(Integer)
    """The version of the city's catalogue last applied (``None``: none yet)."""


class CityServiceRow(Base):
    """A row of ``city_services``: a service the city's catalogue manages at this branch."""

    __tablename__ = "city_services"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    applied: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The fields as the city last set them (``prefix``, ``name_<lang>``, ``hours``): a
    field whose value now differs was changed by the branch's admin, and is kept."""
    kept_local: Mapped[list[str]] = mapped_column(JSON)
    """The fields kept as the branch's admin set them when the catalogue was last applied."""


class SiteConfigRow(Base):
    """A row of ``site_config``: one of the admin's site-wide choices (branding, languages)."""

    __tablename__ = "site_config"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class NotifySubscriptionRow(Base):
    """A row of ``notify_subscriptions``: how a ticket's holder asked to be told.

    The contact (e-mail, phone, a browser's push subscription) is erased a short
    grace after the ticket ends (``ended_at``).
    """

    __tablename__ = "notify_subscriptions"

    ticket: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    contact: Mapped[str] = mapped_column(String(2048))
    lang: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class NotificationRow(Base):
    """A row of ``notifications``: one notice to a ticket's holder, the durable send queue.

    One row per ticket, kind and channel at most: a notice is never made twice. Its
    ``state`` is pending, sending, sent, failed or dropped; no contact is kept here.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_state_next_at", "state", "next_at"),)

    ticket: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    state: Mapped[str] = mapped_column(String(8))
    ahead: Mapped[int | None] = mapped_column(Integer)
    counter: Mapped[str | None] = mapped_column(String(120))
    event_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(200))


metadata: Final = Base.metadata
"""The tables as the models define them; the migrations must produce exactly this."""

SERVICES: Final = metadata.tables["services"]
COUNTERS: Final = metadata.tables["counters"]
TICKETS: Final = metadata.tables["tickets"]
EVENTS: Final = metadata.tables["events"]
RECEIPTS: Final = metadata.tables["receipts"]
ACCOUNTS: Final = metadata.tables["broker_accounts"]
BLOCKS: Final = metadata.tables["number_blocks"]
APPOINTMENTS: Final = metadata.tables["appointments"]
CLOSURES: Final = metadata.tables["closures"]
BOOKING_RULES: Final = metadata.tables["booking_rules"]
NOTIFY_SUBSCRIPTIONS: Final = metadata.tables["notify_subscriptions"]
NOTIFICATIONS: Final = metadata.tables["notifications"]
UPLINK_STATE: Final = metadata.tables["uplink_state"]
CITY_SERVICES: Final = metadata.tables["city_services"]

"""The hub's store: the queue's tables, their migrations, and fast transactional writes.

The engine (:mod:`hub.engine`) decides a :class:`~.model.Change`; the
service layer hands it to :meth:`Store.write`, which persists it in one database
transaction, and only then applies it to the engine. After a restart
:meth:`Store.load_snapshot` gives the engine back everything it needs.

Two databases are supported: SQLite (the appliance default, one file on the hub's
SD card or SSD, in WAL mode) and PostgreSQL through psycopg 3 (a city's server).
The schema is created and upgraded by the Alembic migrations shipped in
``hub/migrations``, run programmatically by :meth:`Store.upgrade`.

All datetimes are stored in UTC and always come back as aware UTC datetimes,
whatever the database returns. History (tickets and events) is deleted only by
:mod:`hub.retention`, once it is older than the office keeps it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Final, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
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
    Row,
    String,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry

from common.errors import PoradovnikError
from common.files import create_private_file
from hub.engine import Snapshot
from hub.model import (
    LIVE_STATES,
    Action,
    Change,
    Counter,
    CounterState,
    Event,
    NumberBlock,
    OpeningHours,
    Priority,
    Service,
    Ticket,
    TicketState,
)
from sync_agent.broker_accounts import Account

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
"""Where the Alembic environment and revisions live (shipped as package data)."""

HEAD_REVISION: Final = "0005_sessions_lockouts"
"""The newest migration; :meth:`Store.upgrade` brings a database to it."""

SQLITE_PAGE_SIZE: Final = 1024
"""The page size of the SQLite databases the store creates (SQLite's default: 4096).

Each commit appends every page it changed to the WAL, whole. A queue transition
changes one row or index entry in each of four or five b-trees (tables and
indexes), so it writes about six pages (with splits) whatever their size: with
1 KiB pages a commit writes a quarter of the bytes. Measured in bench/engine.py,
SQLite's part of an issue→call→done cycle drops from ~270 to ~235 µs. Only a new
database gets it; an existing one keeps its page size (in WAL mode even
``VACUUM`` cannot change it).
"""

_T = TypeVar("_T")
_log = logging.getLogger(__name__)
_CHECKPOINT_INTERVAL_S: Final = 0.5
_WAL_AUTOCHECKPOINT_PAGES: Final = 10_000
_BEGIN_OPTION: Final = "poradovnik_sqlite_begin"
_PG_MIGRATION_LOCK: Final = 0x506F7261  # "Pora": serializes concurrent upgrades
_NUMBER_CONSTRAINT: Final = "uq_tickets_business_day_number_service_seq"
_LIVE_VALUES: Final = tuple(sorted(state.value for state in LIVE_STATES))
_DONE_CONDITION: Final = f"state = '{TicketState.DONE.value}'"


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer a device command got, kept so that it is applied only once."""

    sender: str
    """Who sent it, e.g. ``counter:3`` or ``kiosk:k1``: message ids are unique per sender."""
    msg_id: str
    at: datetime
    reply: bytes


class StoreError(PoradovnikError):
    """The store refused or could not persist a change; nothing of it was written.

    ``code`` says why, for the service layer and the protocol:

    * ``duplicate_number``: a ticket's (service, day, sequence) is already taken,
      i.e. another writer issued the same number; the engine must reload.
    * ``unknown_row``: an update names a ticket or counter the store does not have.
    * ``integrity``: another constraint refused the change (e.g. an unknown service).
    * ``unavailable``: the database could not be reached or stayed locked.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- schema ---------------------------------------------------------------------

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
        back; ``tests/test_store.py`` checks that both produce the same text.
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


class TicketRow(Base):
    """A row of ``tickets``: every ticket ever issued, live or finished."""

    __tablename__ = "tickets"
    # Every index costs each write that touches it a page in the WAL (see
    # SQLITE_PAGE_SIZE), so there are just two besides the primary key. They serve
    # every query of the store but load_snapshot's search for live tickets
    # (tests/test_store.py checks the query plans on SQLite).
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
            sqlite_where=text(_DONE_CONDITION),
            postgresql_where=text(_DONE_CONDITION),
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
    __table_args__ = (Index("ix_events_ticket_id", "ticket_id"),)

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


class SiteConfigRow(Base):
    """A row of ``site_config``: one of the admin's site-wide choices (branding, languages)."""

    __tablename__ = "site_config"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


metadata: Final = Base.metadata
"""The tables as the models define them; the migrations must produce exactly this."""

_services: Final = metadata.tables["services"]
_counters: Final = metadata.tables["counters"]
_tickets: Final = metadata.tables["tickets"]
_events: Final = metadata.tables["events"]
_receipts: Final = metadata.tables["receipts"]
_accounts: Final = metadata.tables["broker_accounts"]
_blocks: Final = metadata.tables["number_blocks"]

# -- the write fast path ----------------------------------------------------------
#
# A queue transition is one to three tiny statements and a commit, and the hub
# must sustain thousands a second (bench/engine.py). SQLAlchemy's bookkeeping
# around each statement and transaction (events, parameter handling, result
# objects) would cost about as much as SQLite's own work: measured per
# transaction, BEGIN IMMEDIATE and COMMIT take 21 µs through ``Connection.begin``
# and 7 µs on the DBAPI connection, while SQLite's whole work for a transition is
# about 75 µs. So :meth:`Store.write` runs the transaction and its statements
# straight on the writer's DBAPI connection (:class:`_Writer`). What stays
# SQLAlchemy's: the statements (Core, compiled once per dialect), the parameter
# conversions (each bind type's own processor: UTC timestamps, dates, JSON) and the
# connection's life (pool, pragmas). Parameters are plain tuples, built straight
# from the model objects by the ``_*_row``/``_*_changes`` functions below.

_TICKET_COLUMNS: Final = tuple(column.name for column in _tickets.c)
_INSERT_TICKET: Final = insert(_tickets).values({name: bindparam(name) for name in _TICKET_COLUMNS})

_TICKET_CHANGES: Final = (
    "service",
    "arrived_at",
    "state",
    "priority",
    "lang",
    "counter_id",
    "calls",
    "called_at",
    "serving_at",
    "finished_at",
)
"""What a transition may change in a ticket's row (the rest is fixed at issue)."""

# An UPDATE's parameters may not be named like its columns: hence ``new_…`` and ``key``.
_UPDATE_TICKET: Final = (
    update(_tickets)
    .values({name: bindparam(f"new_{name}") for name in _TICKET_CHANGES})
    .where(_tickets.c.id == bindparam("key"))
)
_UPDATE_COUNTER: Final = (
    update(_counters)
    .values(state=bindparam("new_state"), current_ticket_id=bindparam("new_current_ticket_id"))
    .where(_counters.c.id == bindparam("key"))
)
_RECEIPT_COLUMNS: Final = tuple(column.name for column in _receipts.c)
_INSERT_RECEIPT: Final = insert(_receipts).values(
    {name: bindparam(name) for name in _RECEIPT_COLUMNS}
)
_SELECT_RECEIPT: Final = select(_receipts.c.reply).where(
    _receipts.c.sender == bindparam("sender"), _receipts.c.msg_id == bindparam("msg_id")
)
_EVENT_COLUMNS: Final = tuple(column.name for column in _events.c if column.name != "id")
_INSERT_EVENT: Final = insert(_events).values({name: bindparam(name) for name in _EVENT_COLUMNS})
_BLOCK_COLUMNS: Final = tuple(column.name for column in _blocks.c)
_INSERT_BLOCK: Final = insert(_blocks).values({name: bindparam(name) for name in _BLOCK_COLUMNS})


def _ticket_values(t: Ticket) -> dict[str, Any]:
    """A ticket's column values, by column name."""
    return {
        "id": t.id,
        "number_service": t.number_service,
        "business_day": t.business_day,
        "seq": t.seq,
        "number": t.number,
        "service": t.service,
        "issued_at": t.issued_at,
        "arrived_at": t.arrived_at,
        "state": t.state.value,
        "priority": None if t.priority is None else t.priority.value,
        "lang": t.lang,
        "counter_id": t.counter,
        "calls": t.calls,
        "called_at": t.called_at,
        "serving_at": t.serving_at,
        "finished_at": t.finished_at,
        "origin": t.origin,
    }


def _ticket_row(t: Ticket) -> tuple[Any, ...]:
    """``_INSERT_TICKET``'s parameters: every column, in the table's order."""
    values = _ticket_values(t)
    return tuple(values[name] for name in _TICKET_COLUMNS)


def _ticket_changes(t: Ticket) -> tuple[Any, ...]:
    """``_UPDATE_TICKET``'s parameters: the :data:`_TICKET_CHANGES`, then the key."""
    values = _ticket_values(t)
    return (*(values[name] for name in _TICKET_CHANGES), t.id)


def _block_row(b: NumberBlock) -> tuple[Any, ...]:
    """``_INSERT_BLOCK``'s parameters: every column, in the table's order."""
    values = {
        "id": b.id,
        "device": b.device,
        "service": b.service,
        "prefix": b.prefix,
        "business_day": b.business_day,
        "first_seq": b.first_seq,
        "last_seq": b.last_seq,
        "reserved_at": b.reserved_at,
    }
    return tuple(values[name] for name in _BLOCK_COLUMNS)


def _counter_changes(c: Counter) -> tuple[Any, ...]:
    """``_UPDATE_COUNTER``'s parameters: state, current ticket, then the key."""
    return (c.state.value, c.current, c.id)


def _event_row(e: Event) -> tuple[Any, ...]:
    """``_INSERT_EVENT``'s parameters: every column but the generated id, in order."""
    return (
        e.at,
        e.action.value,
        e.actor,
        e.ticket_id,
        e.counter_id,
        e.service,
        e.from_state,
        e.to_state,
        dict(e.detail),
    )


class _Statement:
    """A Core statement compiled once for a dialect, with its parameters' processors.

    ``names`` are the statement's bind parameters in the order of the tuples that
    :meth:`params` converts; for a positional driver (sqlite3) that must be the
    compiled order, which is checked here, so a tuple goes to the driver as it is.
    """

    def __init__(self, statement: Any, names: Sequence[str], dialect: Dialect) -> None:
        # for_executemany: no implicit RETURNING of generated keys.
        compiled = statement.compile(dialect=dialect, for_executemany=True)
        if compiled.escaped_bind_names:
            raise AssertionError(f"bind names need escaping: {compiled.escaped_bind_names}")
        self.named = not compiled.positional
        if self.named:
            expected = set(compiled.binds) == set(names)
        else:
            expected = list(compiled.positiontup or ()) == list(names)
        if not expected:
            raise AssertionError(f"{compiled.string}: parameters are not {names}")
        self.sql: str = compiled.string
        self.names = tuple(names)
        processors = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        ]
        self._convert = tuple((i, fn) for i, fn in enumerate(processors) if fn is not None)

    def params(self, row: tuple[Any, ...]) -> Sequence[Any] | dict[str, Any]:
        """Convert ``row`` (model values in :attr:`names` order) for the driver."""
        values: Sequence[Any] = row
        if self._convert:
            converted = list(row)
            for i, convert in self._convert:
                converted[i] = convert(converted[i])
            values = converted
        return dict(zip(self.names, values, strict=True)) if self.named else values


class _Writer:
    """The store's write connection: held open, with its cursor and statements.

    Queue writes go through this one pooled connection, one at a time: SQLite has
    a single writer anyway, and skipping the pool's checkout and return per
    transaction is part of the fast path. Catalog writes use the same connection
    through SQLAlchemy (:meth:`Store._transaction`); neither leaves a transaction
    open behind it.
    """

    def __init__(self, conn: Connection) -> None:
        dialect = conn.dialect
        self.conn = conn
        self.dbapi = _dbapi_connection(conn)
        self.cursor = self.dbapi.cursor()
        # SQLite: take the write lock up front (see _configure_sqlite); psycopg
        # begins a transaction by itself at the first statement.
        self.begin = "BEGIN IMMEDIATE" if dialect.name == "sqlite" else None
        self.insert_ticket = _Statement(_INSERT_TICKET, _TICKET_COLUMNS, dialect)
        update_ticket = [f"new_{name}" for name in _TICKET_CHANGES] + ["key"]
        self.update_ticket = _Statement(_UPDATE_TICKET, update_ticket, dialect)
        update_counter = ("new_state", "new_current_ticket_id", "key")
        self.update_counter = _Statement(_UPDATE_COUNTER, update_counter, dialect)
        self.insert_event = _Statement(_INSERT_EVENT, _EVENT_COLUMNS, dialect)
        self.insert_receipt = _Statement(_INSERT_RECEIPT, _RECEIPT_COLUMNS, dialect)
        self.select_receipt = _Statement(_SELECT_RECEIPT, ("sender", "msg_id"), dialect)
        self.insert_block = _Statement(_INSERT_BLOCK, _BLOCK_COLUMNS, dialect)

    def receipt(self, sender: str, msg_id: str) -> bytes | None:
        """Read a stored receipt's answer (and end the read's transaction, if any)."""
        self.cursor.execute(self.select_receipt.sql, self.select_receipt.params((sender, msg_id)))
        row = self.cursor.fetchone()
        self.dbapi.rollback()
        return None if row is None else bytes(row[0])

    def write(self, change: Change, receipt: Receipt | None) -> None:
        """Persist ``change`` in one transaction; the caller rolls back on an error."""
        tickets = _latest(change.tickets, key=_ticket_key)
        counters = _latest(change.counters, key=_counter_key)
        new = [t for t in tickets if t.id in change.new_ticket_ids]
        updated = [t for t in tickets if t.id not in change.new_ticket_ids]
        # Parameters first: a value a type refuses (a naive datetime) raises before
        # the transaction begins.
        inserts = [self.insert_ticket.params(_ticket_row(t)) for t in new]
        ticket_updates = [self.update_ticket.params(_ticket_changes(t)) for t in updated]
        counter_updates = [self.update_counter.params(_counter_changes(c)) for c in counters]
        events = [self.insert_event.params(_event_row(e)) for e in change.events]
        blocks = [self.insert_block.params(_block_row(b)) for b in change.blocks]
        receipts = [
            self.insert_receipt.params((r.sender, r.msg_id, r.at, r.reply))
            for r in ([receipt] if receipt is not None else [])
        ]
        if self.begin is not None:
            self.cursor.execute(self.begin)
        _execute(self.cursor, self.insert_ticket.sql, inserts)
        for ticket, params in zip(updated, ticket_updates, strict=True):
            self._update(self.update_ticket.sql, params, "ticket", ticket.id)
        for counter, params in zip(counters, counter_updates, strict=True):
            self._update(self.update_counter.sql, params, "counter", counter.id)
        _execute(self.cursor, self.insert_event.sql, events)
        _execute(self.cursor, self.insert_block.sql, blocks)
        _execute(self.cursor, self.insert_receipt.sql, receipts)
        self.dbapi.commit()

    def _update(self, sql: str, params: Any, what: str, key: str) -> None:
        """Run one UPDATE and make sure that it found its row."""
        self.cursor.execute(sql, params)
        if self.cursor.rowcount != 1:
            raise StoreError("unknown_row", f"the store has no {what} {key!r}")

    def rollback(self) -> bool:
        """End a failed transaction; ``False`` when the connection is unusable."""
        try:
            self.dbapi.rollback()
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Give the connection back to the pool (which rolls back and closes it)."""
        with contextlib.suppress(Exception):
            self.cursor.close()
        with contextlib.suppress(Exception):
            self.conn.close()


def _execute(cursor: DBAPICursor, sql: str, params: Sequence[Any]) -> None:
    """Run ``sql`` once per parameter set: none, one, or several (executemany)."""
    if len(params) == 1:
        cursor.execute(sql, params[0])
    elif params:
        cursor.executemany(sql, params)


# -- the store ------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of the SQLite database file at ``path``."""
    return f"sqlite+pysqlite:///{Path(path).expanduser().resolve()}"


class Store:
    """Persistence of the queue: catalog, tickets, counters' state and the audit trail.

    One instance per process, shared by its threads: reads take pooled
    connections, writes go one at a time through a single writer connection. The
    service layer must still serialize decide-write-apply, as the engine requires.
    Usable as a context manager that closes it.
    """

    def __init__(self, url: str) -> None:
        """Connect to ``url`` (``sqlite+pysqlite:///…`` or ``postgresql+psycopg://…``).

        Nothing is created yet; call :meth:`upgrade` to create or migrate the schema.
        """
        parsed = make_url(url)
        self.url = url
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:") or "memory" in (
                parsed.query.get("mode"),
                parsed.query.get("vfs"),
            ):
                raise ValueError(
                    "an in-memory SQLite database cannot be shared by the store's "
                    "connections; use a file (a temporary directory will do)"
                )
            if not database.startswith("file:"):
                folder = Path(database).expanduser().parent
                try:
                    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    msg = f"cannot create the database's folder {folder}: {exc.strerror}"
                    raise StoreError("unavailable", msg) from None
                try:
                    # Owner-only whatever the umask; SQLite gives -wal and -shm its mode.
                    create_private_file(Path(database).expanduser())
                except OSError as exc:
                    msg = f"cannot create the database {database}: {exc.strerror}"
                    raise StoreError("unavailable", msg) from None
        self.db: Engine = create_engine(parsed)
        """The SQLAlchemy engine, for migrations, reports and tests."""
        if self.db.dialect.name == "sqlite":
            _configure_sqlite(self.db)
        self._write_db = self.db.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._write_lock = threading.Lock()
        self._writer: _Writer | None = None
        self._checkpointer: _Checkpointer | None = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection; the store must not be used afterwards."""
        with self._write_lock:
            if self._checkpointer is not None:
                self._checkpointer.stop()
                self._checkpointer = None
            self._drop_writer()
        self.db.dispose()

    def upgrade(self) -> None:
        """Create the schema or bring it to the newest migration; safe to repeat.

        Raises :class:`StoreError` (code ``unavailable``) when the database cannot be
        reached or opened: the hub's first contact with it, so the message says where.
        """
        try:
            with self._write_db.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Two hub processes starting at once must not both create the tables.
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                config = alembic_config(self.url)
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except OperationalError as exc:
            where = make_url(self.url).render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError("unavailable", f"cannot open the database {where}: {reason}") from None

    def revision(self) -> str | None:
        """The database's schema revision (``None`` before the first upgrade)."""
        with self.db.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def downgrade(self, revision: str) -> None:
        """Take the schema back to ``revision`` (an older version's head), with its data.

        For going back to an older version of the hub, whose code does not know this
        version's migrations. What only the newer schema holds is lost. Raises
        :class:`StoreError` (code ``unknown_revision``) when ``revision`` is not one of
        this version's migrations.
        """
        try:
            with self._write_db.begin() as conn:
                config = alembic_config(self.url)
                config.attributes["connection"] = conn
                command.downgrade(config, revision)
        except CommandError as exc:
            raise StoreError("unknown_revision", f"cannot downgrade to {revision}: {exc}") from None

    # -- the queue -----------------------------------------------------------------

    def write(self, change: Change, *, receipt: Receipt | None = None) -> None:
        """Persist ``change`` in one transaction: new tickets, updates, counters, events.

        ``receipt``, the answer to the device command that caused the change, is
        written in the same transaction. Raises :class:`StoreError` (and writes
        nothing) when the database refuses it, e.g. with code ``duplicate_number``
        when another writer already issued one of the new tickets' numbers.
        """
        if not (change.tickets or change.counters or change.events or change.blocks or receipt):
            return
        dbapi = self.db.dialect.loaded_dbapi
        with self._write_lock:
            try:
                writer = self._open_writer()
                try:
                    writer.write(change, receipt)
                except BaseException:
                    if not writer.rollback():
                        self._drop_writer()
                    raise
            # The writer raises the driver's own exceptions; connecting, SQLAlchemy's.
            except (IntegrityError, dbapi.IntegrityError) as exc:
                raise _integrity_error(exc, change) from exc
            except (OperationalError, dbapi.OperationalError) as exc:
                reason = exc.orig if isinstance(exc, OperationalError) else exc
                raise StoreError("unavailable", f"the database is unavailable: {reason}") from exc
            if self._checkpointer is not None:
                self._checkpointer.pending = True

    def load_snapshot(self, day: date, window: int) -> Snapshot:
        """Read what an engine needs to resume on business day ``day``.

        ``window`` is how many recent visit durations per service to return (the
        engine's :attr:`~.engine.QueuePolicy.service_time_window`).
        """
        with self.db.connect() as conn:
            if conn.dialect.name == "postgresql":
                # One consistent view across the queries (SQLite's BEGIN gives one).
                conn.execution_options(isolation_level="REPEATABLE READ")
            services = _load_services(conn)
            counters = _load_counters(conn)
            # No index finds the live tickets: this scans the table (at 500,000
            # tickets ~100 MB, ~150 ms when cached). An index on the state would be
            # rewritten by every transition, which costs the write path ~13 %.
            live = conn.execute(
                select(_tickets)
                .where(_tickets.c.state.in_(_LIVE_VALUES))
                .order_by(_tickets.c.issued_at, _tickets.c.id)
            )
            tickets = [_ticket_from_row(row) for row in live]
            numbering = conn.execute(
                select(_tickets.c.number_service, func.max(_tickets.c.seq), func.count())
                .where(_tickets.c.business_day == day)
                .group_by(_tickets.c.number_service)
            ).all()
            durations: dict[str, list[float]] = {}
            if window > 0:
                for service in services:
                    recent = _recent_durations(conn, service.code, window)
                    if recent:
                        durations[service.code] = recent
            blocks, delivered = _load_blocks(conn, day)
        return Snapshot(
            day=day,
            services=services,
            counters=counters,
            tickets=tickets,
            last_seq={code: int(seq) for code, seq, _ in numbering},
            issued={code: int(count) for code, _, count in numbering},
            durations=durations,
            blocks=blocks,
            delivered=delivered,
        )

    # -- number blocks -------------------------------------------------------------

    def number_block(self, device: str, service: str, day: date, seq: int) -> NumberBlock | None:
        """The block of ``device`` that holds sequence ``seq`` of ``service`` on ``day``."""
        query = select(_blocks).where(
            _blocks.c.business_day == day,
            _blocks.c.device == device,
            _blocks.c.service == service,
            _blocks.c.first_seq <= seq,
            _blocks.c.last_seq >= seq,
        )
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _block_from_row(row)

    def number_blocks(self, day: date) -> list[NumberBlock]:
        """Every block reserved for ``day``, in the order they were reserved."""
        with self.db.connect() as conn:
            return _load_blocks(conn, day)[0]

    # -- the catalog ---------------------------------------------------------------

    def save_service(self, service: Service, position: int | None = None) -> None:
        """Add or replace a service's definition.

        ``position`` orders the services for display; ``None`` keeps an existing
        service's place and appends a new one at the end.
        """
        values: dict[str, Any] = {
            "prefix": service.prefix,
            "names": dict(service.names),
            "hours": hours_to_json(service.hours),
            "daily_limit": service.daily_limit,
            "open": service.open,
            "weight": float(service.weight),
            "default_service_time_s": service.default_service_time_s,
        }
        self._upsert(_services, _services.c.code, service.code, values, {}, position)

    def save_counter(self, counter: Counter, position: int | None = None) -> None:
        """Add a counter, or replace an existing one's definition (name and services).

        A new counter starts with ``counter.state`` and ``counter.current``; for an
        existing one they are left alone, because they belong to the queue.
        ``position`` works as in :meth:`save_service`.
        """
        values: dict[str, Any] = {"name": counter.name, "services": list(counter.services)}
        initial = {"state": counter.state.value, "current_ticket_id": counter.current}
        self._upsert(_counters, _counters.c.id, counter.id, values, initial, position)

    def services(self) -> list[Service]:
        """Every service, in display order."""
        with self.db.connect() as conn:
            return _load_services(conn)

    def counters(self) -> list[Counter]:
        """Every counter with its live state, in display order."""
        with self.db.connect() as conn:
            return _load_counters(conn)

    # -- queries -------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> Ticket | None:
        """The stored ticket ``ticket_id`` (live or finished), or ``None``."""
        with self.db.connect() as conn:
            row = conn.execute(select(_tickets).where(_tickets.c.id == ticket_id)).first()
        return None if row is None else _ticket_from_row(row)

    def events(self, ticket_id: str | None = None, limit: int = 1000) -> list[Event]:
        """The newest ``limit`` audit rows (of one ticket, or all), oldest first."""
        query = select(_events).order_by(_events.c.id.desc()).limit(limit)
        if ticket_id is not None:
            query = query.where(_events.c.ticket_id == ticket_id)
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return [_event_from_row(row) for row in reversed(rows)]

    def last_business_day(self) -> date | None:
        """The latest business day any ticket was issued on (``None`` before the first).

        For the service layer at start-up: resume the engine on this day, then roll
        it over to today, so that yesterday's leftovers expire and counters pause.
        """
        with self.db.connect() as conn:
            day: date | None = conn.execute(select(func.max(_tickets.c.business_day))).scalar()
        return day

    def receipt(self, sender: str, msg_id: str) -> bytes | None:
        """The stored answer to ``sender``'s command ``msg_id``, if it was applied.

        Asked before every device command, so it takes the writer's fast path too.
        """
        with self._write_lock:
            writer = self._open_writer()
            try:
                return writer.receipt(sender, msg_id)
            except BaseException:
                if not writer.rollback():
                    self._drop_writer()
                raise

    # -- broker accounts -----------------------------------------------------------

    def save_account(self, account: Account, *, at: datetime) -> None:
        """Add a broker account, or replace the one with the same user name."""
        values = {
            "role": account.role,
            "device_id": account.device_id,
            "counters": list(account.counters),
            "password_hash": account.password_hash,
            "created_at": at,
        }
        with self._transaction() as conn:
            found = conn.execute(
                update(_accounts).where(_accounts.c.username == account.username).values(values)
            ).rowcount
            if not found:
                conn.execute(insert(_accounts).values(username=account.username, **values))

    def accounts(self) -> list[Account]:
        """Every broker account, by user name."""
        with self.db.connect() as conn:
            rows = conn.execute(select(_accounts).order_by(_accounts.c.username)).all()
        return [
            Account(
                row.username,
                row.role,
                device_id=row.device_id,
                counters=tuple(row.counters),
                password_hash=row.password_hash,
            )
            for row in rows
        ]

    def delete_account(self, username: str) -> bool:
        """Remove a broker account; ``False`` if there was none by that name."""
        with self._transaction() as conn:
            deleted = conn.execute(
                delete(_accounts).where(_accounts.c.username == username)
            ).rowcount
        return bool(deleted)

    def count_tickets(self, day: date | None = None) -> int:
        """How many tickets were issued on business day ``day``, or ever."""
        query = select(func.count()).select_from(_tickets)
        if day is not None:
            query = query.where(_tickets.c.business_day == day)
        with self.db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction on the writer's connection, for tables beside the queue.

        Users, API tokens, e-service applications and site settings are written
        here, one at a time with the queue's own writes.
        """
        return self._transaction()

    # -- internals -------------------------------------------------------------------

    def _open_writer(self) -> _Writer:
        """The writer, connected at the first write (call it under the write lock)."""
        writer = self._writer
        if writer is None:
            writer = self._writer = _Writer(self._write_db.connect())
            if writer.conn.dialect.name == "sqlite" and self._checkpointer is None:
                self._checkpointer = _Checkpointer(self.db)
        return writer

    def _drop_writer(self) -> None:
        """Close the writer (call it under the write lock); the next write reconnects."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A SQLAlchemy transaction on the writer's connection (BEGIN IMMEDIATE on SQLite).

        For the catalog's rare writes, which need no fast path.
        """
        with self._write_lock:
            writer = self._open_writer()
            try:
                with writer.conn.begin():
                    yield writer.conn
            except BaseException:
                # The writer's cursor may not survive what SQLAlchemy did about the
                # error (e.g. invalidate a broken connection): start afresh.
                self._drop_writer()
                raise
            if self._checkpointer is not None:
                self._checkpointer.pending = True

    def _upsert(
        self,
        table: Any,
        key_column: Any,
        key: str,
        values: dict[str, Any],
        initial: dict[str, Any],
        position: int | None,
    ) -> None:
        try:
            with self._transaction() as conn:
                if position is not None:
                    values = {**values, "position": position}
                statement = update(table).where(key_column == key).values(**values)
                if conn.execute(statement).rowcount:
                    return
                if position is None:
                    last = conn.execute(select(func.max(table.c.position))).scalar()
                    position = 0 if last is None else int(last) + 1
                row = {key_column.name: key, **values, **initial, "position": position}
                conn.execute(insert(table).values(**row))
        except IntegrityError as exc:
            raise StoreError("integrity", f"cannot save {key!r}: {exc.orig}") from exc


def alembic_config(url: str) -> Config:
    """Build the Alembic configuration of the hub's migrations in code (no alembic.ini).

    Useful for running Alembic commands (``history``, ``revision --autogenerate``)
    from a script: ``alembic.command.revision(alembic_config(url), autogenerate=True)``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# -- SQLite -----------------------------------------------------------------------


def _configure_sqlite(db: Engine) -> None:
    """Set the pragmas and take over BEGIN, so write transactions start IMMEDIATE.

    pysqlite's own transaction handling starts a transaction only at the first
    write and never for reads; a read-then-write transaction could then fail with
    "database is locked" when it upgrades its lock. Here SQLAlchemy emits BEGIN
    itself: ``BEGIN IMMEDIATE`` (the write lock up front, waiting ``busy_timeout``
    for it) on connections with the write option, plain ``BEGIN`` otherwise. The
    queue's write path (:class:`_Writer`) sends its own ``BEGIN IMMEDIATE``.
    """

    @event.listens_for(db, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Before anything else: it only takes effect while the file is empty,
            # and switching to WAL already writes the first page.
            cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            # The store's checkpointer thread copies the WAL into the database; a
            # committing connection only does it itself past 10,000 pages (~10 MB),
            # a safety net.
            cursor.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
        finally:
            cursor.close()

    @event.listens_for(db, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION)
        # Straight to the driver (SQLAlchemy's pysqlite BEGIN handling is off).
        conn.connection.dbapi_connection.execute(f"BEGIN {mode}" if mode else "BEGIN")  # type: ignore[union-attr]


class _Checkpointer:
    """Checkpoints a SQLite WAL in the background, so commits never wait for fsync.

    In WAL mode with ``synchronous=NORMAL`` a commit only appends to the WAL; the
    expensive part (copying pages into the database file and fsyncing it) happens
    at checkpoints, which SQLite otherwise runs inside whichever commit crosses the
    threshold. This thread runs a PASSIVE checkpoint (which blocks nobody) shortly
    after writes instead.
    """

    def __init__(self, db: Engine, interval_s: float = _CHECKPOINT_INTERVAL_S) -> None:
        self.pending = False
        """Set by the writer after a commit; the thread checkpoints when it is set."""
        self._db = db
        self._interval = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="poradovnik-store-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one checkpoint's time)."""
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            if not self.pending:
                continue
            self.pending = False
            try:
                with self._db.connect() as conn:
                    cursor = _dbapi_connection(conn).cursor()
                    try:
                        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    finally:
                        cursor.close()
            except Exception:
                _log.exception("WAL checkpoint failed; SQLite will checkpoint on commit")


# -- conversions ------------------------------------------------------------------


def hours_to_json(hours: OpeningHours) -> dict[str, Any]:
    """Serialize opening hours: ``{"always": bool, "days": {"0": [["08:00", "12:00"]]}}``."""
    return {
        "always": hours.always,
        "days": {
            str(day): [[_time_text(start), _time_text(end)] for start, end in spans]
            for day, spans in sorted(hours.days.items())
        },
    }


def hours_from_json(data: Mapping[str, Any]) -> OpeningHours:
    """Read opening hours written by :func:`hours_to_json`."""
    days = {
        int(day): tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in spans)
        for day, spans in data.get("days", {}).items()
    }
    return OpeningHours(days=days, always=bool(data.get("always", True)))


def _time_text(value: time) -> str:
    if value.second or value.microsecond:
        return value.isoformat()
    return f"{value:%H:%M}"


def _ticket_key(ticket: Ticket) -> str:
    return ticket.id


def _counter_key(counter: Counter) -> str:
    return counter.id


def _latest(items: Iterable[_T], *, key: Callable[[_T], str]) -> list[_T]:
    """The last version of each item (by ``key``), in order of first appearance."""
    found: dict[str, _T] = {}
    for item in items:
        found[key(item)] = item
    return list(found.values())


def _ticket_from_row(row: Row[Any]) -> Ticket:
    return Ticket(
        id=row.id,
        number_service=row.number_service,
        business_day=row.business_day,
        seq=row.seq,
        number=row.number,
        service=row.service,
        issued_at=row.issued_at,
        arrived_at=row.arrived_at,
        state=TicketState(row.state),
        priority=None if row.priority is None else Priority(row.priority),
        lang=row.lang,
        counter=row.counter_id,
        calls=row.calls,
        called_at=row.called_at,
        serving_at=row.serving_at,
        finished_at=row.finished_at,
        origin=row.origin,
    )


def _event_from_row(row: Row[Any]) -> Event:
    return Event(
        at=row.at,
        action=Action(row.action),
        actor=row.actor,
        ticket_id=row.ticket_id,
        counter_id=row.counter_id,
        service=row.service,
        from_state=row.from_state,
        to_state=row.to_state,
        detail=dict(row.detail or {}),
    )


def _block_from_row(row: Row[Any]) -> NumberBlock:
    return NumberBlock(
        id=row.id,
        device=row.device,
        service=row.service,
        prefix=row.prefix,
        business_day=row.business_day,
        first_seq=row.first_seq,
        last_seq=row.last_seq,
        reserved_at=row.reserved_at,
    )


def _load_blocks(conn: Connection, day: date) -> tuple[list[NumberBlock], set[tuple[str, int]]]:
    """The blocks of ``day``, and (service, sequence) of the day's tickets issued offline."""
    rows = conn.execute(
        select(_blocks)
        .where(_blocks.c.business_day == day)
        .order_by(_blocks.c.reserved_at, _blocks.c.id)
    ).all()
    blocks = [_block_from_row(row) for row in rows]
    if not blocks:
        return blocks, set()
    offline = conn.execute(
        select(_tickets.c.number_service, _tickets.c.seq).where(
            _tickets.c.business_day == day, _tickets.c.origin != "hub"
        )
    ).all()
    return blocks, {(code, int(seq)) for code, seq in offline}


def _load_services(conn: Connection) -> list[Service]:
    rows = conn.execute(select(_services).order_by(_services.c.position, _services.c.code))
    return [
        Service(
            code=row.code,
            prefix=row.prefix,
            names=dict(row.names),
            hours=hours_from_json(row.hours),
            daily_limit=row.daily_limit,
            open=bool(row.open),
            weight=float(row.weight),
            default_service_time_s=int(row.default_service_time_s),
        )
        for row in rows
    ]


def _load_counters(conn: Connection) -> list[Counter]:
    rows = conn.execute(select(_counters).order_by(_counters.c.position, _counters.c.id))
    return [
        Counter(
            id=row.id,
            name=row.name,
            services=tuple(row.services),
            state=CounterState(row.state),
            current=row.current_ticket_id,
        )
        for row in rows
    ]


def _recent_durations(conn: Connection, service: str, window: int) -> list[float]:
    """The last ``window`` visit durations of ``service``, oldest first."""
    rows = conn.execute(
        select(_tickets.c.called_at, _tickets.c.finished_at)
        .where(
            _tickets.c.service == service,
            text(_DONE_CONDITION),
            _tickets.c.called_at.is_not(None),
            _tickets.c.finished_at.is_not(None),
        )
        # By day first, so that the (service, business_day) index finds the newest.
        .order_by(
            _tickets.c.business_day.desc(), _tickets.c.finished_at.desc(), _tickets.c.id.desc()
        )
        .limit(window)
    ).all()
    return [(finished - called).total_seconds() for called, finished in reversed(rows)]


def _dbapi_connection(conn: Connection) -> DBAPIConnection:
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise StoreError("unavailable", "the database connection is closed")
    return raw


def _integrity_error(exc: Exception, change: Change) -> StoreError:
    orig = exc.orig if isinstance(exc, IntegrityError) else exc
    message = str(orig)
    constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
    clash = constraint == _NUMBER_CONSTRAINT or (
        "UNIQUE constraint failed" in message and "tickets.seq" in message
    )
    if clash:
        numbers = ", ".join(
            f"{t.number} ({t.number_service}, {t.business_day}, seq {t.seq})"
            for t in change.tickets
            if t.id in change.new_ticket_ids
        )
        return StoreError(
            "duplicate_number",
            f"ticket number already issued by another writer: {numbers}; reload the queue",
        )
    return StoreError("integrity", f"the store refused the change: {message}")

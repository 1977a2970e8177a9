"""The hub's store: the queue's tables, their migrations, and fast transactional writes.

The engine (:mod:`poradovnik.hub.engine`) decides a :class:`~.model.Change`; the
service layer hands it to :meth:`Store.write`, which persists it in one database
transaction, and only then applies it to the engine. After a restart
:meth:`Store.load_snapshot` gives the engine back everything it needs.

Two databases are supported: SQLite (the appliance default, one file on the hub's
SD card or SSD, in WAL mode) and PostgreSQL through psycopg 3 (a city's server).
The schema is created and upgraded by the Alembic migrations shipped in
``poradovnik/hub/migrations``, run programmatically by :meth:`Store.upgrade`.

All datetimes are stored in UTC and always come back as aware UTC datetimes,
whatever the database returns. History (tickets and events) is never deleted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Final, TypeVar

from alembic import command
from alembic.config import Config
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
    MetaData,
    Row,
    String,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    create_engine,
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

from poradovnik.hub.engine import Snapshot
from poradovnik.hub.model import (
    LIVE_STATES,
    Action,
    Change,
    Counter,
    CounterState,
    Event,
    OpeningHours,
    Priority,
    Service,
    Ticket,
    TicketState,
)

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
"""Where the Alembic environment and revisions live (shipped as package data)."""

HEAD_REVISION: Final = "0001_initial"
"""The newest migration; :meth:`Store.upgrade` brings a database to it."""

_T = TypeVar("_T")
_log = logging.getLogger(__name__)
_CHECKPOINT_INTERVAL_S: Final = 0.5
_WAL_AUTOCHECKPOINT_PAGES: Final = 10_000
_BEGIN_OPTION: Final = "poradovnik_sqlite_begin"
_PG_MIGRATION_LOCK: Final = 0x506F7261  # "Pora": serializes concurrent upgrades
_NUMBER_CONSTRAINT: Final = "uq_tickets_number_service_business_day_seq"
_LIVE_VALUES: Final = tuple(sorted(state.value for state in LIVE_STATES))
_LIVE_CONDITION: Final = "state IN ({})".format(", ".join(f"'{v}'" for v in _LIVE_VALUES))


class StoreError(Exception):
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
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} (the store keeps aware UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Turn whatever the database returned into an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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
    __table_args__ = (
        UniqueConstraint("number_service", "business_day", "seq"),
        # Only live tickets: tiny, serves load_snapshot; reports use the day index.
        Index(
            "ix_tickets_state",
            "state",
            sqlite_where=text(_LIVE_CONDITION),
            postgresql_where=text(_LIVE_CONDITION),
        ),
        Index("ix_tickets_business_day_service", "business_day", "service"),
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


metadata: Final = Base.metadata
"""The tables as the models define them; the migrations must produce exactly this."""

_services: Final = metadata.tables["services"]
_counters: Final = metadata.tables["counters"]
_tickets: Final = metadata.tables["tickets"]
_events: Final = metadata.tables["events"]

# The write fast path's statements (see _Prepared).
_INSERT_TICKET: Final = insert(_tickets)
_UPDATE_TICKET: Final = (
    update(_tickets)
    .where(_tickets.c.id == bindparam("b_id"))
    .values(
        service=bindparam("b_service"),
        arrived_at=bindparam("b_arrived_at"),
        state=bindparam("b_state"),
        priority=bindparam("b_priority"),
        lang=bindparam("b_lang"),
        counter_id=bindparam("b_counter_id"),
        calls=bindparam("b_calls"),
        called_at=bindparam("b_called_at"),
        serving_at=bindparam("b_serving_at"),
        finished_at=bindparam("b_finished_at"),
    )
)
_UPDATE_COUNTER: Final = (
    update(_counters)
    .where(_counters.c.id == bindparam("b_id"))
    .values(state=bindparam("b_state"), current_ticket_id=bindparam("b_current"))
)
_INSERT_EVENT: Final = insert(_events).values(
    {column.name: bindparam(column.name) for column in _events.c if column.name != "id"}
)


class _Prepared:
    """A Core statement compiled once for a dialect, executed on the DBAPI cursor.

    This is the write fast path. The statements are SQLAlchemy Core, the SQL text
    and the type conversions (UTC timestamps, dates, JSON) are SQLAlchemy's, and the
    transaction is a SQLAlchemy one; only the per-execution bookkeeping is skipped,
    because for these tiny statements it costs as much as SQLite's own work
    (measured on SQLite: about 360 µs per write with ``Connection.execute``, 270 µs
    with ``exec_driver_sql``, 215 µs like this). DBAPI errors therefore arrive
    unwrapped; :meth:`Store.write` handles both kinds.
    """

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        # for_executemany: no implicit RETURNING of generated keys.
        compiled = statement.compile(dialect=dialect, for_executemany=True)
        if compiled.escaped_bind_names:
            raise AssertionError(f"bind names need escaping: {compiled.escaped_bind_names}")
        self.sql: str = compiled.string
        self.positional = bool(compiled.positional)
        self.names: list[str] = (
            list(compiled.positiontup or ()) if self.positional else list(compiled.binds)
        )
        self.processors = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.names
        ]
        self._steps = tuple(zip(self.names, self.processors, strict=True))

    def run(self, cursor: DBAPICursor, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute for each of ``rows`` (executemany for several); return the rowcount."""
        params: list[Any] = []
        for row in rows:
            values = [row[name] if fn is None else fn(row[name]) for name, fn in self._steps]
            params.append(
                tuple(values) if self.positional else dict(zip(self.names, values, strict=True))
            )
        if len(params) == 1:
            cursor.execute(self.sql, params[0])
        else:
            cursor.executemany(self.sql, params)
        return int(cursor.rowcount)


class _WriteStatements:
    """The prepared statements of :meth:`Store.write` for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.insert_ticket = _Prepared(_INSERT_TICKET, dialect)
        self.update_ticket = _Prepared(_UPDATE_TICKET, dialect)
        self.update_counter = _Prepared(_UPDATE_COUNTER, dialect)
        self.insert_event = _Prepared(_INSERT_EVENT, dialect)
        self.multi_rowcount = bool(dialect.supports_sane_multi_rowcount)


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
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.db: Engine = create_engine(parsed)
        """The SQLAlchemy engine, for migrations, reports and tests."""
        if self.db.dialect.name == "sqlite":
            _configure_sqlite(self.db)
        self._writer = self.db.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        # Queue writes go through one long-lived connection, one at a time: SQLite
        # has a single writer anyway, and skipping the pool's checkout/return per
        # transaction is a large part of the write fast path.
        self._write_lock = threading.Lock()
        self._write_conn: Connection | None = None
        self._fast: _WriteStatements | None = None
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
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        self.db.dispose()

    def upgrade(self) -> None:
        """Create the schema or bring it to the newest migration; safe to repeat."""
        with self._writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two hub processes starting at once must not both create the tables.
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            config = alembic_config(self.url)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    # -- the queue -----------------------------------------------------------------

    def write(self, change: Change) -> None:
        """Persist ``change`` in one transaction: new tickets, updates, counters, events.

        Raises :class:`StoreError` (and writes nothing) when the database refuses it,
        e.g. with code ``duplicate_number`` when another writer already issued one of
        the new tickets' numbers.
        """
        if not (change.tickets or change.counters or change.events):
            return
        tickets = _latest(change.tickets, key=_ticket_key)
        counters = _latest(change.counters, key=_counter_key)
        new = [_ticket_values(t) for t in tickets if t.id in change.new_ticket_ids]
        updated = [_ticket_update(t) for t in tickets if t.id not in change.new_ticket_ids]
        moved = [{"b_id": c.id, "b_state": c.state.value, "b_current": c.current} for c in counters]
        events = [_event_values(e) for e in change.events]
        dbapi = self.db.dialect.loaded_dbapi
        try:
            with self._transaction() as conn:
                fast = self._fast
                if fast is None:
                    fast = self._fast = _WriteStatements(conn.dialect)
                cursor = _dbapi_connection(conn).cursor()
                try:
                    if new:
                        fast.insert_ticket.run(cursor, new)
                    if updated:
                        _update(fast.update_ticket, cursor, updated, "ticket", fast.multi_rowcount)
                    if moved:
                        _update(fast.update_counter, cursor, moved, "counter", fast.multi_rowcount)
                    if events:
                        fast.insert_event.run(cursor, events)
                finally:
                    cursor.close()
        except (IntegrityError, dbapi.IntegrityError) as exc:
            raise _integrity_error(exc, change) from exc
        except (OperationalError, dbapi.OperationalError) as exc:
            reason = exc.orig if isinstance(exc, OperationalError) else exc
            raise StoreError("unavailable", f"the database is unavailable: {reason}") from exc

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
        return Snapshot(
            day=day,
            services=services,
            counters=counters,
            tickets=tickets,
            last_seq={code: int(seq) for code, seq, _ in numbering},
            issued={code: int(count) for code, _, count in numbering},
            durations=durations,
        )

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

    def count_tickets(self, day: date | None = None) -> int:
        """How many tickets were issued on business day ``day``, or ever."""
        query = select(func.count()).select_from(_tickets)
        if day is not None:
            query = query.where(_tickets.c.business_day == day)
        with self.db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- internals -------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction on the long-lived writer connection (BEGIN IMMEDIATE)."""
        with self._write_lock:
            conn = self._write_conn
            if conn is None or conn.closed:
                conn = self._write_conn = self._writer.connect()
                if conn.dialect.name == "sqlite" and self._checkpointer is None:
                    self._checkpointer = _Checkpointer(self.db)
            try:
                with conn.begin():
                    yield conn
            except StoreError:
                raise
            except BaseException:
                # After a database error the connection may be broken (and the fast
                # path's raw DBAPI errors do not tell SQLAlchemy so): take a fresh
                # one for the next write. Costs nothing on the normal path.
                self._write_conn = None
                with contextlib.suppress(Exception):
                    conn.close()
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
    for it) on connections with the write option, plain ``BEGIN`` otherwise.
    """

    @event.listens_for(db, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            # The store's checkpointer thread copies the WAL into the database; a
            # committing connection only does it itself past ~40 MB (a safety net).
            cursor.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
        finally:
            cursor.close()

    @event.listens_for(db, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION)
        # Straight to the driver: this runs before every transaction (fast path).
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


def _ticket_values(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "number_service": ticket.number_service,
        "business_day": ticket.business_day,
        "seq": ticket.seq,
        "number": ticket.number,
        "service": ticket.service,
        "issued_at": ticket.issued_at,
        "arrived_at": ticket.arrived_at,
        "state": ticket.state.value,
        "priority": None if ticket.priority is None else ticket.priority.value,
        "lang": ticket.lang,
        "counter_id": ticket.counter,
        "calls": ticket.calls,
        "called_at": ticket.called_at,
        "serving_at": ticket.serving_at,
        "finished_at": ticket.finished_at,
        "origin": ticket.origin,
    }


def _ticket_update(ticket: Ticket) -> dict[str, Any]:
    return {
        "b_id": ticket.id,
        "b_service": ticket.service,
        "b_arrived_at": ticket.arrived_at,
        "b_state": ticket.state.value,
        "b_priority": None if ticket.priority is None else ticket.priority.value,
        "b_lang": ticket.lang,
        "b_counter_id": ticket.counter,
        "b_calls": ticket.calls,
        "b_called_at": ticket.called_at,
        "b_serving_at": ticket.serving_at,
        "b_finished_at": ticket.finished_at,
    }


def _event_values(item: Event) -> dict[str, Any]:
    return {
        "at": item.at,
        "action": item.action.value,
        "actor": item.actor,
        "ticket_id": item.ticket_id,
        "counter_id": item.counter_id,
        "service": item.service,
        "from_state": item.from_state,
        "to_state": item.to_state,
        "detail": dict(item.detail),
    }


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
    rows = conn.execute(
        select(_tickets.c.called_at, _tickets.c.finished_at)
        .where(
            _tickets.c.service == service,
            _tickets.c.state == TicketState.DONE.value,
            _tickets.c.called_at.is_not(None),
            _tickets.c.finished_at.is_not(None),
        )
        # By day first, so that the (business_day, service) index finds the newest.
        .order_by(
            _tickets.c.business_day.desc(), _tickets.c.finished_at.desc(), _tickets.c.id.desc()
        )
        .limit(window)
    ).all()
    return [(finished - called).total_seconds() for called, finished in reversed(rows)]


def _update(
    statement: _Prepared,
    cursor: DBAPICursor,
    params: Sequence[dict[str, Any]],
    what: str,
    multi_rowcount: bool,
) -> None:
    """Run an UPDATE for ``params`` and make sure every row named exists."""
    if len(params) == 1 or not multi_rowcount:
        for one in params:
            if statement.run(cursor, [one]) != 1:
                raise StoreError("unknown_row", f"the store has no {what} {one['b_id']!r}")
        return
    if statement.run(cursor, params) != len(params):
        ids = ", ".join(repr(one["b_id"]) for one in params)
        raise StoreError("unknown_row", f"the store lacks one of the {what}s {ids}")


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

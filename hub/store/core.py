"""The :class:`Store`: the queue's persistence, its migrations and its queries.

It joins the parts of :mod:`hub.store`: the tables (:mod:`~hub.store.tables`), the
write path (:mod:`~hub.store.writer`), the SQLite tuning (:mod:`~hub.store.sqlite`)
and the row mapping (:mod:`~hub.store.rows`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import case, create_engine, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import NullPool

from common.files import create_private_file
from common.numbering import ONLINE_SEQ_LAST
from hub.calendar import Closure
from hub.engine import Snapshot
from hub.model import (
    LIVE_STATES,
    Action,
    Appointment,
    AppointmentState,
    Change,
    Counter,
    CounterState,
    Event,
    NumberBlock,
    Service,
    Ticket,
)
from hub.store.errors import StoreError
from hub.store.rows import (
    EVENT_COLUMNS,
    Receipt,
    appointment_from_row,
    block_from_row,
    event_from_row,
    event_row,
    hours_from_json,
    hours_to_json,
    remote_from_json,
    remote_to_json,
    ticket_from_row,
)
from hub.store.sqlite import BEGIN_OPTION, Checkpointer, configure_sqlite
from hub.store.tables import (
    ACCOUNTS,
    APPOINTMENTS,
    BLOCKS,
    CLOSURES,
    COUNTERS,
    DONE_CONDITION,
    EVENTS,
    SERVICES,
    TICKETS,
)
from hub.store.writer import Writer, integrity_error
from sync_agent.broker_accounts import Account

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"
"""Where the Alembic environment and revisions live (shipped as package data)."""

HEAD_REVISION: Final = "0015_uplink"
"""The newest migration; :meth:`Store.upgrade` brings a database to it."""


_PG_MIGRATION_LOCK: Final = 0x506F7261  # "Pora": serializes concurrent upgrades
_LIVE_VALUES: Final = tuple(sorted(state.value for state in LIVE_STATES))


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
            configure_sqlite(self.db)
        self._write_db = self.db.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
        self._write_lock = threading.Lock()
        self._writer: Writer | None = None
        self._checkpointer: Checkpointer | None = None

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
                upgrade_to_head(conn, alembic_config(self.url), _PG_MIGRATION_LOCK)
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
        try:
            with self._writing() as writer:
                writer.write(change, receipt)
        # The writer raises the driver's own exceptions; connecting, SQLAlchemy's.
        except (IntegrityError, dbapi.IntegrityError) as exc:
            raise integrity_error(exc, change) from exc
        except (OperationalError, dbapi.OperationalError) as exc:
            raise _unavailable(exc) from exc

    @contextmanager
    def prepared_transaction(self) -> Iterator[DBAPICursor]:
        """A write transaction straight on the writer's driver cursor, for :class:`~.Prepared`.

        The fast path of :meth:`write`, for other writes as frequent as the queue's (the
        citizens' notices): no SQLAlchemy per statement, so the database's one writer,
        which every press waits for, is held only while the driver runs them. Commits
        at the end; an error rolls back. Raises :class:`StoreError` ``unavailable`` when
        the database is.
        """
        dbapi = self.db.dialect.loaded_dbapi
        try:
            with self._writing() as writer:
                writer.start()
                yield writer.cursor
                writer.dbapi.commit()
        except (OperationalError, dbapi.OperationalError) as exc:
            raise _unavailable(exc) from exc

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
                select(TICKETS)
                .where(TICKETS.c.state.in_(_LIVE_VALUES))
                .order_by(TICKETS.c.issued_at, TICKETS.c.id)
            )
            tickets = [ticket_from_row(row) for row in live]
            numbering = conn.execute(
                select(
                    TICKETS.c.number_service,
                    # The hub's own numbering; offline sequences lie above it.
                    func.max(case((TICKETS.c.seq <= ONLINE_SEQ_LAST, TICKETS.c.seq))),
                    func.count(),
                    func.count(TICKETS.c.remote_code),
                )
                .where(TICKETS.c.business_day == day)
                .group_by(TICKETS.c.number_service)
            ).all()
            durations: dict[str, list[float]] = {}
            if window > 0:
                for service in services:
                    recent = _recent_durations(conn, service.code, window)
                    if recent:
                        durations[service.code] = recent
            blocks, delivered = _load_blocks(conn, day)
            checked_in = conn.execute(
                select(TICKETS.c.appointment).where(
                    TICKETS.c.business_day == day, TICKETS.c.appointment.is_not(None)
                )
            ).scalars()
            checked_in_ids = set(checked_in)
        return Snapshot(
            day=day,
            services=services,
            counters=counters,
            tickets=tickets,
            last_seq={code: int(seq) for code, seq, _, _ in numbering if seq is not None},
            issued={code: int(count) for code, _, count, _ in numbering},
            remote_issued={code: int(remote) for code, _, _, remote in numbering if remote},
            durations=durations,
            blocks=blocks,
            delivered=delivered,
            checked_in=checked_in_ids,
        )

    # -- number blocks -------------------------------------------------------------

    def number_block(self, device: str, service: str, day: date, seq: int) -> NumberBlock | None:
        """The block of ``device`` that holds sequence ``seq`` of ``service`` on ``day``."""
        query = select(BLOCKS).where(
            BLOCKS.c.business_day == day,
            BLOCKS.c.device == device,
            BLOCKS.c.service == service,
            BLOCKS.c.first_seq <= seq,
            BLOCKS.c.last_seq >= seq,
        )
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else block_from_row(row)

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
            "priority_allowed": service.priority_allowed,
            "remote": remote_to_json(service.remote),
        }
        self._upsert(SERVICES, SERVICES.c.code, service.code, values, {}, position)

    def save_counter(self, counter: Counter, position: int | None = None) -> None:
        """Add a counter, or replace an existing one's definition (name and services).

        A new counter starts with ``counter.state`` and ``counter.current``; for an
        existing one they are left alone, because they belong to the queue.
        ``position`` works as in :meth:`save_service`.
        """
        values: dict[str, Any] = {"name": counter.name, "services": list(counter.services)}
        initial = {"state": counter.state.value, "current_ticket_id": counter.current}
        self._upsert(COUNTERS, COUNTERS.c.id, counter.id, values, initial, position)

    def services(self) -> list[Service]:
        """Every service, in display order."""
        with self.db.connect() as conn:
            return _load_services(conn)

    def counters(self) -> list[Counter]:
        """Every counter with its live state, in display order."""
        with self.db.connect() as conn:
            return _load_counters(conn)

    # -- appointments --------------------------------------------------------------

    def appointment_by_code(self, code: str) -> Appointment | None:
        """The appointment whose booking code is ``code`` (in any state), or ``None``."""
        query = select(APPOINTMENTS).where(APPOINTMENTS.c.code == code)
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else appointment_from_row(row)

    def appointment(self, appointment_id: str) -> Appointment | None:
        """Appointment ``appointment_id`` (in any state), or ``None``."""
        query = select(APPOINTMENTS).where(APPOINTMENTS.c.id == appointment_id)
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else appointment_from_row(row)

    def mark_no_shows(
        self, deadline: datetime, now: datetime, *, since: datetime, actor: str = "system"
    ) -> list[Appointment]:
        """Mark the bookings of slots ``since`` … ``deadline`` that nobody checked in no-shows.

        A booking whose slot started before ``deadline`` (the slot plus the check-in
        grace has passed) and which no ticket names becomes
        :attr:`~hub.model.AppointmentState.NO_SHOW`, with an audit row (``no_show``, its
        id in the detail), in one transaction. ``since`` bounds the search, so the
        sweep reads only recent slots. Returns the appointments marked.
        """
        booked = AppointmentState.BOOKED.value
        lapsed = select(APPOINTMENTS).where(
            APPOINTMENTS.c.state == booked,
            APPOINTMENTS.c.starts_at >= since,
            APPOINTMENTS.c.starts_at < deadline,
            APPOINTMENTS.c.id.not_in(
                select(TICKETS.c.appointment).where(TICKETS.c.appointment.is_not(None))
            ),
        )
        with self.db.connect() as conn:
            if conn.execute(lapsed.limit(1)).first() is None:
                return []  # the usual case, without taking the write lock
        with self._transaction() as conn:
            found = [appointment_from_row(row) for row in conn.execute(lapsed)]
            ids = [a.id for a in found]
            conn.execute(
                update(APPOINTMENTS)
                .where(APPOINTMENTS.c.id.in_(ids), APPOINTMENTS.c.state == booked)
                .values(state=AppointmentState.NO_SHOW.value)
            )
            events = [
                Event(
                    at=now,
                    action=Action.NO_SHOW,
                    actor=actor,
                    service=a.service,
                    from_state=booked,
                    to_state=AppointmentState.NO_SHOW.value,
                    detail={"appointment": a.id},
                )
                for a in found
            ]
            conn.execute(
                insert(EVENTS),
                [dict(zip(EVENT_COLUMNS, event_row(e), strict=True)) for e in events],
            )
        return [dataclasses.replace(a, state=AppointmentState.NO_SHOW) for a in found]

    # -- closures ------------------------------------------------------------------

    def closures(self, since: date | None = None) -> list[Closure]:
        """The admin's closures (those of ``since`` and later), by day and start."""
        query = select(CLOSURES).order_by(CLOSURES.c.day, CLOSURES.c.start, CLOSURES.c.id)
        if since is not None:
            query = query.where(CLOSURES.c.day >= since)
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Closure(
                day=row.day,
                start=row.start,
                end=row.end,
                reason=row.reason,
                services=tuple(row.services),
                id=row.id,
            )
            for row in rows
        ]

    def add_closure(self, closure: Closure, *, at: datetime) -> None:
        """Keep a new closure (its ``id`` must be set)."""
        with self._transaction() as conn:
            conn.execute(
                insert(CLOSURES).values(
                    id=closure.id,
                    day=closure.day,
                    start=closure.start,
                    end=closure.end,
                    reason=closure.reason,
                    services=list(closure.services),
                    created_at=at,
                )
            )

    def delete_closure(self, closure_id: str) -> bool:
        """Remove a closure; ``False`` if there was none with that id."""
        with self._transaction() as conn:
            deleted = conn.execute(delete(CLOSURES).where(CLOSURES.c.id == closure_id)).rowcount
        return bool(deleted)

    # -- queries -------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> Ticket | None:
        """The stored ticket ``ticket_id`` (live or finished), or ``None``."""
        with self.db.connect() as conn:
            row = conn.execute(select(TICKETS).where(TICKETS.c.id == ticket_id)).first()
        return None if row is None else ticket_from_row(row)

    def events(self, ticket_id: str | None = None, limit: int = 1000) -> list[Event]:
        """The newest ``limit`` audit rows (of one ticket, or all), oldest first."""
        query = select(EVENTS).order_by(EVENTS.c.id.desc()).limit(limit)
        if ticket_id is not None:
            query = query.where(EVENTS.c.ticket_id == ticket_id)
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return [event_from_row(row) for row in reversed(rows)]

    def last_business_day(self) -> date | None:
        """The latest business day any ticket was issued on (``None`` before the first).

        For the service layer at start-up: resume the engine on this day, then roll
        it over to today, so that yesterday's leftovers expire and counters pause.
        """
        with self.db.connect() as conn:
            day: date | None = conn.execute(select(func.max(TICKETS.c.business_day))).scalar()
        return day

    def receipt(self, sender: str, msg_id: str) -> bytes | None:
        """The stored answer to ``sender``'s command ``msg_id``, if it was applied.

        Asked before every device command, so it takes the writer's fast path too.
        """
        with self._writing() as writer:
            return writer.receipt(sender, msg_id)

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
                update(ACCOUNTS).where(ACCOUNTS.c.username == account.username).values(values)
            ).rowcount
            if not found:
                conn.execute(insert(ACCOUNTS).values(username=account.username, **values))

    def accounts(self) -> list[Account]:
        """Every broker account, by user name."""
        with self.db.connect() as conn:
            rows = conn.execute(select(ACCOUNTS).order_by(ACCOUNTS.c.username)).all()
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
            deleted = conn.execute(delete(ACCOUNTS).where(ACCOUNTS.c.username == username)).rowcount
        return bool(deleted)

    def count_tickets(self, day: date | None = None) -> int:
        """How many tickets were issued on business day ``day``, or ever."""
        query = select(func.count()).select_from(TICKETS)
        if day is not None:
            query = query.where(TICKETS.c.business_day == day)
        with self.db.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction on the writer's connection, for tables beside the queue.

        Users, API tokens, e-service applications and site settings are written
        here, one at a time with the queue's own writes.
        """
        return self._transaction()

    def put(self, table: Any, key: dict[str, Any], values: dict[str, Any]) -> None:
        """Update the row of ``table`` whose columns equal ``key`` to ``values``, or insert it.

        For the small tables beside the queue (the uplink's state, the city's services):
        one transaction on the writer's connection, so no other writer comes between.
        """
        condition = [table.c[name] == value for name, value in key.items()]
        with self._transaction() as conn:
            if not conn.execute(update(table).where(*condition).values(**values)).rowcount:
                conn.execute(insert(table).values(**key, **values))

    # -- internals -------------------------------------------------------------------

    def _open_writer(self) -> Writer:
        """The writer, connected at the first write (call it under the write lock)."""
        writer = self._writer
        if writer is None:
            writer = self._writer = Writer(self._write_db.connect())
            if writer.conn.dialect.name == "sqlite" and self._checkpointer is None:
                self._checkpointer = Checkpointer(self.db)
        return writer

    @contextmanager
    def _writing(self) -> Iterator[Writer]:
        """The writer, under the write lock; rolled back (dropped if unusable) on an error.

        Afterwards the checkpointer copies what was written into the database file.
        """
        with self._write_lock:
            writer = self._open_writer()
            try:
                yield writer
            except BaseException:
                if not writer.rollback():
                    self._drop_writer()
                raise
            if self._checkpointer is not None:
                self._checkpointer.pending = True

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


def _unavailable(exc: Exception) -> StoreError:
    """The :class:`StoreError` for a database that could not be reached or written."""
    reason = exc.orig if isinstance(exc, OperationalError) else exc
    return StoreError("unavailable", f"the database is unavailable: {reason}")


def alembic_config(url: str, migrations: Path = MIGRATIONS_DIR) -> Config:
    """Build the Alembic configuration of ``migrations`` in code (no alembic.ini).

    The hub's by default; the city passes its own. Useful for running Alembic commands
    (``history``, ``revision --autogenerate``) from a script:
    ``alembic.command.revision(alembic_config(url), autogenerate=True)``.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations).replace("%", "%%"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(conn: Connection, config: Config, lock_key: int) -> None:
    """Bring the schema of ``config``'s migrations to head inside ``conn``'s transaction.

    On PostgreSQL it first takes the advisory lock ``lock_key``, so that two processes
    starting at once do not both create the tables.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def run_migrations_online(config: Config, run: Callable[[Connection], None]) -> None:
    """Run an Alembic environment's ``run`` on a connection (from an ``env.py``).

    On the caller's open connection in ``config.attributes["connection"]`` (as
    :func:`upgrade_to_head` passes it), else on an engine made from ``sqlalchemy.url``.
    """
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()


def _load_blocks(conn: Connection, day: date) -> tuple[list[NumberBlock], set[tuple[str, int]]]:
    """The blocks of ``day``, and (service, sequence) of the day's tickets issued offline."""
    rows = conn.execute(
        select(BLOCKS)
        .where(BLOCKS.c.business_day == day)
        .order_by(BLOCKS.c.reserved_at, BLOCKS.c.id)
    ).all()
    blocks = [block_from_row(row) for row in rows]
    if not blocks:
        return blocks, set()
    offline = conn.execute(
        select(TICKETS.c.number_service, TICKETS.c.seq).where(
            TICKETS.c.business_day == day, TICKETS.c.origin != "hub"
        )
    ).all()
    return blocks, {(code, int(seq)) for code, seq in offline}


def _load_services(conn: Connection) -> list[Service]:
    rows = conn.execute(select(SERVICES).order_by(SERVICES.c.position, SERVICES.c.code))
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
            priority_allowed=bool(row.priority_allowed),
            remote=remote_from_json(row.remote),
        )
        for row in rows
    ]


def _load_counters(conn: Connection) -> list[Counter]:
    rows = conn.execute(select(COUNTERS).order_by(COUNTERS.c.position, COUNTERS.c.id))
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
        select(TICKETS.c.called_at, TICKETS.c.finished_at)
        .where(
            TICKETS.c.service == service,
            text(DONE_CONDITION),
            TICKETS.c.called_at.is_not(None),
            TICKETS.c.finished_at.is_not(None),
        )
        # By day first, so that the (service, business_day) index finds the newest.
        .order_by(TICKETS.c.business_day.desc(), TICKETS.c.finished_at.desc(), TICKETS.c.id.desc())
        .limit(window)
    ).all()
    return [(finished - called).total_seconds() for called, finished in reversed(rows)]

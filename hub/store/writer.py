"""The queue's write path: each transition in one transaction, on the raw DBAPI connection.

Why it exists: a queue transition is one to three tiny statements and a commit,
and the hub must sustain thousands a second (``bench/engine.py``, target 2,000
issue→call→done cycles a second on a 2-core machine). SQLAlchemy's bookkeeping
around each statement and transaction (events, parameter handling, result objects)
would cost about as much as SQLite's own work: measured per transaction, BEGIN
IMMEDIATE and COMMIT take 21 µs through ``Connection.begin`` and 7 µs on the DBAPI
connection, while SQLite's whole work for a transition is about 75 µs. So
:meth:`~hub.store.Store.write` runs the transaction and its statements straight on
the writer's DBAPI connection (:class:`Writer`). What stays SQLAlchemy's: the
statements (Core, compiled once per dialect), the parameter conversions (each bind
type's own processor: UTC timestamps, dates, JSON) and the connection's life (pool,
pragmas). Parameters are plain tuples, built straight from the model objects by
:mod:`hub.store.rows`.

It is kept because it is what meets the target. Measured with ``bench/engine.py``
(5,000 cycles, SQLite, on a shared 2-core machine under load): 3,450–3,770 cycles a
second through this path, against 800–860 when the same writes go through
SQLAlchemy Core as usual (statements built per write, ``Connection.begin`` and
``Connection.execute``), below the target.

Everything else the store writes (the catalog, accounts, users, settings) is rare
and goes through SQLAlchemy as usual (:meth:`~hub.store.Store.transaction`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

from sqlalchemy import Dialect, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
from sqlalchemy.exc import IntegrityError

from hub.model import Change, Counter, Ticket
from hub.store.errors import StoreError
from hub.store.rows import (
    BLOCK_COLUMNS,
    EVENT_COLUMNS,
    RECEIPT_COLUMNS,
    TICKET_CHANGES,
    TICKET_COLUMNS,
    Receipt,
    block_row,
    counter_changes,
    event_row,
    ticket_changes,
    ticket_row,
)
from hub.store.tables import BLOCKS, COUNTERS, EVENTS, RECEIPTS, TICKETS

_T = TypeVar("_T")
_NUMBER_CONSTRAINT: Final = "uq_tickets_business_day_number_service_seq"

_INSERT_TICKET: Final = insert(TICKETS).values({name: bindparam(name) for name in TICKET_COLUMNS})
# An UPDATE's parameters may not be named like its columns: hence ``new_…`` and ``key``.
_UPDATE_TICKET: Final = (
    update(TICKETS)
    .values({name: bindparam(f"new_{name}") for name in TICKET_CHANGES})
    .where(TICKETS.c.id == bindparam("key"))
)
_UPDATE_COUNTER: Final = (
    update(COUNTERS)
    .values(state=bindparam("new_state"), current_ticket_id=bindparam("new_current_ticket_id"))
    .where(COUNTERS.c.id == bindparam("key"))
)
_INSERT_RECEIPT: Final = insert(RECEIPTS).values(
    {name: bindparam(name) for name in RECEIPT_COLUMNS}
)
_SELECT_RECEIPT: Final = select(RECEIPTS.c.reply).where(
    RECEIPTS.c.sender == bindparam("sender"), RECEIPTS.c.msg_id == bindparam("msg_id")
)
_INSERT_EVENT: Final = insert(EVENTS).values({name: bindparam(name) for name in EVENT_COLUMNS})
_INSERT_BLOCK: Final = insert(BLOCKS).values({name: bindparam(name) for name in BLOCK_COLUMNS})


class Prepared:
    """A Core statement compiled once for a dialect, with its parameters' processors.

    ``names`` are the statement's bind parameters in the order of the tuples that
    :meth:`params` converts; for a positional driver (sqlite3) that must be the
    compiled order, which is checked here, so a tuple goes to the driver as it is.
    Besides the queue's own, other frequent writes (the citizens' notices) run theirs
    this way, in :meth:`hub.store.Store.prepared_transaction`.
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

    def run(self, cursor: DBAPICursor, rows: Sequence[tuple[Any, ...]]) -> int:
        """Run the statement once per row of ``rows`` (model values); the rows it changed.

        Several rows go in one ``executemany``. The count is the driver's: for several
        rows, sqlite3's is their sum; ask with one row where each row's count matters.
        """
        _execute(cursor, self.sql, [self.params(row) for row in rows])
        return max(0, cursor.rowcount) if rows else 0


class Writer:
    """The store's write connection: held open, with its cursor and statements.

    Queue writes go through this one pooled connection, one at a time: SQLite has
    a single writer anyway, and skipping the pool's checkout and return per
    transaction is part of the fast path. Catalog writes use the same connection
    through SQLAlchemy (:meth:`hub.store.Store._transaction`); neither leaves a transaction
    open behind it.
    """

    def __init__(self, conn: Connection) -> None:
        dialect = conn.dialect
        self.dialect = dialect
        self.conn = conn
        self.dbapi = dbapi_connection(conn)
        self.cursor = self.dbapi.cursor()
        # SQLite: take the write lock up front (see configure_sqlite); psycopg
        # begins a transaction by itself at the first statement.
        self.begin = "BEGIN IMMEDIATE" if dialect.name == "sqlite" else None
        self.insert_ticket = Prepared(_INSERT_TICKET, TICKET_COLUMNS, dialect)
        update_ticket = [f"new_{name}" for name in TICKET_CHANGES] + ["key"]
        self.update_ticket = Prepared(_UPDATE_TICKET, update_ticket, dialect)
        update_counter = ("new_state", "new_current_ticket_id", "key")
        self.update_counter = Prepared(_UPDATE_COUNTER, update_counter, dialect)
        self.insert_event = Prepared(_INSERT_EVENT, EVENT_COLUMNS, dialect)
        self.insert_receipt = Prepared(_INSERT_RECEIPT, RECEIPT_COLUMNS, dialect)
        self.select_receipt = Prepared(_SELECT_RECEIPT, ("sender", "msg_id"), dialect)
        self.insert_block = Prepared(_INSERT_BLOCK, BLOCK_COLUMNS, dialect)

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
        inserts = [self.insert_ticket.params(ticket_row(t)) for t in new]
        ticket_updates = [self.update_ticket.params(ticket_changes(t)) for t in updated]
        counter_updates = [self.update_counter.params(counter_changes(c)) for c in counters]
        events = [self.insert_event.params(event_row(e)) for e in change.events]
        blocks = [self.insert_block.params(block_row(b)) for b in change.blocks]
        receipts = [
            self.insert_receipt.params((r.sender, r.msg_id, r.at, r.reply))
            for r in ([receipt] if receipt is not None else [])
        ]
        self.start()
        _execute(self.cursor, self.insert_ticket.sql, inserts)
        for ticket, params in zip(updated, ticket_updates, strict=True):
            self._update(self.update_ticket.sql, params, "ticket", ticket.id)
        for counter, params in zip(counters, counter_updates, strict=True):
            self._update(self.update_counter.sql, params, "counter", counter.id)
        _execute(self.cursor, self.insert_event.sql, events)
        _execute(self.cursor, self.insert_block.sql, blocks)
        _execute(self.cursor, self.insert_receipt.sql, receipts)
        self.dbapi.commit()

    def start(self) -> None:
        """Begin a write transaction (SQLite: take the database's write lock now)."""
        if self.begin is not None:
            self.cursor.execute(self.begin)

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


def dbapi_connection(conn: Connection) -> DBAPIConnection:
    """The driver's own connection under ``conn``; ``unavailable`` once it is closed."""
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise StoreError("unavailable", "the database connection is closed")
    return raw


def integrity_error(exc: Exception, change: Change) -> StoreError:
    """The :class:`StoreError` for a constraint that refused ``change``."""
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

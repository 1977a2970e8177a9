"""The hub's store: the queue's tables, their migrations, and fast transactional writes.

The engine (:mod:`hub.engine`) decides a :class:`~hub.model.Change`; the
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

The parts, by what they do:

:mod:`~hub.store.tables`
    The table definitions (SQLAlchemy models) and :data:`metadata`.
:mod:`~hub.store.rows`
    Row mapping: model objects to row values and back.
:mod:`~hub.store.writer`
    The queue's write path, straight on the DBAPI connection (and why).
:mod:`~hub.store.sqlite`
    SQLite tuning: page size, WAL, ``BEGIN IMMEDIATE``, the checkpointer.
:mod:`~hub.store.eventids`
    The audit log's ids as the city's sequence numbers: moved on past a restore.
:mod:`~hub.store.core`
    :class:`Store` itself, which joins them, and the migrations.
"""

from hub.store.core import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    Store,
    alembic_config,
    run_migrations_online,
    upgrade_to_head,
)
from hub.store.errors import StoreError
from hub.store.rows import Receipt, appointment_from_row, hours_from_json, hours_to_json
from hub.store.sqlite import SQLITE_PAGE_SIZE, sqlite_url
from hub.store.tables import NAMING_CONVENTION, UTCDateTime, metadata
from hub.store.writer import Prepared

__all__ = [
    "HEAD_REVISION",
    "MIGRATIONS_DIR",
    "NAMING_CONVENTION",
    "SQLITE_PAGE_SIZE",
    "Prepared",
    "Receipt",
    "Store",
    "StoreError",
    "UTCDateTime",
    "alembic_config",
    "appointment_from_row",
    "hours_from_json",
    "hours_to_json",
    "metadata",
    "run_migrations_online",
    "sqlite_url",
    "upgrade_to_head",
]

"""SQLite tuning: page size, WAL, write transactions that start IMMEDIATE, the checkpointer.

The appliance's database is one SQLite file in WAL mode with ``synchronous=NORMAL``:
a commit only appends to the WAL, and a thread of the store (:class:`Checkpointer`)
copies the WAL into the database shortly after writes, so that commits never wait
for it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

from hub.store.writer import dbapi_connection

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

BEGIN_OPTION: Final = "poradovnik_sqlite_begin"
"""The execution option naming how a connection's transactions BEGIN (``IMMEDIATE``)."""

_log = logging.getLogger(__name__)
_CHECKPOINT_INTERVAL_S: Final = 0.5
_WAL_AUTOCHECKPOINT_PAGES: Final = 10_000


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of the SQLite database file at ``path``."""
    return f"sqlite+pysqlite:///{Path(path).expanduser().resolve()}"


def configure_sqlite(db: Engine) -> None:
    """Set the pragmas and take over BEGIN, so write transactions start IMMEDIATE.

    pysqlite's own transaction handling starts a transaction only at the first
    write and never for reads; a read-then-write transaction could then fail with
    "database is locked" when it upgrades its lock. Here SQLAlchemy emits BEGIN
    itself: ``BEGIN IMMEDIATE`` (the write lock up front, waiting ``busy_timeout``
    for it) on connections with the write option, plain ``BEGIN`` otherwise. The
    queue's write path (:class:`Writer`) sends its own ``BEGIN IMMEDIATE``.
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
        mode = conn.get_execution_options().get(BEGIN_OPTION)
        # Straight to the driver (SQLAlchemy's pysqlite BEGIN handling is off).
        conn.connection.dbapi_connection.execute(f"BEGIN {mode}" if mode else "BEGIN")  # type: ignore[union-attr]


class Checkpointer:
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
                    cursor = dbapi_connection(conn).cursor()
                    try:
                        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    finally:
                        cursor.close()
            except Exception:
                _log.exception("WAL checkpoint failed; SQLite will checkpoint on commit")

"""The kiosk's reserved numbers: the blocks the hub set aside for it, kept in SQLite.

While the hub does not answer, the kiosk issues the next number of a block
(:meth:`OfflineBook.take`); each number is taken in one synced transaction, so a
number is never issued twice, even across a power cut. The tickets themselves reach
the hub through the link's durable outbox. The book also remembers the ``msg_id`` of
a block request that has not been answered yet, so that asking again cannot make the
hub reserve a second block (it answers the same request from its receipt).
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from common.errors import PoradovnikError
from common.numbering import display_number
from sync_agent.protocol import BlockInfo

__all__ = ["OfflineBook", "OfflineNumber"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    service      TEXT    NOT NULL,
    business_day TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    first_seq    INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    next_seq     INTEGER NOT NULL,
    PRIMARY KEY (service, business_day, first_seq)
);
CREATE TABLE IF NOT EXISTS pending (
    what   TEXT PRIMARY KEY,
    msg_id TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class OfflineNumber:
    """A number taken from a block: what is printed and what the hub is told."""

    service: str
    business_day: date
    seq: int
    number: str


class OfflineBook:
    """The blocks of reserved numbers of one kiosk, in the SQLite file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open the kiosk's number blocks {path}: {exc}; check [data] dir"
            raise PoradovnikError(msg) from None
        self._lock = threading.Lock()

    def add(self, blocks: list[BlockInfo]) -> None:
        """Keep ``blocks`` (a block already kept is left as it is)."""
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        b.service,
                        b.business_day.isoformat(),
                        b.prefix,
                        b.first_seq,
                        b.last_seq,
                        b.first_seq,
                    )
                    for b in blocks
                ],
            )

    def take(self, service: str, day: date) -> OfflineNumber | None:
        """Take the next unused number of ``service`` for ``day``; ``None`` if none is left."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT first_seq, prefix, next_seq FROM blocks "
                    "WHERE service = ? AND business_day = ? AND next_seq <= last_seq "
                    # The hub reserves a day's blocks downwards: the oldest one first.
                    "ORDER BY first_seq DESC LIMIT 1",
                    (service, day.isoformat()),
                ).fetchone()
                if row is None:
                    db.execute("ROLLBACK")
                    return None
                first, prefix, seq = row
                db.execute(
                    "UPDATE blocks SET next_seq = next_seq + 1 "
                    "WHERE service = ? AND business_day = ? AND first_seq = ?",
                    (service, day.isoformat(), first),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return OfflineNumber(service, day, seq, display_number(prefix, seq))

    def remaining(self, service: str, day: date) -> int:
        """How many numbers of ``service`` are left for ``day``."""
        with self._lock:
            (left,) = self._db.execute(
                "SELECT COALESCE(SUM(last_seq - next_seq + 1), 0) FROM blocks "
                "WHERE service = ? AND business_day = ?",
                (service, day.isoformat()),
            ).fetchone()
        return int(left)

    def forget_before(self, day: date) -> None:
        """Drop the blocks of days before ``day``: their numbers can no longer be issued."""
        with self._lock:
            self._db.execute("DELETE FROM blocks WHERE business_day < ?", (day.isoformat(),))

    def pending_request(self, what: str) -> str:
        """The ``msg_id`` for asking ``what``: the unanswered one, or a new one kept now."""
        with self._lock:
            row = self._db.execute("SELECT msg_id FROM pending WHERE what = ?", (what,)).fetchone()
            if row is not None:
                return str(row[0])
            msg_id = uuid.uuid4().hex
            self._db.execute("INSERT INTO pending VALUES (?, ?)", (what, msg_id))
            return msg_id

    def answered(self, what: str) -> None:
        """The request for ``what`` was answered: the next one gets a new ``msg_id``."""
        with self._lock:
            self._db.execute("DELETE FROM pending WHERE what = ?", (what,))

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

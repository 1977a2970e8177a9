"""The device's durable outbox: commands waiting for the hub's answer, in a SQLite file.

A clerk's button press must reach the hub even when the broker is away, and even
when the device loses power before it does. :class:`Outbox` is a FIFO in a small
SQLite database (stdlib :mod:`sqlite3`; devices do not install SQLAlchemy):
:meth:`Outbox.put` has committed the entry to disk when it returns, and
:class:`~sync_agent.link.DeviceLink` removes an entry only once the
hub has answered it.

Durability settings: ``journal_mode=WAL`` with ``synchronous=FULL``. In WAL mode
``FULL`` syncs the log on every commit, so a committed entry survives a power cut
(``NORMAL`` survives a crash of the process but may lose the last commits when the
power goes). WAL needs one sync per commit where the rollback journal needs
several, and readers never wait for the writer. The volume is a few presses a
minute, so the cost of syncing is irrelevant, and the file stays tiny. The hub's own
outbox uses ``NORMAL`` (``sync_commits=False``), as its database does: what it keeps is
no more durable than the queue change it reports, and its commits never wait for the
disk.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from common.files import create_private_file
from sync_agent.protocol import ProtocolError, Request, decode

__all__ = ["Entry", "Outbox"]

_SCHEMA_VERSION = 1

_REMOVE_CHUNK = 500
"""``msg_id``s per statement of :meth:`Outbox.remove_all` (SQLite bounds its parameters)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id    TEXT    NOT NULL UNIQUE,
    topic     TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    payload   BLOB    NOT NULL,
    queued_at TEXT    NOT NULL
)
"""


def _request_models() -> dict[str, type[Request]]:
    """Every payload model that can be sent durably, by class name."""
    found: dict[str, type[Request]] = {}
    todo: list[type[Request]] = [Request]
    while todo:
        model = todo.pop()
        found[model.__name__] = model
        todo.extend(model.__subclasses__())
    return found


@dataclass(frozen=True, slots=True)
class Entry:
    """One command in the outbox, as it will be (re)sent: same bytes, same ``msg_id``."""

    seq: int
    """Position in the outbox; entries go out in increasing ``seq``."""
    msg_id: str
    """The command's ``msg_id``, by which the hub de-duplicates resends."""
    topic: str
    """Where to publish it."""
    kind: str
    """The payload model's class name, such as ``CounterCommand``."""
    payload: bytes
    """The encoded payload, exactly as first put."""
    queued_at: datetime
    """When it was put into the outbox."""

    def request(self) -> Request:
        """The payload as its model again; :class:`ProtocolError` if it no longer fits one."""
        model = _request_models().get(self.kind)
        if model is None:
            raise ProtocolError("unknown_kind", f"no request model named {self.kind!r}")
        return decode(model, self.payload)


class Outbox:
    """A durable FIFO of requests in the SQLite file ``path``, safe to use from any thread.

    Entries keep their insertion order and survive a restart of the process (or of
    the device). The file and its directory are created when missing. With
    ``sync_commits=False`` an entry survives a crash of the process but maybe not a
    power cut, and :meth:`put` never waits for the disk.
    """

    def __init__(self, path: Path, *, sync_commits: bool = True) -> None:
        self.path = path
        """The SQLite file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        create_private_file(path)  # requests may carry personal data: owner-only
        self._lock = threading.Lock()
        # Autocommit mode (isolation_level=None): each statement below is its own
        # transaction, committed (and, with synchronous=FULL, synced) when it returns.
        self._db: sqlite3.Connection | None = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if sync_commits else 'NORMAL'}")
            self._db.execute(_SCHEMA)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            elif version != _SCHEMA_VERSION:
                raise RuntimeError(
                    f"{path}: outbox schema version {version} is not {_SCHEMA_VERSION}"
                )
            self._count: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            """Entries in the file, kept beside it: :meth:`__len__` never waits for a write."""
        except BaseException:
            self._db.close()
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"outbox {self.path} is closed")
        return self._db

    def put(self, topic: str, payload: Request) -> str:
        """Append ``payload`` for ``topic``; return its ``msg_id`` once it is on disk.

        Putting the same ``msg_id`` again with the same topic and payload does nothing
        (a caller's retry); with anything else it raises :class:`ValueError`.
        """
        data = payload.encode()
        kind = type(payload).__name__
        now = datetime.now(UTC).isoformat()
        with self._lock:
            db = self._conn()
            try:
                db.execute(
                    "INSERT INTO outbox (msg_id, topic, kind, payload, queued_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (payload.msg_id, topic, kind, data, now),
                )
                self._count += 1
            except sqlite3.IntegrityError:
                row = db.execute(
                    "SELECT topic, payload FROM outbox WHERE msg_id = ?", (payload.msg_id,)
                ).fetchone()
                if row is None or (row[0], bytes(row[1])) != (topic, data):
                    raise ValueError(
                        f"msg_id {payload.msg_id!r} is already in the outbox with other content"
                    ) from None
        return payload.msg_id

    def head(self) -> Entry | None:
        """The oldest entry (the next to send), or ``None`` when the outbox is empty."""
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT seq, msg_id, topic, kind, payload, queued_at FROM outbox "
                    "ORDER BY seq LIMIT 1"
                )
                .fetchone()
            )
        return None if row is None else _entry(row)

    def entries(self) -> list[Entry]:
        """Every entry, oldest first (for diagnostics; the outbox stays small)."""
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT seq, msg_id, topic, kind, payload, queued_at FROM outbox ORDER BY seq"
                )
                .fetchall()
            )
        return [_entry(row) for row in rows]

    def remove(self, msg_id: str) -> bool:
        """Delete the entry with ``msg_id`` (it was answered); ``False`` if there was none."""
        with self._lock:
            cursor = self._conn().execute("DELETE FROM outbox WHERE msg_id = ?", (msg_id,))
            self._count -= cursor.rowcount
        return cursor.rowcount > 0

    def remove_all(self, msg_ids: Iterable[str]) -> int:
        """Delete the entries with these ``msg_id``s (one write per 500); how many there were."""
        ids = list(msg_ids)
        removed = 0
        with self._lock:
            db = self._conn()
            for at in range(0, len(ids), _REMOVE_CHUNK):
                chunk = ids[at : at + _REMOVE_CHUNK]
                marks = ", ".join("?" * len(chunk))
                removed_now = db.execute(
                    f"DELETE FROM outbox WHERE msg_id IN ({marks})", chunk
                ).rowcount
                self._count -= removed_now
                removed += removed_now
        return removed

    def __len__(self) -> int:
        """How many entries wait (as of the last write that ended: no waiting for one)."""
        if self._db is None:
            raise RuntimeError(f"outbox {self.path} is closed")
        return self._count

    def close(self) -> None:
        """Close the database; the entries stay in the file. Closing twice is harmless."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _entry(row: tuple[int, str, str, str, bytes, str]) -> Entry:
    seq, msg_id, topic, kind, payload, queued_at = row
    return Entry(
        seq=seq,
        msg_id=msg_id,
        topic=topic,
        kind=kind,
        payload=bytes(payload),
        queued_at=datetime.fromisoformat(queued_at),
    )

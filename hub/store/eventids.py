"""The audit log's ids as sequence numbers the city stores: where they stand, and moving them on.

The ids of ``events`` are the sequence numbers of the branch's history at the city
(:mod:`hub.uplink`); the city keeps one row per ``(site, sequence)`` and drops any
other row sent with a sequence it holds. So an id must never be given twice, also
not after a restore of an older backup: the restored database's sequence (SQLite's
``sqlite_sequence``, PostgreSQL's sequence of ``events.id``) is behind what the city
may hold. :func:`event_id_mark` says how far ids were given (or acknowledged) in a
database, and :func:`move_event_ids_past` moves a database's sequence past such a mark,
so the next row gets a sequence the city has never seen.

Both work on a connection of the caller's, on any of the hub's schema revisions: a
table that is not there counts as empty.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

__all__ = ["event_id_mark", "move_event_ids_past"]


def event_id_mark(conn: Connection) -> int:
    """The highest id given to an audit row in this database, or acknowledged by the city.

    The newest row's id, the sequence's position (rows deleted since count) and the
    city's last acknowledgement kept in ``uplink_state``; 0 for a database without them.
    """
    tables = set(inspect(conn).get_table_names())
    found = [0]
    if "events" in tables:
        found.append(int(conn.execute(text("SELECT max(id) FROM events")).scalar() or 0))
        found.append(_sequence_position(conn))
    if "uplink_state" in tables:
        acked = conn.execute(text("SELECT max(acked_seq) FROM uplink_state")).scalar()
        found.append(int(acked or 0))
    return max(found)


def move_event_ids_past(conn: Connection, mark: int) -> bool:
    """Make the next audit row's id greater than ``mark``; whether the sequence moved.

    It never moves back. On SQLite this needs ``events`` as an ``AUTOINCREMENT`` table
    (migration ``0015_uplink``); on an older schema nothing is moved (``False``): its
    ids go on from the newest row, and the uplink moves them once it hears the city.
    """
    if "events" not in inspect(conn).get_table_names() or mark <= _sequence_position(conn):
        return False
    if conn.dialect.name == "postgresql":
        sequence = _pg_sequence(conn)
        if sequence is None:
            return False
        setval = text("SELECT setval(CAST(:seq AS regclass), :mark)")
        conn.execute(setval, {"seq": sequence, "mark": mark})
        return True
    if not _sqlite_autoincrement(conn):
        return False
    moved = conn.execute(
        text("UPDATE sqlite_sequence SET seq = :mark WHERE name = 'events'"), {"mark": mark}
    ).rowcount
    if not moved:
        conn.execute(
            text("INSERT INTO sqlite_sequence (name, seq) VALUES ('events', :mark)"), {"mark": mark}
        )
    return True


def _sequence_position(conn: Connection) -> int:
    """The last id the database's sequence gave (0: none, or no sequence)."""
    if conn.dialect.name == "postgresql":
        sequence = _pg_sequence(conn)
        if sequence is None:
            return 0
        row = conn.execute(text(f"SELECT last_value, is_called FROM {sequence}")).first()
        return int(row.last_value) if row is not None and row.is_called else 0
    if not _sqlite_autoincrement(conn):
        return 0
    seq = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'events'")).scalar()
    return int(seq or 0)


def _pg_sequence(conn: Connection) -> str | None:
    """The name of the PostgreSQL sequence that gives ``events.id`` (``None``: none)."""
    name = conn.execute(text("SELECT pg_get_serial_sequence('events', 'id')")).scalar()
    return None if name is None else str(name)


def _sqlite_autoincrement(conn: Connection) -> bool:
    sql = conn.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'")
    ).scalar()
    return sql is not None and "AUTOINCREMENT" in sql.upper()

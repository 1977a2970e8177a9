"""Whether the city holds a branch's history exactly: row by row, nothing lost, nothing twice.

A branch's audit log (its hub's ``events`` table) and the city's copy of it
(``branch_events`` of the branch's site, ``seq`` = the branch's ``events.id``) keep
the same fields under the same names. :func:`branch_history` and :func:`city_history`
read both as plain rows, and :func:`history_differences` says what differs. The city's
end-to-end test and ``bench/city.py`` check the exactly-once delivery with them; an
operator can do the same against a copy of a branch's database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import RowMapping, create_engine, select
from sqlalchemy.pool import NullPool

from city.tables import BranchEventRow
from hub.store.tables import EVENTS

HISTORY_FIELDS: Final = (
    "at",
    "action",
    "actor",
    "ticket_id",
    "counter_id",
    "service",
    "from_state",
    "to_state",
    "detail",
)
"""The fields of an audit row that a branch and the city keep alike."""

Row = dict[str, Any]
"""One audit row: ``seq`` and the :data:`HISTORY_FIELDS`."""


def branch_history(database_url: str) -> list[Row]:
    """A branch hub's audit log (its database at ``database_url``), oldest first."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(EVENTS).order_by(EVENTS.c.id)).mappings().all()
    finally:
        engine.dispose()
    return [_row(row["id"], row) for row in rows]


def city_history(database_url: str, site: str) -> list[Row]:
    """The city's copy of branch ``site``'s audit log (its database at ``database_url``)."""
    table = BranchEventRow.__table__
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            query = select(table).where(table.c.site == site).order_by(table.c.seq)
            rows = conn.execute(query).mappings().all()
    finally:
        engine.dispose()
    return [_row(row["seq"], row) for row in rows]


def history_differences(branch: Iterable[Row], city: Iterable[Row], limit: int = 10) -> list[str]:
    """What differs between a branch's rows and the city's copy; empty when exactly equal.

    Rows lost, rows the branch does not have, rows held twice, fields that differ: at most
    ``limit`` lines, then a count of the rest.
    """
    ours = {row["seq"]: row for row in branch}
    theirs: dict[int, Row] = {}
    problems: list[str] = []
    for row in city:
        if row["seq"] in theirs:
            problems.append(f"seq {row['seq']} held twice")
        theirs[row["seq"]] = row
    problems += [f"seq {seq} lost" for seq in sorted(ours.keys() - theirs.keys())]
    problems += [f"seq {seq} not the branch's" for seq in sorted(theirs.keys() - ours.keys())]
    for seq in sorted(ours.keys() & theirs.keys()):
        if ours[seq] != theirs[seq]:
            problems.append(f"seq {seq}: the branch has {ours[seq]}, the city {theirs[seq]}")
    more = [f"... and {len(problems) - limit} more"] if len(problems) > limit else []
    return problems[:limit] + more


def _row(seq: int, row: RowMapping) -> Row:
    at: datetime = row["at"]
    fields = {name: row[name] for name in HISTORY_FIELDS}
    return {"seq": seq, **fields, "at": at.astimezone(UTC)}

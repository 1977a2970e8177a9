"""The admins' audit: who changed which part of the office's set-up, and when.

Every change made on the admin pages (services, counters, closures, booking
rules, appointments, devices, users, API tokens, branding) is written to
``admin_audit`` with its actor (``admin:<user name>``), what kind of thing it
was and its id, and a summary of what changed (``field: before → after``).
Passwords and tokens never appear in it. The admin page ``/admin/audit`` lists
it, filtered, a page at a time, and as CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, and_, func, insert, or_, select

from hub.store import Store, metadata

_audit: Final = metadata.tables["admin_audit"]

KINDS: Final = (
    "service",
    "counter",
    "closure",
    "booking_rules",
    "appointment",
    "device",
    "user",
    "token",
    "branding",
)
"""What an admin can change."""

MAX_SUMMARY: Final = 2000
"""Longer summaries are cut to this many characters."""

CSV_COLUMNS: Final = ("at", "actor", "kind", "object_id", "action", "summary")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change an admin made."""

    id: int
    at: datetime
    actor: str
    kind: str
    object_id: str
    action: str
    summary: str


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to list; an empty field does not narrow the list."""

    kind: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Entries before this moment (exclusive)."""
    text: str | None = None
    """Found in the object's id or the summary (case as written)."""

    def where(self) -> ColumnElement[bool]:
        """The filter as a SQL condition."""
        terms: list[ColumnElement[bool]] = []
        if self.kind:
            terms.append(_audit.c.kind == self.kind)
        if self.actor:
            terms.append(_audit.c.actor == self.actor)
        if self.since is not None:
            terms.append(_audit.c.at >= self.since)
        if self.until is not None:
            terms.append(_audit.c.at < self.until)
        if self.text:
            pattern = "%" + self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern += "%"
            terms.append(
                or_(
                    _audit.c.object_id.like(pattern, escape="\\"),
                    _audit.c.summary.like(pattern, escape="\\"),
                )
            )
        return and_(True, *terms)


def changes(before: Mapping[str, object] | None, after: Mapping[str, object] | None) -> str:
    """What differs between two views of a thing, as ``field: before → after; …``.

    A new thing (``before`` is ``None``) lists its fields; a removed one its
    fields as they were. Callers leave secrets out of both views.
    """
    if before is None:
        return "; ".join(f"{key}: {_text(value)}" for key, value in (after or {}).items())
    if after is None:
        return "; ".join(f"{key}: {_text(value)}" for key, value in before.items())
    return "; ".join(
        f"{key}: {_text(before.get(key))} → {_text(value)}"
        for key, value in after.items()
        if before.get(key) != value
    )


def _text(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "–"
    return str(value)


class AdminAudit:
    """The ``admin_audit`` table."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def record(self, actor: str, kind: str, object_id: str, action: str, summary: str) -> None:
        """Write one change (the summary cut to :data:`MAX_SUMMARY` characters)."""
        with self.store.transaction() as conn:
            conn.execute(
                insert(_audit).values(
                    at=self.clock(),
                    actor=actor[:128],
                    kind=kind[:32],
                    object_id=object_id[:128],
                    action=action[:16],
                    summary=summary[:MAX_SUMMARY],
                )
            )

    def find(
        self, wanted: AuditFilter, *, offset: int = 0, limit: int | None = None
    ) -> tuple[list[AuditEntry], int]:
        """The entries ``wanted`` picks, newest first, and how many there are in all.

        ``limit`` entries from ``offset`` (every one without a limit).
        """
        condition = wanted.where()
        query = select(_audit).where(condition).order_by(_audit.c.id.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.store.db.connect() as conn:
            count = select(func.count()).select_from(_audit).where(condition)
            total = int(conn.execute(count).scalar_one())
            rows = conn.execute(query).all()
        entries = [
            AuditEntry(r.id, r.at, r.actor, r.kind, r.object_id, r.action, r.summary) for r in rows
        ]
        return entries, total

    def actors(self) -> list[str]:
        """Everyone who changed something, by name (for the page's filter)."""
        with self.store.db.connect() as conn:
            rows = conn.execute(select(_audit.c.actor).distinct().order_by(_audit.c.actor))
            return [actor for (actor,) in rows]


def to_csv(entries: Iterable[AuditEntry]) -> str:
    """The entries as CSV (one header line, times in ISO 8601 UTC)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        cells = (e.at.isoformat(), e.actor, e.kind, e.object_id, e.action, e.summary)
        writer.writerow([_cell(cell) for cell in cells])
    return out.getvalue()


def _cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a ``'``."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value

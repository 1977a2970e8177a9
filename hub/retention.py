"""Retention: the hub deletes what it no longer needs, a small batch at a time.

What is kept, and for how long, is ``[retention]`` in the settings
(:class:`~common.settings.RetentionSettings`; docs/operations.md lists the personal
data each record holds):

* the queue's history, ``history_days`` (400): finished tickets by their business
  day, the audit log (``events``) and the admins' audit (``admin_audit``) by their
  time, and closed e-service applications with their timelines (clerk names, notes)
  by the time they were closed, and the citizens' ratings of their visits (with their
  comments) and the e-service sign-ups recorded at a desk, by the visit's business day;
* appointments (with the name the citizen gave), ``history_days`` and a day after
  their slot ended (their e-mail and client addresses go the night after the slot,
  :func:`hub.appointments.forget_contacts`);
* citizens' notices (what was sent, by which channel; no contact), ``history_days``
  (their contacts are erased ``[notify] grace_min`` after the ticket ends, by
  :meth:`hub.notify.Notices.sweep`);
* with ``[uplink]`` set, audit rows the city has not acknowledged stay however old
  (the city's copy must have no holes; docs/city.md);
* working records, ``working_days`` (7): the receipts of devices' commands and the
  number blocks reserved for kiosks.

Every batch first reads up to ``batch`` keys on a connection of its own (a reader,
which never blocks the writer), then deletes those rows in one short transaction
on the store's writer connection, checking the condition again. The queue's
writes wait at most one batch. Live tickets are never deleted, whatever their day,
and today's tickets are never old enough.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Table, and_, delete, func, select, tuple_

from hub.model import LIVE_STATES
from hub.store import Store, metadata

log = logging.getLogger(__name__)

_LIVE: Final = tuple(sorted(state.value for state in LIVE_STATES))
_CLOSED: Final = "closed"
"""The e-service status after which an application's timeline only ages."""


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """What is old enough to go: records before these moments and days."""

    history_at: datetime
    """Audit rows and closed applications before this time (UTC) go."""
    history_day: date
    """Finished tickets of business days before this one go."""
    working_at: datetime
    """Receipts before this time (UTC) go."""
    working_day: date
    """Number blocks of business days before this one go."""
    acked_events_only: bool = False
    """With an uplink to the city: audit rows the city has not acknowledged stay, however
    old (``uplink_state``; none acknowledged yet keeps them all)."""

    @classmethod
    def of(
        cls,
        now: datetime,
        today: date,
        *,
        history_days: int,
        working_days: int,
        acked_events_only: bool = False,
    ) -> Cutoffs:
        """The cutoffs at ``now`` (aware), on the office's business day ``today``."""
        if history_days < 1 or working_days < 1:
            raise ValueError("records are kept at least one day")
        return cls(
            history_at=now - timedelta(days=history_days),
            history_day=today - timedelta(days=history_days),
            working_at=now - timedelta(days=working_days),
            working_day=today - timedelta(days=working_days),
            acked_events_only=acked_events_only,
        )


@dataclass(frozen=True, slots=True)
class _Rule:
    """One kind of record: its table, its key, and when a row of it is old."""

    name: str
    table: Table
    key: tuple[str, ...]
    old: Callable[[Table, Cutoffs], ColumnElement[bool]]
    order: str | None = None
    """A column to read the oldest first by (the audit log's id, in time order)."""
    also: tuple[tuple[Table, str], ...] = ()
    """Rows of other tables that go with each key: (table, column naming the key)."""


_tickets: Final = metadata.tables["tickets"]
_events: Final = metadata.tables["events"]
_receipts: Final = metadata.tables["receipts"]
_blocks: Final = metadata.tables["number_blocks"]
_applications: Final = metadata.tables["eservice_applications"]
_updates: Final = metadata.tables["eservice_updates"]
_appointments: Final = metadata.tables["appointments"]
_notifications: Final = metadata.tables["notifications"]
_ratings: Final = metadata.tables["ratings"]
_signups: Final = metadata.tables["eservice_signups"]
_admin_audit: Final = metadata.tables["admin_audit"]
_uplink: Final = metadata.tables["uplink_state"]


def _old_event(events: Table, cutoffs: Cutoffs) -> ColumnElement[bool]:
    """An audit row old enough to go (and, with an uplink, acknowledged by the city)."""
    old = events.c.at < cutoffs.history_at
    if not cutoffs.acked_events_only:
        return old
    acked = select(func.coalesce(func.max(_uplink.c.acked_seq), 0)).scalar_subquery()
    return and_(old, events.c.id <= acked)


RULES: Final[tuple[_Rule, ...]] = (
    _Rule(
        "tickets",
        _tickets,
        ("id",),
        lambda t, c: and_(t.c.business_day < c.history_day, t.c.state.not_in(_LIVE)),
    ),
    _Rule("events", _events, ("id",), _old_event, order="id"),
    _Rule("ratings", _ratings, ("ticket_id",), lambda t, c: t.c.business_day < c.history_day),
    _Rule(
        "eservice_signups",
        _signups,
        ("ticket_id", "eservice"),
        lambda t, c: t.c.business_day < c.history_day,
    ),
    _Rule("admin_audit", _admin_audit, ("id",), lambda t, c: t.c.at < c.history_at, order="id"),
    # After the tickets, a day later than they: a check-in's ticket may name its booking.
    _Rule(
        "appointments",
        _appointments,
        ("id",),
        lambda t, c: t.c.ends_at < c.history_at - timedelta(days=1),
    ),
    _Rule(
        "eservice_applications",
        _applications,
        ("reference",),
        lambda t, c: and_(t.c.status == _CLOSED, t.c.status_at < c.history_at),
        also=((_updates, "reference"),),
    ),
    # Notices keep no contact (those go with their ticket, hub.notify): only counts age.
    _Rule(
        "notifications",
        _notifications,
        ("ticket", "kind", "channel"),
        lambda t, c: t.c.event_at < c.history_at,
    ),
    _Rule("receipts", _receipts, ("sender", "msg_id"), lambda t, c: t.c.at < c.working_at),
    _Rule("number_blocks", _blocks, ("id",), lambda t, c: t.c.business_day < c.working_day),
)
"""Everything the hub prunes, in the order it is pruned."""


@dataclass
class PruneReport:
    """What one pruning run deleted."""

    deleted: dict[str, int] = field(default_factory=dict)
    """Rows deleted per table (the rows that went with them are not counted)."""
    batches: list[int] = field(default_factory=list)
    """Rows deleted by each transaction, in order."""
    stopped: bool = False
    """Whether the run was stopped before it finished."""

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.deleted.items() if n) or "nothing"
        return f"pruned {counts} in {len(self.batches)} transactions"


def prune(
    store: Store,
    cutoffs: Cutoffs,
    *,
    batch: int,
    stop: threading.Event | None = None,
    pause_s: float = 0.01,
    after_batch: Callable[[str, int], None] | None = None,
) -> PruneReport:
    """Delete every record older than ``cutoffs``, at most ``batch`` rows a transaction.

    Between batches the store's writer is free (and the run waits ``pause_s``, so
    that a queue write waiting for it goes first). ``stop`` ends the run early;
    ``after_batch(table, rows)`` is called after each committed batch.
    """
    if batch < 1:
        raise ValueError("a batch deletes at least one row")
    stop = stop or threading.Event()
    report = PruneReport()
    for rule in RULES:
        report.deleted[rule.name] = 0
        while not stop.is_set():
            rows = _prune_batch(store, rule, cutoffs, batch)
            if rows:
                report.deleted[rule.name] += rows
                report.batches.append(rows)
                if after_batch is not None:
                    after_batch(rule.name, rows)
            if rows < batch or stop.wait(pause_s):
                break
    report.stopped = stop.is_set()
    return report


def _prune_batch(store: Store, rule: _Rule, cutoffs: Cutoffs, batch: int) -> int:
    """Delete up to ``batch`` old rows of ``rule``'s table; how many went."""
    table = rule.table
    columns = [table.c[name] for name in rule.key]
    query = select(*columns).where(rule.old(table, cutoffs)).limit(batch)
    if rule.order is not None:
        query = query.order_by(table.c[rule.order])
    with store.db.connect() as conn:
        keys: Sequence[Any] = conn.execute(query).all()
    if not keys:
        return 0
    if len(columns) == 1:
        values = [row[0] for row in keys]
        match = columns[0].in_(values)
    else:
        values = [tuple(row) for row in keys]
        match = tuple_(*columns).in_(values)
    with store.transaction() as conn:
        if rule.also:
            # Which of the keys are still old: the others keep their rows elsewhere too.
            still = [
                row[0]
                for row in conn.execute(select(*columns).where(match, rule.old(table, cutoffs)))
            ]
            for other, column in rule.also:
                conn.execute(delete(other).where(other.c[column].in_(still)))
        return int(conn.execute(delete(table).where(match, rule.old(table, cutoffs))).rowcount)

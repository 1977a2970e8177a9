"""Who works at which counter, and each clerk's figures.

A clerk who signs in to the web panel and picks a counter *sits* at it: the
counter's button panel then acts for that clerk, so every counter action (from
the web panel, the button panel's MQTT commands or the REST API) carries the
clerk in its audit row's ``detail`` (``{"clerk": "jana"}``). The seat lasts the
web session's lifetime, renewed as the clerk works, and ends at sign-out or when
the clerk picks another counter (or another clerk sits down there).

Per-clerk statistics are read from the audit trail: served citizens and their
service time (the clerk's call to the end of the visit, less time parked, as in
:mod:`hub.stats`), no-shows, and pauses with their length (a pause lasts until
the counter resumes, whoever resumes it).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, or_, select, update

from hub.model import Action, Change
from hub.store import Store, metadata

_seats: Final = metadata.tables["counter_clerks"]
_events: Final = metadata.tables["events"]

WEB_ACTOR: Final = "web:"
"""The prefix of a web panel's actor: ``web:<user name>``."""

_TRACKED: Final = (
    Action.CALL,
    Action.UNPARK,
    Action.PARK,
    Action.TRANSFER,
    Action.DONE,
    Action.NO_SHOW,
    Action.PAUSE,
    Action.RESUME,
)

CSV_COLUMNS: Final = ("clerk", "served", "mean_service_s", "no_shows", "pauses", "paused_s")


class CounterClerks:
    """The ``counter_clerks`` table: the clerk seated at each counter, if any.

    Every counter action asks :meth:`at` who sits at the counter, on the press path:
    the seats are kept in memory as well, read once from the table and updated after
    each of this object's committed writes (the hub is the table's only writer, and
    builds one :class:`CounterClerks`), so asking costs no database round trip.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._seats: dict[str, tuple[str, datetime]] | None = None
        """Counter → (clerk, seated until), as the table holds it; ``None``: not read yet."""

    def sit(self, counter_id: str, username: str, now: datetime, until: datetime) -> None:
        """Seat ``username`` at ``counter_id`` until ``until``.

        The clerk leaves any other seat, and whoever sat at the counter leaves it.
        """
        with self._lock:
            seats = self._loaded()
            with self.store.transaction() as conn:
                conn.execute(
                    delete(_seats).where(
                        or_(_seats.c.username == username, _seats.c.counter_id == counter_id)
                    )
                )
                conn.execute(
                    insert(_seats).values(
                        counter_id=counter_id, username=username, since=now, until=until
                    )
                )
            for counter, (clerk, _) in list(seats.items()):
                if clerk == username:
                    del seats[counter]
            seats[counter_id] = (username, until)

    def renew(self, counter_id: str, username: str, until: datetime) -> bool:
        """Keep ``username``'s seat at ``counter_id`` until ``until``; ``False``: no such seat."""
        with self._lock:
            seats = self._loaded()
            with self.store.transaction() as conn:
                renewed = bool(
                    conn.execute(
                        update(_seats)
                        .where(_seats.c.counter_id == counter_id, _seats.c.username == username)
                        .values(until=until)
                    ).rowcount
                )
            if renewed:
                seats[counter_id] = (username, until)
            return renewed

    def leave(self, username: str) -> None:
        """End ``username``'s seat (at sign-out)."""
        with self._lock:
            seats = self._loaded()
            with self.store.transaction() as conn:
                conn.execute(delete(_seats).where(_seats.c.username == username))
            for counter, (clerk, _) in list(seats.items()):
                if clerk == username:
                    del seats[counter]

    def at(self, counter_id: str, now: datetime) -> str | None:
        """The clerk seated at ``counter_id`` now, if any."""
        with self._lock:
            seat = self._loaded().get(counter_id)
        return seat[0] if seat is not None and seat[1] > now else None

    def seated(self, now: datetime) -> dict[str, str]:
        """Every seated clerk now, by counter."""
        with self._lock:
            seats = self._loaded()
            return {counter: clerk for counter, (clerk, until) in seats.items() if until > now}

    def _loaded(self) -> dict[str, tuple[str, datetime]]:
        """The seats in memory, read from the table the first time (under ``_lock``)."""
        if self._seats is None:
            with self.store.db.connect() as conn:
                rows = conn.execute(
                    select(_seats.c.counter_id, _seats.c.username, _seats.c.until)
                ).all()
            self._seats = {counter: (clerk, until) for counter, clerk, until in rows}
        return self._seats


def clerk_of_actor(actor: str) -> str | None:
    """The clerk an actor names (``web:jana`` → ``jana``), else ``None``."""
    if not actor.startswith(WEB_ACTOR):
        return None
    return actor.removeprefix(WEB_ACTOR) or None


def attribute(change: Change, clerk: str | None) -> Change:
    """``change`` with ``clerk`` in each audit row's detail (unchanged without a clerk)."""
    if clerk is None:
        return change
    events = tuple(
        dataclasses.replace(event, detail={**event.detail, "clerk": clerk})
        for event in change.events
    )
    return dataclasses.replace(change, events=events)


@dataclass
class ClerkFigures:
    """One clerk's figures over a range of days."""

    clerk: str
    served: int = 0
    service_times: list[float] = field(default_factory=list)
    no_shows: int = 0
    pauses: int = 0
    paused_s: float = 0.0

    @property
    def mean_service_s(self) -> float | None:
        """Mean duration of the clerk's finished visits."""
        return sum(self.service_times) / len(self.service_times) if self.service_times else None


@dataclass(slots=True)
class _Leg:
    """A ticket's current visit at a counter, as the trail tells it."""

    called_at: datetime | None = None
    parked_at: datetime | None = None
    parked_s: float = 0.0


def clerk_statistics(
    store: Store, start: date, end: date, *, timezone: ZoneInfo, now: datetime
) -> list[ClerkFigures]:
    """Each clerk's figures for local days ``start`` … ``end``, by name.

    A pause not yet resumed counts until the end of the range or ``now``, whichever
    comes first.
    """
    since = datetime.combine(start, time.min, tzinfo=timezone)
    until = min(datetime.combine(end + timedelta(days=1), time.min, tzinfo=timezone), now)
    query = (
        select(_events)
        .where(_events.c.at >= since, _events.c.at < until, _events.c.action.in_(_TRACKED))
        .order_by(_events.c.id)
    )
    figures: dict[str, ClerkFigures] = {}
    legs: dict[str, _Leg] = {}
    pauses: dict[str, tuple[str, datetime]] = {}
    with store.db.connect() as conn:
        rows = conn.execute(query).all()
    for row in rows:
        detail: Mapping[str, object] = row.detail or {}
        named = detail.get("clerk")
        clerk = named if isinstance(named, str) else clerk_of_actor(row.actor)
        leg = legs.setdefault(row.ticket_id, _Leg()) if row.ticket_id else _Leg()
        if row.action in (Action.CALL, Action.UNPARK):
            leg.called_at = leg.called_at or row.at
            if leg.parked_at is not None:
                leg.parked_s += (row.at - leg.parked_at).total_seconds()
                leg.parked_at = None
        elif row.action == Action.PARK:
            leg.parked_at = row.at
        elif row.action == Action.TRANSFER:
            legs.pop(row.ticket_id, None)
        elif row.action == Action.RESUME and row.counter_id in pauses:
            paused_by, paused_at = pauses.pop(row.counter_id)
            figures[paused_by].paused_s += (row.at - paused_at).total_seconds()
        if row.action in (Action.DONE, Action.NO_SHOW) and row.ticket_id:
            legs.pop(row.ticket_id, None)
        if clerk is None:
            continue
        mine = figures.setdefault(clerk, ClerkFigures(clerk))
        if row.action == Action.DONE:
            mine.served += 1
            if leg.called_at is not None:
                mine.service_times.append((row.at - leg.called_at).total_seconds() - leg.parked_s)
        elif row.action == Action.NO_SHOW:
            mine.no_shows += 1
        elif row.action == Action.PAUSE and row.counter_id is not None:
            mine.pauses += 1
            pauses[row.counter_id] = (clerk, row.at)
    for paused_by, paused_at in pauses.values():
        figures[paused_by].paused_s += (until - paused_at).total_seconds()
    return sorted(figures.values(), key=lambda f: f.clerk)


def to_csv(rows: Iterable[ClerkFigures]) -> str:
    """The clerks' figures as CSV (one header line; times in seconds)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for f in rows:
        mean = f.mean_service_s
        writer.writerow(
            [
                f.clerk,
                f.served,
                "" if mean is None else round(mean),
                f.no_shows,
                f.pauses,
                round(f.paused_s),
            ]
        )
    return out.getvalue()

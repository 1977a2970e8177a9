"""Statistics from the kept history: waiting and service times, target share, no-shows.

Computed from the ``tickets`` table for a range of business days, per service,
per counter and per hour of the day (in the office's time zone). *Wait* is from
taking the ticket to its first call; *service time* from the first call in the
service that ended the visit to its end, less the time the ticket was parked.
A transferred ticket counts in every service it waited for: its wait in the
first, its end (served or no-show) and service time in the last; the audit log
(``events``) tells its route. docs/web.md has the details.

Appointments are set against walk-ins (the same figures for the tickets of check-ins
and for the others), with their punctuality (check-in time against the slot's start:
early, on time within :data:`ON_TIME_S` either side, late) and the bookings nobody
checked in (from the ``appointments`` table, by the slot's local day).

Priority tickets are counted per reason (:attr:`Statistics.per_priority`), whether a kiosk
issued them with priority or a clerk gave it later.

Remote tickets (taken on the portal) are counted apart too: how many were taken, how many
of their holders checked in at a kiosk, and how many expired without a check-in.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from hub.model import Action, AppointmentState, Priority
from hub.store import Store, metadata

_tickets: Final = metadata.tables["tickets"]
_events: Final = metadata.tables["events"]
_appointments: Final = metadata.tables["appointments"]
_notifications: Final = metadata.tables["notifications"]
_ROUTE_ACTIONS: Final = (Action.ISSUE, Action.TRANSFER, Action.CALL, Action.PARK, Action.UNPARK)
"""What tells a ticket's route and times when it was transferred or parked."""

ON_TIME_S: Final = 300
"""A check-in within this many seconds of the slot's start, either side, is on time."""

CSV_COLUMNS: Final = (
    "business_day",
    "number",
    "service",
    "counter",
    "state",
    "priority",
    "issued_at",
    "called_at",
    "finished_at",
    "wait_s",
    "service_s",
    "services",
    "slot_at",
    "checkin_offset_s",
    "remote",
    "checked_in_at",
)


@dataclass
class Group:
    """Figures of one service, counter or hour."""

    key: str
    tickets: int = 0
    served: int = 0
    no_shows: int = 0
    waits: list[float] = field(default_factory=list)
    services: list[float] = field(default_factory=list)
    within_target: int = 0

    @property
    def mean_wait_s(self) -> float | None:
        """Mean wait of the called tickets."""
        return sum(self.waits) / len(self.waits) if self.waits else None

    @property
    def mean_service_s(self) -> float | None:
        """Mean duration of the finished visits."""
        return sum(self.services) / len(self.services) if self.services else None

    @property
    def within_target_share(self) -> float | None:
        """Share of the called tickets called within the target wait."""
        return self.within_target / len(self.waits) if self.waits else None

    @property
    def no_show_rate(self) -> float | None:
        """Share of the called citizens who did not come."""
        ended = self.served + self.no_shows
        return self.no_shows / ended if ended else None


@dataclass
class Punctuality:
    """When citizens with a booking checked in, against their slot's start."""

    early: int = 0
    """Checked in more than :data:`ON_TIME_S` before the slot."""
    on_time: int = 0
    """Checked in within :data:`ON_TIME_S` of the slot, either side."""
    late: int = 0
    """Checked in more than :data:`ON_TIME_S` after the slot started."""
    offsets: list[float] = field(default_factory=list)
    """Each check-in's seconds from the slot's start (negative: before it)."""

    @property
    def mean_offset_s(self) -> float | None:
        """The mean check-in time against the slot (negative: early on average)."""
        return sum(self.offsets) / len(self.offsets) if self.offsets else None

    def count(self, offset_s: float) -> None:
        """Count one check-in ``offset_s`` seconds from its slot's start."""
        self.offsets.append(offset_s)
        if offset_s < -ON_TIME_S:
            self.early += 1
        elif offset_s > ON_TIME_S:
            self.late += 1
        else:
            self.on_time += 1


@dataclass
class RemoteFigures:
    """What became of the remote tickets (taken on the portal)."""

    taken: int = 0
    checked_in: int = 0
    """Their holders checked in at a kiosk."""
    expired: int = 0
    """Expired with no check-in: passed over too often, or left at the day's end."""

    def count(self, visit: Visit) -> None:
        """Count one remote ticket."""
        self.taken += 1
        if visit.checked_in_at is not None:
            self.checked_in += 1
        elif visit.state == "expired":
            self.expired += 1


@dataclass
class Statistics:
    """The figures for a range of business days."""

    start: date
    end: date
    target_wait_s: int
    total: Group
    per_service: list[Group]
    per_counter: list[Group]
    per_hour: list[Group]
    appointments: Group = field(default_factory=lambda: Group("appointment"))
    """The tickets of check-ins: citizens who came with a booking."""
    walk_ins: Group = field(default_factory=lambda: Group("walk_in"))
    """The other tickets."""
    punctuality: Punctuality = field(default_factory=Punctuality)
    booked_no_shows: int = 0
    """Bookings of the range's days nobody checked in (marked no-show)."""
    per_priority: list[Group] = field(default_factory=list)
    """The priority tickets per reason (``disability``…, in :class:`~hub.model.Priority`'s
    order), each reason that occurred."""
    remote: RemoteFigures = field(default_factory=RemoteFigures)
    """The remote tickets of the range."""

    @property
    def priority_tickets(self) -> int:
        """How many tickets had priority, whatever the reason."""
        return sum(group.tickets for group in self.per_priority)

    @property
    def booked_no_show_rate(self) -> float | None:
        """Share of the bookings that nobody checked in, of those due in the range."""
        due = self.appointments.tickets + self.booked_no_shows
        return self.booked_no_shows / due if due else None


@dataclass(frozen=True, slots=True)
class Visit:
    """One ticket of the history, with its wait and service time."""

    business_day: date
    number: str
    service: str
    counter: str | None
    state: str
    priority: str | None
    issued_at: datetime
    called_at: datetime | None
    finished_at: datetime | None
    wait_s: float | None
    service_s: float | None
    route: tuple[str, ...]
    """Every service the ticket waited for, in order (one unless it was transferred)."""
    slot_at: datetime | None = None
    """The booked slot's start for a ticket of a check-in; ``None`` for a walk-in."""
    checkin_offset_s: float | None = None
    """For a check-in: when it was issued, in seconds from the slot's start."""
    remote: bool = False
    """Taken remotely (on the portal)."""
    checked_in_at: datetime | None = None
    """For a remote ticket: when its holder checked in at a kiosk."""

    @property
    def services(self) -> str:
        """The route as the CSV shows it: ``taxes waste`` for a ticket sent on to waste."""
        return " ".join(self.route)


@dataclass(slots=True)
class Route:
    """A ticket's route and times, from its audit trail.

    The hub reads it only for the transferred or parked tickets; the city, which has no
    ``tickets`` table, for every ticket.
    """

    services: list[str] = field(default_factory=list)
    first_call: datetime | None = None
    last_leg_call: datetime | None = None
    """The first call in the ticket's current service."""
    parked_s: float = 0.0
    """Seconds parked since ``last_leg_call``."""
    parked_at: datetime | None = None

    def add(self, action: str, at: datetime, service: str | None) -> None:
        """Follow one event of the ticket."""
        if action in (Action.ISSUE, Action.TRANSFER) and service is not None:
            self.services.append(service)
            self.last_leg_call, self.parked_s = None, 0.0
        elif action in (Action.CALL, Action.UNPARK):
            self.first_call = self.first_call or at
            self.last_leg_call = self.last_leg_call or at
            if self.parked_at is not None:
                self.parked_s += (at - self.parked_at).total_seconds()
                self.parked_at = None
        elif action == Action.PARK:
            self.parked_at = at


def _routes(conn: Connection, start: date, end: date) -> dict[str, Route]:
    """The routes of the tickets transferred or parked around ``start`` … ``end`` (a few).

    A ticket is transferred or parked on its business day, which lies within a day of
    the UTC date whatever the office's time zone; a neighbouring day's routes are read
    too, and not looked at.
    """
    since = datetime.combine(start - timedelta(days=1), time(), UTC)
    until = datetime.combine(end + timedelta(days=2), time(), UTC)
    moved = select(_events.c.ticket_id).where(
        _events.c.action.in_((Action.TRANSFER, Action.PARK)),
        _events.c.at >= since,
        _events.c.at < until,
    )
    trail = _events.alias("trail")
    query = (
        select(trail.c.ticket_id, trail.c.action, trail.c.at, trail.c.service)
        .where(trail.c.ticket_id.in_(moved), trail.c.action.in_(_ROUTE_ACTIONS))
        .order_by(trail.c.id)
    )
    routes: dict[str, Route] = defaultdict(Route)
    for ticket_id, action, at, service in conn.execute(query):
        routes[ticket_id].add(action, at, service)
    return routes


def visit(
    route: Route,
    *,
    business_day: date,
    number: str,
    service: str,
    counter: str | None,
    state: str,
    priority: str | None,
    issued_at: datetime,
    finished_at: datetime | None,
    slot_at: datetime | None = None,
    remote: bool = False,
    checked_in_at: datetime | None = None,
) -> Visit:
    """One ticket's :class:`Visit`: its wait and service time from its ``route``.

    *Wait* is from ``issued_at`` to the first call; *service time* from the first call
    in the service that ended the visit to ``finished_at``, less the time it was parked
    (only for a ticket ``done``).
    """
    called = route.first_call
    return Visit(
        business_day,
        number,
        service,
        counter,
        state,
        priority,
        issued_at,
        called,
        finished_at,
        (called - issued_at).total_seconds() if called else None,
        (
            (finished_at - route.last_leg_call).total_seconds() - route.parked_s
            if route.last_leg_call and finished_at and state == "done"
            else None
        ),
        tuple(route.services or [service]),
        slot_at,
        (issued_at - slot_at).total_seconds() if slot_at else None,
        remote=remote,
        checked_in_at=checked_in_at,
    )


def visits(store: Store, start: date, end: date) -> Iterator[Visit]:
    """Every ticket issued on business days ``start`` … ``end``, in issue order."""
    query = (
        select(_tickets)
        .where(_tickets.c.business_day >= start, _tickets.c.business_day <= end)
        .order_by(_tickets.c.issued_at, _tickets.c.id)
    )
    with store.db.connect() as conn:
        routes = _routes(conn, start, end)
        for row in conn.execute(query):
            route = routes.get(row.id) or Route([row.service], row.called_at, row.called_at)
            yield visit(
                route,
                business_day=row.business_day,
                number=row.number,
                service=row.service,
                counter=row.counter_id,
                state=row.state,
                priority=row.priority,
                issued_at=row.issued_at,
                finished_at=row.finished_at,
                slot_at=row.slot_at,
                remote=row.remote_code is not None,
                checked_in_at=row.checked_in_at,
            )


def compute(
    store: Store, start: date, end: date, *, timezone: ZoneInfo, target_wait_s: int
) -> Statistics:
    """The statistics of business days ``start`` … ``end``."""
    return aggregate(
        visits(store, start, end),
        start,
        end,
        timezone=timezone,
        target_wait_s=target_wait_s,
        booked_no_shows=booked_no_shows(store, start, end, timezone=timezone),
    )


def aggregate(
    rows: Iterable[Visit],
    start: date,
    end: date,
    *,
    timezone: ZoneInfo,
    target_wait_s: int,
    booked_no_shows: int = 0,
) -> Statistics:
    """The figures of ``rows`` (the visits of business days ``start`` … ``end``), read once.

    Hours are of the day in ``timezone``; ``booked_no_shows`` is passed through.
    """
    total = Group("total")
    appointments, walk_ins, punctuality = Group("appointment"), Group("walk_in"), Punctuality()
    remote = RemoteFigures()
    services: dict[str, Group] = {}
    counters: dict[str, Group] = {}
    hours: dict[int, Group] = defaultdict(lambda: Group(""))
    priorities = {reason.value: Group(reason.value) for reason in Priority}
    for visit in rows:
        hour = visit.issued_at.astimezone(timezone).hour
        groups: list[Group] = [
            total,
            hours[hour],
            walk_ins if visit.slot_at is None else appointments,
        ]
        if visit.checkin_offset_s is not None:
            punctuality.count(visit.checkin_offset_s)
        if visit.remote:
            remote.count(visit)
        if visit.counter is not None:
            groups.append(counters.setdefault(visit.counter, Group(visit.counter)))
        if visit.priority in priorities:
            groups.append(priorities[visit.priority])
        for group in groups:
            count(group, visit, target_wait_s)
        route = visit.route
        for code in dict.fromkeys(route):
            group = services.setdefault(code, Group(code))
            count(group, visit, target_wait_s, wait=code == route[0], end=code == route[-1])
    per_hour = []
    for hour in sorted(hours):
        group = hours[hour]
        group.key = f"{hour:02d}:00"
        per_hour.append(group)
    return Statistics(
        start=start,
        end=end,
        target_wait_s=target_wait_s,
        total=total,
        per_service=list(services.values()),
        per_counter=sorted(counters.values(), key=lambda g: g.key),
        per_hour=per_hour,
        appointments=appointments,
        walk_ins=walk_ins,
        punctuality=punctuality,
        booked_no_shows=booked_no_shows,
        per_priority=[group for group in priorities.values() if group.tickets],
        remote=remote,
    )


def booked_no_shows(store: Store, start: date, end: date, *, timezone: ZoneInfo) -> int:
    """How many bookings with a slot on local days ``start`` … ``end`` were no-shows."""
    since = datetime.combine(start, time.min, tzinfo=timezone)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=timezone)
    query = select(func.count()).where(
        _appointments.c.state == AppointmentState.NO_SHOW.value,
        _appointments.c.starts_at >= since,
        _appointments.c.starts_at < until,
    )
    with store.db.connect() as conn:
        return int(conn.execute(query).scalar_one())


def count(
    group: Group, visit: Visit, target_wait_s: int, *, wait: bool = True, end: bool = True
) -> None:
    """Count ``visit`` in ``group``: its ``wait``, and its ``end`` and service time."""
    group.tickets += 1
    if end and visit.state == "done":
        group.served += 1
    elif end and visit.state == "no_show":
        group.no_shows += 1
    if wait and visit.wait_s is not None:
        group.waits.append(visit.wait_s)
        if visit.wait_s <= target_wait_s:
            group.within_target += 1
    if end and visit.service_s is not None:
        group.services.append(visit.service_s)


def to_csv(rows: Iterable[Visit]) -> str:
    """The visits as CSV (one header line, timestamps in ISO 8601 UTC)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_values(visit) for visit in rows)
    return out.getvalue()


def csv_values(visit: Visit) -> list[Any]:
    """One visit's CSV cells, in :data:`CSV_COLUMNS`' order."""
    values: list[Any] = [getattr(visit, name) for name in CSV_COLUMNS]
    return [
        v.isoformat() if isinstance(v, date | datetime) else ("" if v is None else v)
        for v in values
    ]


NOTICE_STATES: Final = ("sent", "failed", "dropped", "pending")
"""The states of citizens' notices the statistics count (``pending``: not final yet)."""


@dataclass(frozen=True, slots=True)
class NoticeCount:
    """Citizens' notices of one channel (push, email, sms) over a range, by state."""

    channel: str
    sent: int = 0
    failed: int = 0
    """Given up (refused, or every attempt failed)."""
    dropped: int = 0
    """Not sent: their cause had passed (the ticket was called or ended)."""
    pending: int = 0
    """Still waiting to be sent (or being sent)."""


def notices(store: Store, start: date, end: date, *, timezone: ZoneInfo) -> list[NoticeCount]:
    """Citizens' notices caused on business days ``start`` … ``end``, per channel."""
    first = datetime.combine(start, time(), timezone).astimezone(UTC)
    after = datetime.combine(end + timedelta(days=1), time(), timezone).astimezone(UTC)
    n = _notifications
    query = (
        select(n.c.channel, n.c.state, func.count())
        .where(n.c.event_at >= first, n.c.event_at < after)
        .group_by(n.c.channel, n.c.state)
    )
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    with store.db.connect() as conn:
        for channel, state, count in conn.execute(query):
            key = state if state in NOTICE_STATES else "pending"
            counts[channel][key] = counts[channel].get(key, 0) + int(count)
    return [NoticeCount(channel, **counts[channel]) for channel in sorted(counts)]


def notices_csv(rows: Iterable[NoticeCount]) -> str:
    """Notices per channel as CSV: channel, then a column per state."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("channel", *NOTICE_STATES))
    for row in rows:
        writer.writerow((row.channel, *(getattr(row, state) for state in NOTICE_STATES)))
    return out.getvalue()

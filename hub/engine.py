"""The queue engine: every rule of the walk-in queue, in pure Python with no I/O.

The engine holds the live part of the queue in memory (today's numbering, the
tickets that still hold a number, the counters) and decides what each operation
changes. Deciding never mutates: an operation returns a :class:`~.model.Change`,
the service layer persists it, and only then calls :meth:`Engine.apply`. A write
that fails therefore leaves the engine as it was.

Time is always passed in (``now``, an aware :class:`~datetime.datetime`); the
engine never reads a clock, which keeps it deterministic and testable.

The rules themselves (numbering, call-next policy, recall and no-show, transfer,
park, the wait estimate, day rollover, appointments' check-in and their fair merging
with walk-ins) are documented in ``docs/queue.md``.
"""

from __future__ import annotations

import dataclasses
import heapq
import uuid
from collections import deque
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from common.errors import Params
from common.numbering import (
    MAX_DISPLAY_NUMBER,
    OFFLINE_SEQ_TOP,
    ONLINE_SEQ_LAST,
    display_number,
)
from hub.calendar import OfficeCalendar
from hub.model import (
    Action,
    Appointment,
    AppointmentState,
    Change,
    Counter,
    CounterState,
    Event,
    NumberBlock,
    Priority,
    Service,
    Ticket,
    TicketState,
)


class QueueError(Exception):
    """An operation the queue refuses, with a stable machine-readable ``code``.

    The message is meant for the clerk or the log; ``code`` is what the protocol
    and the API return so that devices can translate it.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        service: str | None = None,
        detail: str | None = None,
        params: Params | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.service = service
        """The service the refusal is about, where the device can offer it instead (a
        late check-in's booked service)."""
        self.detail = detail
        """A finer reason, where one code covers several (as :class:`PoradovnikError`)."""
        self.params: Params = dict(params or {})
        """The values the pages' text of the refusal names (``hub.web.refusals``)."""


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """The office's queue rules that are not per service."""

    max_calls: int = 3
    """A ticket is called at most this many times; a further recall marks it no-show."""
    transfer_keeps_arrival: bool = True
    """A transferred ticket keeps its place by original arrival (else joins at the back)."""
    service_time_window: int = 20
    """How many recent visits per service the wait estimate averages."""
    max_kiosk_blocks: int = 2
    """How many blocks of one service a kiosk may hold on a day while any of their numbers
    has not come back as a ticket; a further request is refused (``too_many_blocks``)."""
    checkin_early_s: int = 1800
    """How long before its slot starts a booking may be checked in; earlier is refused
    (``too_early``)."""
    checkin_grace_s: int = 600
    """How long after its slot starts a booking may still be checked in; later is refused
    (``too_late``: the kiosk offers a walk-in ticket), and a booking nobody checked in by
    then becomes a no-show."""
    call_window_s: int = 120
    """How long before its slot a checked-in appointment becomes *due*: from then on it is
    called ahead of walk-ins (within :attr:`appointment_share`). Before that it ranks as a
    walk-in who arrived at the slot's start, so it is called early only when nobody else
    waits for the counter."""
    walk_in_target_wait_s: int = 900
    """The walk-ins' target wait: while a walk-in the counter serves has waited longer,
    due appointments take at most :attr:`appointment_share` of the calls."""
    appointment_share: float = 0.5
    """The largest share of the office's last :attr:`share_window` calls that may go to
    appointments while a walk-in waits past :attr:`walk_in_target_wait_s`; a call that
    would exceed it goes to the longest-waiting walk-in instead."""
    share_window: int = 10
    """How many of the office's most recent calls, the one being decided included,
    :attr:`appointment_share` is measured over."""
    cut_off_margin_s: int = 300
    """A service stops issuing walk-in tickets when a new one would be called later than
    this before its opening closes (``cut_off``; see docs/queue.md)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a citizen is told about a waiting ticket."""

    people_ahead: int
    """Waiting tickets of the same service that will be called first."""
    estimated_wait_s: int | None
    """Seconds until the call; ``None`` when no counter serves the service."""


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a service issues walk-in tickets now, and if not, why and until when."""

    refused: str | None
    """Why no ticket is issued now: ``service_closed`` (the admin's switch),
    ``outside_hours`` (hours, holidays, closures) or ``cut_off``; ``None``: it issues."""
    opens_at: datetime | None = None
    """When it is not issuing: the next local time it opens (``None``: not known, or not
    within the calendar's horizon)."""
    closed_for: str | None = None
    """When the calendar closes it: the holiday's name or the closure's reason."""
    closes_at: datetime | None = None
    """When it is open with hours: the local time the current opening ends (``None``: not
    within the calendar's horizon, or a service open always)."""

    @property
    def issuing(self) -> bool:
        """Whether a walk-in ticket can be taken now."""
        return self.refused is None


@dataclass(slots=True)
class Snapshot:
    """Everything the engine needs to resume after a restart, as the store keeps it."""

    day: date
    """The business day the snapshot describes."""
    services: list[Service] = field(default_factory=list)
    counters: list[Counter] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    """Every live ticket, whatever its day."""
    last_seq: dict[str, int] = field(default_factory=dict)
    """Per numbering service, the highest sequence the hub issued on ``day`` (offline
    sequences, above ``ONLINE_SEQ_LAST``, left out)."""
    issued: dict[str, int] = field(default_factory=dict)
    """Per numbering service, how many tickets were issued on ``day``."""
    durations: dict[str, list[float]] = field(default_factory=dict)
    """Per service, recent visit durations in seconds, oldest first."""
    blocks: list[NumberBlock] = field(default_factory=list)
    """The number blocks reserved for kiosks on ``day``."""
    delivered: set[tuple[str, int]] = field(default_factory=set)
    """(numbering service, sequence) of the tickets kiosks issued offline on ``day``."""
    checked_in: set[str] = field(default_factory=set)
    """The appointments checked in on ``day`` (the ``appointment`` of its tickets)."""
    remote_issued: dict[str, int] = field(default_factory=dict)
    """Per numbering service, how many remote tickets were issued on ``day``."""


MAX_BLOCK_SIZE = 100
"""The most numbers one block may hold."""

Rivals = dict[tuple[bool, str], list[Ticket]]
"""Waiting tickets by (booked, service): a copy that :func:`front` looks in."""


def _new_id() -> str:
    return uuid.uuid4().hex


class Engine:
    """The single source of truth for the walk-in queue of one site.

    Build it with :meth:`from_snapshot` (from the store) or directly with the
    catalog for tests. Only the hub's service layer calls it, under one lock.
    """

    def __init__(
        self,
        *,
        timezone: ZoneInfo,
        policy: QueuePolicy | None = None,
        services: Iterable[Service] = (),
        counters: Iterable[Counter] = (),
        day: date | None = None,
        new_id: Callable[[], str] = _new_id,
        calendar: OfficeCalendar | None = None,
    ) -> None:
        self.timezone = timezone
        self.policy = policy or QueuePolicy()
        self.calendar = calendar or OfficeCalendar()
        """Holidays and closures that narrow the services' weekly hours."""
        self.services: dict[str, Service] = {}
        self.counters: dict[str, Counter] = {}
        self.tickets: dict[str, Ticket] = {}
        """Live tickets by id; terminal ones leave memory (the store keeps them)."""
        self.day = day or datetime.now(UTC).astimezone(timezone).date()
        self._new_id = new_id
        self._last_seq: dict[str, int] = {}
        self._issued: dict[str, int] = {}
        self._durations: dict[str, deque[float]] = {}
        self._live_numbers: dict[str, str] = {}
        self._waiting: dict[str, dict[str, Ticket]] = {}
        """Waiting tickets by service, then id: what call-next and estimates look at."""
        self._heads: dict[str, list[_HeadEntry]] = {}
        """Per service, a heap of its waiting tickets in call order within the service; an
        entry whose ticket no longer waits (or waits with another key) is dropped when it
        reaches the top."""
        self._oldest_day: date | None = None
        """No live ticket is of an earlier business day than this (none: no live ticket
        yet); :meth:`roll_over` looks for leftovers only when it is before today."""
        self._reserved: dict[str, str] = {}
        """Numbers of today's blocks not yet delivered as tickets, and the kiosk holding each."""
        self._blocks: list[NumberBlock] = []
        """Today's blocks, in the order they were reserved."""
        self._booked: dict[str, dict[str, Ticket]] = {}
        """Per service, its waiting checked-in appointments (:attr:`Ticket.booked`) by id;
        they are ordered by their slot rather than in the service's heap."""
        self._checked_in: set[str] = set()
        """The appointments checked in today: each is checked in once."""
        self._remote_issued: dict[str, int] = {}
        """Per service, how many remote tickets it issued today (for its quota)."""
        self._remote_codes: dict[str, str] = {}
        """The live remote tickets' check-in codes, and the ticket of each."""
        self._unchecked: dict[str, dict[str, Ticket]] = {}
        """Per service, its waiting remote tickets held back until their holder checks in
        (:meth:`held_back`); call-next passes over them rather than calling them."""
        self._recent_calls: deque[bool] = deque(maxlen=max(0, self.policy.share_window - 1))
        """The office's latest calls but one, oldest first: whether each went to an
        appointment (with the call being decided, they make the share's window)."""
        for service in services:
            self.put_service(service)
        for counter in counters:
            self.put_counter(counter)

    @classmethod
    def from_snapshot(
        cls,
        snapshot: Snapshot,
        *,
        timezone: ZoneInfo,
        policy: QueuePolicy | None = None,
        new_id: Callable[[], str] = _new_id,
        calendar: OfficeCalendar | None = None,
    ) -> Engine:
        """Rebuild the engine from what the store kept."""
        engine = cls(
            timezone=timezone,
            policy=policy,
            calendar=calendar,
            services=snapshot.services,
            counters=snapshot.counters,
            day=snapshot.day,
            new_id=new_id,
        )
        for ticket in snapshot.tickets:
            engine._hold(ticket)
        engine._last_seq.update(snapshot.last_seq)
        engine._issued.update(snapshot.issued)
        for code, values in snapshot.durations.items():
            engine._recent(code).extend(values)
        for block in snapshot.blocks:
            engine._hold_block(block, skip=snapshot.delivered)
        engine._checked_in.update(snapshot.checked_in)
        engine._remote_issued.update(snapshot.remote_issued)
        return engine

    # -- catalog -------------------------------------------------------------

    def put_service(self, service: Service) -> None:
        """Add or replace a service, refusing a prefix another service uses."""
        if len(service.prefix) != 1 or not service.prefix.isalpha():
            raise QueueError("invalid_prefix", f"prefix {service.prefix!r} must be one letter")
        for other in self.services.values():
            if other.code != service.code and other.prefix == service.prefix:
                raise QueueError(
                    "duplicate_prefix",
                    f"prefix {service.prefix} is already used by service {other.code}",
                    params={"prefix": service.prefix, "service": other.code},
                )
        if service.weight <= 0:
            raise QueueError("invalid_weight", "a service's weight must be positive")
        rules = service.remote
        if rules.daily_quota < 0 or rules.stop_before_close_s < 0 or rules.max_passes < 0:
            raise QueueError("invalid_remote", "the remote tickets' rules must not be negative")
        self.services[service.code] = service
        # The presence rule decides which of its waiting tickets are held back.
        for ticket in list(self._waiting.get(service.code, {}).values()):
            self._hold(ticket)

    def put_counter(self, counter: Counter) -> None:
        """Add or replace a counter, refusing services that do not exist."""
        missing = [code for code in counter.services if code not in self.services]
        if missing:
            raise QueueError(
                "unknown_service",
                f"counter {counter.id} serves unknown {', '.join(missing)}",
                detail="counter",
                params={"service": ", ".join(missing)},
            )
        old = self.counters.get(counter.id)
        if old is not None:
            # The catalog changes what a counter is; its state belongs to the queue.
            counter = _with(counter, state=old.state, current=old.current)
        self.counters[counter.id] = counter

    # -- reading -------------------------------------------------------------

    def local_day(self, now: datetime) -> date:
        """The site-local business day that ``now`` falls on."""
        return now.astimezone(self.timezone).date()

    def waiting_count(self, service: str) -> int:
        """How many tickets wait for ``service``."""
        return len(self._waiting.get(service, ()))

    def issued_today(self, service: str) -> int:
        """How many tickets ``service`` has issued on the engine's business day."""
        return self._issued.get(service, 0)

    def estimate(self, ticket: Ticket) -> Estimate:
        """People ahead of a waiting ``ticket`` and its expected wait (see docs/queue.md).

        A checked-in appointment is called at its slot ahead of walk-ins: only the
        appointments of earlier slots are ahead of it.
        """
        mine = _rank_key(ticket)
        rivals = (self._booked if ticket.booked else self._waiting).get(ticket.service, {})
        ahead = sum(1 for t in rivals.values() if t.id != ticket.id and _rank_key(t) < mine)
        return self._estimate(ticket.service, ahead)

    def rivals(self, services: Iterable[str] | None = None) -> Rivals:
        """A copy of the waiting tickets of ``services`` (``None``: all), for :func:`front`.

        Copying the lists is all that needs the queue's lock: the tickets are immutable, so
        the many counts of :mod:`hub.notify` run outside it, while presses go on.
        """
        codes = set(self._waiting) | set(self._booked) if services is None else set(services)
        return {
            (booked, code): list(group[code].values())
            for code in codes
            for booked, group in ((False, self._waiting), (True, self._booked))
            if code in group
        }

    def estimate_new(self, service: str) -> Estimate:
        """What a citizen taking an ordinary ticket for ``service`` now would be told."""
        return self._estimate(service, self.waiting_count(service))

    def open_counters(self, service: str) -> list[Counter]:
        """The open counters that serve ``service``."""
        return [
            c
            for c in self.counters.values()
            if service in c.services and c.state is CounterState.OPEN
        ]

    def _estimate(self, service: str, ahead: int) -> Estimate:
        open_counters = self.open_counters(service)
        capacity = len(open_counters) or sum(
            1 for c in self.counters.values() if service in c.services
        )
        if capacity == 0:
            return Estimate(ahead, None)
        mean = self.mean_service_time(service)
        idle = sum(1 for c in open_counters if c.current is None)
        if ahead < idle:
            return Estimate(ahead, 0)
        residual = mean / 2 if idle == 0 else 0.0
        return Estimate(ahead, round(ahead * mean / capacity + residual))

    def availability(self, service: str, now: datetime) -> Availability:
        """Whether ``service`` issues walk-in tickets at ``now``, and if not, why.

        By the admin's switch, the calendar and the cut-off (see docs/queue.md); the
        times are in the site's zone.
        """
        svc = self._service(service)
        if not svc.open:
            return Availability("service_closed")
        local = now.astimezone(self.timezone)
        calendar = self.calendar
        if not calendar.is_open(svc.hours, local, service):
            return Availability(
                "outside_hours",
                calendar.next_opening(svc.hours, local, service),
                calendar.closed_for(svc.hours, local, service),
            )
        if svc.hours.always:
            return Availability(None)  # round the clock: never cut off
        closes_at = calendar.closing(svc.hours, local, service)
        if closes_at is None:
            return Availability(None)
        wait_s = self.estimate_new(service).estimated_wait_s
        margin = timedelta(seconds=self.policy.cut_off_margin_s)
        if wait_s is not None and local + timedelta(seconds=wait_s) + margin > closes_at:
            opens_at = calendar.next_opening(svc.hours, closes_at, service)
            return Availability("cut_off", opens_at, closes_at=closes_at)
        return Availability(None, closes_at=closes_at)

    def remote_availability(self, service: str, now: datetime) -> Availability:
        """Whether ``service`` issues remote tickets at ``now``, and if not, why.

        As :meth:`availability`, and further refused with ``remote_disabled`` (the
        admin's switch), ``remote_closed`` (within :attr:`RemoteRules.stop_before_close_s`
        of the opening's end) or ``remote_quota`` (the day's quota is taken).
        """
        svc = self._service(service)
        rules = svc.remote
        if not rules.enabled:
            return Availability("remote_disabled")
        availability = self.availability(service, now)
        if availability.refused is not None:
            return availability
        closes_at = availability.closes_at
        local = now.astimezone(self.timezone)
        if closes_at is not None and local + timedelta(seconds=rules.stop_before_close_s) > (
            closes_at
        ):
            opens_at = self.calendar.next_opening(svc.hours, closes_at, service)
            return Availability("remote_closed", opens_at, closes_at=closes_at)
        if self._remote_issued.get(service, 0) >= rules.daily_quota:
            return Availability("remote_quota", closes_at=closes_at)
        return availability

    def remote_issued_today(self, service: str) -> int:
        """How many remote tickets ``service`` has issued on the engine's business day."""
        return self._remote_issued.get(service, 0)

    def held_back(self, ticket: Ticket) -> bool:
        """Whether call-next must pass over ``ticket`` rather than call it.

        True for a remote ticket whose holder has not checked in, of a service that
        requires presence.
        """
        service = self.services.get(ticket.service)
        return (
            ticket.remote
            and ticket.checked_in_at is None
            and (service is None or service.remote.presence)
        )

    def latest_arrival(self, ticket: Ticket, now: datetime) -> datetime | None:
        """The latest time the holder of a held-back remote ``ticket`` should check in.

        Its expected call (``now`` plus the estimated wait), in the site's zone; ``None``
        when it is not held back, does not wait, or no counter serves its service.
        """
        if ticket.state is not TicketState.WAITING or not self.held_back(ticket):
            return None
        wait_s = self.estimate(ticket).estimated_wait_s
        if wait_s is None:
            return None
        return (now + timedelta(seconds=wait_s)).astimezone(self.timezone)

    def remote_ticket(self, code: str) -> Ticket | None:
        """The live remote ticket whose check-in code is ``code``."""
        ticket_id = self._remote_codes.get(code)
        return None if ticket_id is None else self.tickets.get(ticket_id)

    def mean_service_time(self, service: str) -> float:
        """Mean of the recent visit durations, or the service's default without any."""
        recent = self._durations.get(service)
        if recent:
            return sum(recent) / len(recent)
        return float(self.services[service].default_service_time_s)

    # -- operations ----------------------------------------------------------

    def roll_over(self, now: datetime, *, actor: str = "system") -> Change | None:
        """Start a new business day if ``now`` is on one: expire leftovers, reset numbers.

        Live tickets of earlier days expire whether or not the engine's own day
        changed (a hub restarted after midnight resumes on the new day). Returns
        ``None`` when there is nothing to do.
        """
        today = self.local_day(now)
        if today == self.day and (self._oldest_day is None or self._oldest_day >= today):
            return None
        leftovers = sorted(
            (t for t in self.tickets.values() if t.business_day < today), key=_arrival_key
        )
        if today == self.day and not leftovers:
            return None
        expired = [t.evolve(state=TicketState.EXPIRED, finished_at=now) for t in leftovers]
        events = tuple(
            _event(now, Action.EXPIRE, actor, old, new)
            for old, new in zip(leftovers, expired, strict=True)
        )
        held = {t.id for t in leftovers}
        # A new day starts with every counter paused and empty; its first Next opens it.
        counters = tuple(
            _with(c, state=CounterState.PAUSED, current=None)
            for c in self.counters.values()
            if c.current in held or (today != self.day and c.state is CounterState.OPEN)
        )
        return Change(tickets=tuple(expired), counters=counters, events=events, day=today)

    def issue(
        self,
        service: str,
        now: datetime,
        *,
        priority: Priority | None = None,
        lang: str = "sk",
        actor: str = "system",
    ) -> Change:
        """Issue a new ticket for ``service``; the change's ``subject`` is the ticket."""
        self._check_day(now)
        svc = self._service(service)
        availability = self.availability(service, now)
        if availability.refused is not None:
            raise QueueError(availability.refused, _refusal(svc, availability))
        self._check_limit(svc)
        if priority is not None and not svc.priority_allowed:
            raise QueueError(
                "priority_not_offered", f"service {service} issues no priority tickets"
            )
        return self._new_ticket(svc, now, actor, priority=priority, lang=lang)

    def prioritise(
        self, ticket_id: str, priority: Priority, now: datetime, *, actor: str = "system"
    ) -> Change:
        """Give a live ticket priority (a clerk's decision), or change its reason.

        A waiting ticket moves ahead of those without priority at once; a called or
        parked one keeps it if it goes back to wait (a transfer). The service's
        :attr:`~.model.Service.priority_allowed` does not bind a clerk. Refused with
        ``unknown_ticket`` (not a live ticket: finished, or never issued),
        ``remote_ticket`` (a remote ticket never carries priority) and ``same_priority``
        (it has this priority already).
        """
        self._check_day(now)
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise QueueError("unknown_ticket", f"no live ticket {ticket_id!r}")
        if ticket.remote:
            raise QueueError(
                "remote_ticket", f"ticket {ticket.number} is a remote ticket: it has no priority"
            )
        if ticket.priority is priority:
            raise QueueError(
                "same_priority", f"ticket {ticket.number} has priority {priority.value} already"
            )
        raised = ticket.evolve(priority=priority)
        detail = {"priority": priority.value, "was": ticket.priority and ticket.priority.value}
        return Change(
            tickets=(raised,),
            events=(_event(now, Action.PRIORITISE, actor, ticket, raised, detail),),
            subject=raised,
        )

    def issue_remote(
        self, service: str, now: datetime, *, code: str, lang: str = "sk", actor: str = "system"
    ) -> Change:
        """Issue a remote ticket (taken on the portal) with check-in ``code``.

        Refused as :meth:`remote_availability` says, by the service's daily limit, or
        with ``duplicate_code`` when a live remote ticket has ``code`` (the caller draws
        another). A remote ticket never carries a priority.
        """
        self._check_day(now)
        svc = self._service(service)
        availability = self.remote_availability(service, now)
        match availability.refused:
            case None:
                pass
            case "remote_disabled":
                raise QueueError("remote_disabled", f"{service} issues no remote tickets")
            case "remote_closed":
                raise QueueError("remote_closed", f"{service} takes no more remote tickets now")
            case "remote_quota":
                raise QueueError(
                    "remote_quota",
                    f"{service} has issued its {svc.remote.daily_quota} remote tickets today",
                )
            case refused:
                raise QueueError(refused, _refusal(svc, availability))
        self._check_limit(svc)
        if code in self._remote_codes:
            raise QueueError("duplicate_code", f"a live remote ticket has the code {code}")
        return self._new_ticket(
            svc, now, actor, lang=lang, remote_code=code, detail={"remote": True}
        )

    def check_in_remote(self, code: str, now: datetime, *, actor: str = "system") -> Change:
        """Record that the holder of the remote ticket with ``code`` is in the office.

        From then on the ticket is called in its turn. Refused with ``unknown_booking``
        (no live remote ticket has the code: unknown, or expired) or ``checked_in``.
        """
        self._check_day(now)
        ticket = self.remote_ticket(code)
        if ticket is None:
            raise QueueError("unknown_booking", f"no live remote ticket has the code {code}")
        if ticket.checked_in_at is not None:
            raise QueueError("checked_in", f"ticket {ticket.number} is already checked in")
        checked = ticket.evolve(checked_in_at=now)
        return Change(
            tickets=(checked,),
            events=(_event(now, Action.CHECK_IN, actor, ticket, checked),),
            subject=checked,
        )

    def _check_limit(self, svc: Service) -> None:
        """Refuse (``daily_limit``) when ``svc`` has issued its tickets of the day."""
        if svc.daily_limit is not None and self._issued.get(svc.code, 0) >= svc.daily_limit:
            raise QueueError(
                "daily_limit", f"service {svc.code} has issued its {svc.daily_limit} tickets today"
            )

    def check_in(
        self, appointment: Appointment, now: datetime, *, lang: str, actor: str = "system"
    ) -> Change:
        """Issue the ticket of a citizen with a booking who has arrived.

        The ticket takes the booked service's next number and carries the appointment
        and its slot, which order its call (see docs/queue.md). Refused with
        ``cancelled``, ``unknown_booking`` (not confirmed), ``checked_in`` (already),
        ``too_early`` (before the slot less :attr:`QueuePolicy.checkin_early_s`) or
        ``too_late`` (after the slot plus :attr:`QueuePolicy.checkin_grace_s`, or a
        booking already marked a no-show). A booked seat is honoured whatever the
        service's switch, hours or daily limit; the ticket counts towards the limit.
        """
        self._check_day(now)
        svc = self._service(appointment.service)
        slot = appointment.starts_at
        opens = self.check_in_opens(slot)
        closes = slot + timedelta(seconds=self.policy.checkin_grace_s)
        if appointment.state is AppointmentState.CANCELLED:
            raise QueueError("cancelled", f"booking {appointment.code} was cancelled")
        if appointment.id in self._checked_in:
            raise QueueError("checked_in", f"booking {appointment.code} is already checked in")
        if appointment.state is AppointmentState.NO_SHOW:
            raise QueueError(
                "too_late",
                f"booking {appointment.code} lapsed as a no-show",
                service=appointment.service,
            )
        if appointment.state is not AppointmentState.BOOKED:
            raise QueueError("unknown_booking", f"booking {appointment.code} is not confirmed")
        if now < opens:  # opens on the slot's day at the earliest: never before today
            local = opens.astimezone(self.timezone)
            raise QueueError(
                "too_early",
                f"check-in opens at {local:%Y-%m-%d %H:%M}",
                service=appointment.service,
            )
        if now > closes or self.local_day(slot) < self.day:
            local = closes.astimezone(self.timezone)
            raise QueueError(
                "too_late",
                f"check-in closed at {local:%Y-%m-%d %H:%M}",
                service=appointment.service,
            )
        return self._new_ticket(
            svc,
            now,
            actor,
            lang=lang,
            appointment=appointment.id,
            slot_at=slot,
            detail={"appointment": appointment.id},
        )

    def check_in_opens(self, slot: datetime) -> datetime:
        """When the check-in of a booking whose slot starts at ``slot`` opens.

        :attr:`QueuePolicy.checkin_early_s` before the slot, but never on the day
        before: a ticket belongs to its slot's business day.
        """
        early = slot - timedelta(seconds=self.policy.checkin_early_s)
        local = slot.astimezone(self.timezone)
        midnight = datetime.combine(local.date(), time.min, tzinfo=self.timezone)
        return max(early, midnight.astimezone(UTC))

    def _new_ticket(
        self,
        svc: Service,
        now: datetime,
        actor: str,
        *,
        lang: str,
        priority: Priority | None = None,
        appointment: str | None = None,
        slot_at: datetime | None = None,
        remote_code: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> Change:
        """Issue a ticket with the next free number of ``svc``'s day sequence."""
        seq = self._last_seq.get(svc.code, 0)
        for _ in range(MAX_DISPLAY_NUMBER):
            seq += 1
            number = display_number(svc.prefix, seq)
            if self._number_free(number):
                break
        else:
            raise QueueError(
                "numbers_exhausted", f"all {MAX_DISPLAY_NUMBER} numbers of {svc.code} are in use"
            )
        if _offline(seq):
            raise QueueError("numbers_exhausted", f"{svc.code} has issued every number of today")
        ticket = Ticket(
            id=self._new_id(),
            number_service=svc.code,
            business_day=self.day,
            seq=seq,
            number=number,
            service=svc.code,
            issued_at=now,
            arrived_at=now,
            priority=priority,
            lang=lang,
            appointment=appointment,
            slot_at=slot_at,
            remote_code=remote_code,
        )
        event = _event(now, Action.ISSUE, actor, None, ticket, detail)
        return Change(
            tickets=(ticket,),
            events=(event,),
            new_ticket_ids=frozenset({ticket.id}),
            subject=ticket,
        )

    def call_next(self, counter_id: str, now: datetime, *, actor: str = "system") -> Change:
        """Finish the counter's current ticket, if any, and call the next one.

        A paused counter is opened. The change's ``subject`` is the called ticket,
        or ``None`` when nobody waits for the counter's services.
        """
        self._check_day(now)
        counter = self._counter(counter_id)
        change = Change()
        if counter.state is CounterState.PAUSED:
            counter = _with(counter, state=CounterState.OPEN)
            change += Change(
                counters=(counter,),
                events=(_counter_event(now, Action.RESUME, actor, counter, CounterState.PAUSED),),
            )
        if counter.current is not None:
            change += self._finish(counter, now, actor, TicketState.DONE, Action.DONE)
            counter = _with(counter, current=None)
        chosen = self._choose(counter, now)
        change += self._pass_over(counter, chosen, now, actor)
        if chosen is None:
            return dataclasses.replace(change + Change(counters=(counter,)), subject=None)
        called = chosen.evolve(state=TicketState.CALLED, counter=counter.id, calls=1, called_at=now)
        counter = _with(counter, current=called.id)
        return change + Change(
            tickets=(called,),
            counters=(counter,),
            events=(_event(now, Action.CALL, actor, chosen, called),),
            subject=called,
        )

    def recall(self, counter_id: str, now: datetime, *, actor: str = "system") -> Change:
        """Call the counter's ticket again; past ``max_calls`` calls it becomes a no-show."""
        counter, ticket = self._current(counter_id, now, TicketState.CALLED)
        if ticket.calls >= self.policy.max_calls:
            return self._finish(counter, now, actor, TicketState.NO_SHOW, Action.NO_SHOW, auto=True)
        called = ticket.evolve(calls=ticket.calls + 1)
        return Change(
            tickets=(called,),
            events=(_event(now, Action.RECALL, actor, ticket, called),),
            subject=called,
        )

    def start(self, counter_id: str, now: datetime, *, actor: str = "system") -> Change:
        """Mark that the called citizen has arrived and service started."""
        _, ticket = self._current(counter_id, now, TicketState.CALLED)
        serving = ticket.evolve(state=TicketState.SERVING, serving_at=now)
        return Change(
            tickets=(serving,),
            events=(_event(now, Action.START, actor, ticket, serving),),
            subject=serving,
        )

    def done(self, counter_id: str, now: datetime, *, actor: str = "system") -> Change:
        """Finish the counter's ticket as served."""
        counter, _ = self._current(counter_id, now, TicketState.CALLED, TicketState.SERVING)
        return self._finish(counter, now, actor, TicketState.DONE, Action.DONE)

    def no_show(self, counter_id: str, now: datetime, *, actor: str = "system") -> Change:
        """Finish the counter's called ticket as a citizen who did not come."""
        counter, _ = self._current(counter_id, now, TicketState.CALLED)
        return self._finish(counter, now, actor, TicketState.NO_SHOW, Action.NO_SHOW)

    def transfer(
        self, counter_id: str, service: str, now: datetime, *, actor: str = "system"
    ) -> Change:
        """Send the counter's ticket to wait for another service, keeping its number."""
        counter, ticket = self._current(counter_id, now, TicketState.CALLED, TicketState.SERVING)
        self._service(service)
        if service == ticket.service:
            raise QueueError("same_service", f"ticket {ticket.number} already waits for {service}")
        moved = ticket.evolve(
            state=TicketState.WAITING,
            service=service,
            counter=None,
            calls=0,
            called_at=None,
            serving_at=None,
            arrived_at=ticket.arrived_at if self.policy.transfer_keeps_arrival else now,
        )
        event = _event(now, Action.TRANSFER, actor, ticket, moved, {"to_service": service})
        return Change(
            tickets=(moved,),
            counters=(_with(counter, current=None),),
            events=(event,),
            subject=moved,
        )

    def park(self, counter_id: str, now: datetime, *, actor: str = "system") -> Change:
        """Set the counter's ticket aside (the citizen fetches a document, say)."""
        counter, ticket = self._current(counter_id, now, TicketState.CALLED, TicketState.SERVING)
        parked = ticket.evolve(state=TicketState.PARKED)
        return Change(
            tickets=(parked,),
            counters=(_with(counter, current=None),),
            events=(_event(now, Action.PARK, actor, ticket, parked),),
            subject=parked,
        )

    def unpark(
        self, counter_id: str, ticket_id: str, now: datetime, *, actor: str = "system"
    ) -> Change:
        """Call a parked ticket back to a free counter."""
        self._check_day(now)
        counter = self._counter(counter_id)
        if counter.current is not None:
            raise QueueError("counter_busy", f"counter {counter_id} still has a ticket")
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket.state is not TicketState.PARKED:
            raise QueueError("not_parked", f"ticket {ticket_id} is not parked")
        called = ticket.evolve(
            state=TicketState.CALLED, counter=counter.id, calls=1, called_at=now, serving_at=None
        )
        counter = _with(counter, current=called.id, state=CounterState.OPEN)
        return Change(
            tickets=(called,),
            counters=(counter,),
            events=(_event(now, Action.UNPARK, actor, ticket, called),),
            subject=called,
        )

    def pause(self, counter_id: str, now: datetime, *, actor: str = "system") -> Change:
        """Stop the counter taking citizens (a break); it must have no ticket."""
        return self._set_counter_state(counter_id, now, actor, CounterState.PAUSED)

    def resume(self, counter_id: str, now: datetime, *, actor: str = "system") -> Change:
        """Open a paused counter again."""
        return self._set_counter_state(counter_id, now, actor, CounterState.OPEN)

    def reserve(
        self, device: str, service: str, size: int, now: datetime, *, actor: str = "system"
    ) -> Change:
        """Set ``size`` consecutive numbers of ``service`` aside for kiosk ``device``.

        The numbers come from the top of the day's sequence space, below the blocks
        reserved before, so the hub's own numbers still run 001, 002, … from the first;
        none is held by a live ticket, and the engine never issues them itself.
        The kiosk issues them while the hub does not answer and delivers each ticket
        later (:meth:`record_offline`). A reservation is not an issue: it is allowed
        for a closed service and does not count towards the daily limit. A kiosk holds
        at most :attr:`QueuePolicy.max_kiosk_blocks` blocks of a service with numbers
        not yet delivered, so one kiosk cannot take every number of the day.
        """
        self._check_day(now)
        svc = self._service(service)
        if not 1 <= size <= MAX_BLOCK_SIZE:
            raise QueueError("invalid_size", f"a block holds 1 to {MAX_BLOCK_SIZE} numbers")
        held = self.unused_blocks(device, service)
        if held >= self.policy.max_kiosk_blocks:
            raise QueueError(
                "too_many_blocks",
                f"kiosk {device} already holds {held} blocks of {service} whose numbers have "
                f"not all come back as tickets (at most {self.policy.max_kiosk_blocks})",
            )
        # Offline sequences count down from the top of the day's sequence space, below
        # the blocks already reserved; the hub's own count up from 1 (docs/queue.md).
        seq = min(
            (b.first_seq for b in self._blocks if b.service == service and _offline(b.first_seq)),
            default=OFFLINE_SEQ_TOP + 1,
        )
        last = seq - 1
        for _ in range(MAX_DISPLAY_NUMBER + size):
            seq -= 1
            if not _offline(seq):
                break
            if not self._number_free(display_number(svc.prefix, seq)):
                last = seq - 1  # the run must be unbroken: start again below it
            elif last - seq + 1 == size:
                break
        if not _offline(seq) or last - seq + 1 != size:
            raise QueueError(
                "numbers_exhausted", f"no {size} free numbers of {service} are left today"
            )
        first = seq
        seq = last
        block = NumberBlock(
            id=self._new_id(),
            device=device,
            service=service,
            prefix=svc.prefix,
            business_day=self.day,
            first_seq=first,
            last_seq=seq,
            reserved_at=now,
        )
        event = Event(
            at=now,
            action=Action.RESERVE,
            actor=actor,
            service=service,
            to_state="reserved",
            detail={"device": device, "block": block.id, "first_seq": first, "last_seq": seq},
        )
        return Change(events=(event,), blocks=(block,))

    def record_offline(
        self,
        block: NumberBlock | None,
        ticket: Ticket,
        now: datetime,
        *,
        actor: str = "system",
    ) -> Change:
        """Take in a ticket a kiosk issued from its ``block`` while the hub was away.

        ``ticket`` is as the kiosk printed it: its id, number, sequence, service and
        issue time (``origin`` names the kiosk). It joins the queue by its issue time,
        as if the hub had issued it then; a ticket of an earlier day is recorded as
        expired. It is taken whatever the service's state or limit: the citizen holds it.
        """
        self._check_day(now)
        svc = self._service(ticket.service)
        if block is None or block.device != ticket.origin or block.service != svc.code:
            raise QueueError(
                "not_reserved",
                f"{ticket.number} is not in a block of {ticket.service} reserved for "
                f"{ticket.origin}",
            )
        expected = display_number(block.prefix, ticket.seq)
        if not block.holds(ticket.seq) or ticket.business_day != block.business_day:
            raise QueueError("not_reserved", f"sequence {ticket.seq} is not in block {block.id}")
        if ticket.number != expected:
            raise QueueError(
                "invalid_number", f"sequence {ticket.seq} of block {block.id} is {expected}"
            )
        if ticket.id in self.tickets or (
            ticket.business_day == self.day and self._reserved.get(ticket.number) != block.device
        ):
            raise QueueError("duplicate_ticket", f"ticket {ticket.number} is already recorded")
        if ticket.business_day > self.day:
            raise QueueError("day_changed", f"ticket {ticket.number} is of a future day")
        fresh = ticket.evolve(
            number_service=svc.code,
            arrived_at=ticket.issued_at,
            state=TicketState.WAITING,
            counter=None,
            calls=0,
            called_at=None,
            serving_at=None,
            finished_at=None,
        )
        detail = {"offline": True, "device": ticket.origin}
        events = [_event(now, Action.ISSUE, actor, None, fresh, detail)]
        final = fresh
        if ticket.business_day < self.day:
            # Delivered after its day ended: history only, it holds no number today.
            final = fresh.evolve(state=TicketState.EXPIRED, finished_at=now)
            events.append(_event(now, Action.EXPIRE, actor, fresh, final))
        return Change(
            tickets=(final,),
            events=tuple(events),
            new_ticket_ids=frozenset({ticket.id}),
            subject=final,
        )

    def apply(self, change: Change) -> None:
        """Make a persisted ``change`` the engine's state."""
        if change.day is not None and change.day != self.day:
            self.day = change.day
            self._last_seq.clear()
            self._issued.clear()
            self._reserved.clear()
            self._blocks.clear()
            self._checked_in.clear()
            self._remote_issued.clear()
            self._recent_calls.clear()
        for block in change.blocks:
            self._hold_block(block)
        for ticket in change.tickets:
            if ticket.id in change.new_ticket_ids and ticket.business_day == self.day:
                code = ticket.number_service
                if not _offline(ticket.seq):
                    self._last_seq[code] = max(self._last_seq.get(code, 0), ticket.seq)
                self._issued[code] = self._issued.get(code, 0) + 1
                self._reserved.pop(ticket.number, None)
                if ticket.appointment is not None:
                    self._checked_in.add(ticket.appointment)
                if ticket.remote:
                    self._remote_issued[code] = self._remote_issued.get(code, 0) + 1
            if ticket.state.live:
                self._hold(ticket)
            else:
                self._unwait(self.tickets.pop(ticket.id, None))
                self._live_numbers.pop(ticket.number, None)
                if ticket.remote_code is not None:
                    self._remote_codes.pop(ticket.remote_code, None)
                if ticket.state is TicketState.DONE and ticket.called_at and ticket.finished_at:
                    seconds = (ticket.finished_at - ticket.called_at).total_seconds()
                    self._recent(ticket.service).append(seconds)
        for counter in change.counters:
            self.counters[counter.id] = counter
        for event in change.events:
            if event.action is Action.CALL and event.ticket_id is not None:
                self._recent_calls.append(change.ticket(event.ticket_id).booked)
        if any(event.action is Action.EXPIRE for event in change.events):
            self._oldest_day = min((t.business_day for t in self.tickets.values()), default=None)

    # -- internals -------------------------------------------------------------

    def unused_blocks(self, device: str, service: str) -> int:
        """How many of today's blocks of ``service`` kiosk ``device`` holds unused.

        A block is unused while any of its numbers has not been delivered as a ticket.
        """
        return sum(
            1
            for b in self._blocks
            if b.device == device
            and b.service == service
            and any(
                self._reserved.get(display_number(b.prefix, seq)) == device
                for seq in range(b.first_seq, b.last_seq + 1)
            )
        )

    def _number_free(self, number: str) -> bool:
        """Whether ``number`` is neither held by a live ticket nor reserved for a kiosk."""
        return number not in self._live_numbers and number not in self._reserved

    def _hold_block(self, block: NumberBlock, skip: Container[tuple[str, int]] = ()) -> None:
        """Keep a block's numbers (all but the ``skip``ped, delivered ones) from being issued."""
        if block.business_day != self.day:
            return
        self._blocks.append(block)
        for seq in range(block.first_seq, block.last_seq + 1):
            if (block.service, seq) not in skip:
                self._reserved[display_number(block.prefix, seq)] = block.device

    def _hold(self, ticket: Ticket) -> None:
        self._unwait(self.tickets.get(ticket.id))
        self.tickets[ticket.id] = ticket
        self._live_numbers[ticket.number] = ticket.id
        if ticket.remote_code is not None:
            self._remote_codes[ticket.remote_code] = ticket.id
        if self._oldest_day is None or ticket.business_day < self._oldest_day:
            self._oldest_day = ticket.business_day
        if ticket.state is TicketState.WAITING:
            self._waiting.setdefault(ticket.service, {})[ticket.id] = ticket
            if self.held_back(ticket):
                self._unchecked.setdefault(ticket.service, {})[ticket.id] = ticket
            elif ticket.booked:
                self._booked.setdefault(ticket.service, {})[ticket.id] = ticket
            else:
                heapq.heappush(self._heads.setdefault(ticket.service, []), _head_entry(ticket))

    def is_checked_in(self, appointment: str) -> bool:
        """Whether ``appointment`` was checked in today."""
        return appointment in self._checked_in

    def _head(self, service: str) -> Ticket | None:
        """The waiting walk-in of ``service`` that call-next would take from it first.

        Within one service the call order (see :func:`call_order_key`) is priority, then
        arrival, then number: the weighted wait grows with the wait itself.
        """
        heap = self._heads.get(service)
        waiting = self._waiting.get(service, {})
        while heap:
            entry = heap[0]
            ticket = waiting.get(entry[-1])
            if ticket is not None and _head_entry(ticket) == entry:
                return ticket
            heapq.heappop(heap)
        return None

    def _booked_head(self, service: str) -> Ticket | None:
        """The waiting checked-in appointment of ``service`` with the earliest slot."""
        booked = self._booked.get(service)
        return min(booked.values(), key=_rank_key) if booked else None

    def _unwait(self, old: Ticket | None) -> None:
        """Take the previous version of a ticket out of the waiting index, if it was in."""
        if old is not None and old.state is TicketState.WAITING:
            self._waiting[old.service].pop(old.id, None)
            self._booked.get(old.service, {}).pop(old.id, None)
            self._unchecked.get(old.service, {}).pop(old.id, None)

    def _recent(self, service: str) -> deque[float]:
        recent = self._durations.get(service)
        if recent is None:
            recent = self._durations[service] = deque(maxlen=self.policy.service_time_window)
        return recent

    def _check_day(self, now: datetime) -> None:
        if self.local_day(now) != self.day:
            raise QueueError("day_changed", "the business day changed; roll the queue over first")

    def _service(self, code: str) -> Service:
        try:
            return self.services[code]
        except KeyError:
            raise QueueError("unknown_service", f"no service {code!r}") from None

    def _counter(self, counter_id: str) -> Counter:
        try:
            return self.counters[counter_id]
        except KeyError:
            raise QueueError("unknown_counter", f"no counter {counter_id!r}") from None

    def _current(
        self, counter_id: str, now: datetime, *states: TicketState
    ) -> tuple[Counter, Ticket]:
        self._check_day(now)
        counter = self._counter(counter_id)
        if counter.current is None:
            raise QueueError("no_ticket", f"counter {counter_id} has no ticket")
        ticket = self.tickets[counter.current]
        if ticket.state not in states:
            wanted = " or ".join(s.value for s in states)
            raise QueueError(
                "invalid_transition",
                f"ticket {ticket.number} is {ticket.state.value}, not {wanted}",
            )
        return counter, ticket

    def _finish(
        self,
        counter: Counter,
        now: datetime,
        actor: str,
        state: TicketState,
        action: Action,
        *,
        auto: bool = False,
    ) -> Change:
        assert counter.current is not None
        ticket = self.tickets[counter.current]
        finished = ticket.evolve(state=state, finished_at=now)
        detail: Mapping[str, object] = {"auto": True} if auto else {}
        return Change(
            tickets=(finished,),
            counters=(_with(counter, current=None),),
            events=(_event(now, action, actor, ticket, finished, detail),),
            subject=finished,
        )

    def _choose(self, counter: Counter, now: datetime) -> Ticket | None:
        """The ticket call-next takes at ``counter`` (see docs/queue.md).

        The smallest call-order key, unless that is a due appointment that the share cap
        holds back: then the first walk-in.
        """
        order = {code: i for i, code in enumerate(counter.services)}
        window = self.policy.call_window_s
        best: Ticket | None = None
        best_key: tuple[object, ...] = ()
        walk_in: Ticket | None = None
        walk_in_key: tuple[object, ...] = ()
        for code in counter.services:
            weight = self.services[code].weight
            ticket = self._head(code)
            if ticket is not None:
                key = call_order_key(ticket, now, weight, order, window)
                if walk_in is None or key < walk_in_key:
                    walk_in, walk_in_key = ticket, key
            if self._booked.get(code):
                ticket = self._booked_head(code)
                assert ticket is not None
                key = call_order_key(ticket, now, weight, order, window)
                if best is None or key < best_key:
                    best, best_key = ticket, key
        if walk_in is not None and (best is None or walk_in_key < best_key):
            return walk_in
        if best is not None and walk_in is not None and self.appointments_capped(counter, now):
            return walk_in
        return best

    def _pass_over(
        self, counter: Counter, chosen: Ticket | None, now: datetime, actor: str
    ) -> Change:
        """The held-back remote tickets a call of ``chosen`` at ``counter`` passes over.

        Each that the call order puts before ``chosen`` (every one, when nobody else is
        called) counts a pass; one passed more than its service's
        :attr:`RemoteRules.max_passes` times expires instead (see docs/queue.md).
        """
        order = {code: i for i, code in enumerate(counter.services)}
        window = self.policy.call_window_s
        bar: tuple[object, ...] | None = None
        if chosen is not None:
            weight = self.services[chosen.service].weight
            bar = call_order_key(chosen, now, weight, order, window)
        tickets: list[Ticket] = []
        events: list[Event] = []
        for code in counter.services:
            service = self.services[code]
            for ticket in self._unchecked.get(code, {}).values():
                key = call_order_key(ticket, now, service.weight, order, window)
                if bar is not None and key > bar:
                    continue
                passes = ticket.passes + 1
                if passes > service.remote.max_passes:
                    new = ticket.evolve(state=TicketState.EXPIRED, finished_at=now)
                    detail: dict[str, object] = {"reason": "not_checked_in"}
                    events.append(_event(now, Action.EXPIRE, actor, ticket, new, detail))
                else:
                    new = ticket.evolve(passes=passes)
                    events.append(_event(now, Action.PASS, actor, ticket, new))
                tickets.append(new)
        return Change(tickets=tuple(tickets), events=tuple(events))

    def appointments_capped(self, counter: Counter, now: datetime) -> bool:
        """Whether a call of an appointment at ``counter`` now would starve walk-ins.

        True when a walk-in of the counter's services has waited longer than
        :attr:`QueuePolicy.walk_in_target_wait_s` and one more appointment call would
        raise their share of the recent calls above :attr:`QueuePolicy.appointment_share`.
        """
        recent = self._recent_calls
        share = (sum(recent) + 1) / (len(recent) + 1)
        if share <= self.policy.appointment_share:
            return False
        target = timedelta(seconds=self.policy.walk_in_target_wait_s)
        return any(
            not t.booked and not self.held_back(t) and now - t.arrived_at > target
            for code in counter.services
            for t in self._waiting.get(code, {}).values()
        )

    def _set_counter_state(
        self, counter_id: str, now: datetime, actor: str, state: CounterState
    ) -> Change:
        self._check_day(now)
        counter = self._counter(counter_id)
        if counter.state is state:
            raise QueueError(f"already_{state.value}", f"counter {counter_id} is already {state}")
        if counter.current is not None:
            raise QueueError("counter_busy", f"counter {counter_id} still has a ticket")
        action = Action.PAUSE if state is CounterState.PAUSED else Action.RESUME
        new = _with(counter, state=state)
        return Change(
            counters=(new,), events=(_counter_event(now, action, actor, new, counter.state),)
        )


def _refusal(service: Service, availability: Availability) -> str:
    """Why ``service`` issues no ticket, for the log and the API's message."""
    opens = availability.opens_at
    then = f"; it opens {opens.isoformat(timespec='minutes')}" if opens else ""
    match availability.refused:
        case "service_closed":
            return f"service {service.code} is closed"
        case "cut_off":
            closes = availability.closes_at
            assert closes is not None
            return (
                f"service {service.code} takes no more tickets: those waiting fill the time "
                f"until it closes at {closes.strftime('%H:%M')}{then}"
            )
        case _:
            return f"service {service.code} is open {service.hours.describe()}{then}"


def call_order_key(
    ticket: Ticket,
    now: datetime,
    weight: float,
    order: Mapping[str, int],
    call_window_s: float = 0,
) -> tuple[object, ...]:
    """The call-next sort key: the smallest key is called first (see docs/queue.md).

    Due appointments (checked in, their slot less ``call_window_s`` reached) come first,
    the earliest slot first; then priority tickets; then the longest weighted wait,
    an appointment not yet due counting its wait from its slot (so it comes after every
    walk-in); ties go to the counter's preferred service, then the earlier arrival,
    then the lower sequence.
    """
    since = _since(ticket)
    due = ticket.booked and now >= since - timedelta(seconds=call_window_s)
    waited = (now - since).total_seconds() * weight
    return (
        not due,
        ticket.priority is None,
        since if due else datetime.min.replace(tzinfo=UTC),
        -waited,
        order[ticket.service],
        since,
        ticket.number_service,
        ticket.seq,
    )


def _since(ticket: Ticket) -> datetime:
    """When a ticket's wait counts from: its slot for a booked one, else its arrival."""
    if ticket.booked and ticket.slot_at is not None:
        return ticket.slot_at
    return ticket.arrived_at


_HeadEntry = tuple[bool, datetime, str, int, str]


def _head_entry(ticket: Ticket) -> _HeadEntry:
    """A waiting ticket's place in its service's heap: priority, arrival, number, id."""
    return (
        ticket.priority is None,
        ticket.arrived_at,
        ticket.number_service,
        ticket.seq,
        ticket.id,
    )


def _offline(seq: int) -> bool:
    """Whether ``seq`` is in the band of the day's sequences kept for offline blocks."""
    return seq > ONLINE_SEQ_LAST


def _arrival_key(ticket: Ticket) -> tuple[datetime, str, int]:
    return (ticket.arrived_at, ticket.number_service, ticket.seq)


def _rank_key(ticket: Ticket) -> tuple[bool, datetime, datetime, str, int]:
    """The order of one service's waiting tickets, for the estimate.

    Priority, then when the wait counts from (a booked ticket's slot), arrival, number.
    """
    return (ticket.priority is None, _since(ticket), *_arrival_key(ticket))


def front(rivals: Rivals, places: Callable[[str], int]) -> dict[str, tuple[Ticket, int]]:
    """The first tickets of each queue of ``rivals``, each with the people ahead of it.

    By id: the tickets of a service with at most ``places(service)`` people ahead.
    ``rivals`` is :meth:`Engine.rivals`. One pass over each queue for its first few,
    rather than a count for each ticket: :mod:`hub.notify` tells the holders of those
    whose turn is near.
    """
    near: dict[str, tuple[Ticket, int]] = {}
    for (_, service), group in rivals.items():
        first = heapq.nsmallest(places(service) + 1, group, key=_rank_key)
        near.update((ticket.id, (ticket, ahead)) for ahead, ticket in enumerate(first))
    return near


def _with(counter: Counter, **changes: object) -> Counter:
    return dataclasses.replace(counter, **changes)  # type: ignore[arg-type]


def _event(
    now: datetime,
    action: Action,
    actor: str,
    old: Ticket | None,
    new: Ticket,
    detail: Mapping[str, object] | None = None,
) -> Event:
    return Event(
        at=now,
        action=action,
        actor=actor,
        ticket_id=new.id,
        counter_id=new.counter or (old.counter if old else None),
        service=new.service,
        from_state=old.state.value if old else None,
        to_state=new.state.value,
        detail=dict(detail or {}),
    )


def _counter_event(
    now: datetime, action: Action, actor: str, counter: Counter, old: CounterState
) -> Event:
    return Event(
        at=now,
        action=action,
        actor=actor,
        counter_id=counter.id,
        from_state=old.value,
        to_state=counter.state.value,
    )

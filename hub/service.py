"""The service layer: the one path through which anything changes the queue.

The MQTT bridge, the web and the command line all act through
:class:`QueueService`. Each operation runs under one lock: the engine decides a
change, the store writes it in one transaction, the engine applies it, and then
the listeners (the MQTT bridge, live web pages) hear of it. A failed write
leaves the engine untouched, so memory and database never disagree.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from hub import stats
from hub.calendar import Closure, OfficeCalendar, public_holidays
from hub.clerks import CounterClerks, attribute, clerk_of_actor
from hub.engine import Availability, Engine, Estimate, QueueError, QueuePolicy
from hub.model import Appointment, Change, Counter, Priority, Service, Ticket, TicketState
from hub.stats import Statistics, Visit
from hub.store import Receipt, Store, StoreError
from sync_agent.broker_accounts import Account
from sync_agent.protocol import COUNTER_ACTIONS, is_remote_code

__all__ = [
    "Availability",
    "Closure",
    "Engine",
    "Issued",
    "Listener",
    "QueueError",
    "QueueService",
    "ServiceStatus",
    "TicketStatus",
    "utc_now",
]
"""The service layer's interface: what the web and the bridge use. ``QueueError`` is
how an operation is refused, and ``Engine`` the view that :meth:`QueueService.read`
hands to its callers."""

CLOSURE_HORIZON_DAYS: Final = 2 * 366
"""How far ahead a closure may be entered."""

MAX_CLOSURE_REASON: Final = 200
"""The longest reason a closure may give (the store's column)."""

log = logging.getLogger(__name__)

T = TypeVar("T")

REMOTE_CODE_DIGITS: Final = 6
"""A remote ticket's check-in code has six digits
(:data:`sync_agent.protocol.REMOTE_CODE_PATTERN`)."""

REMOTE_CODE_DRAWS: Final = 32
"""How many random codes :meth:`QueueService.issue_remote` tries for one not in use."""

NO_SHOW_SWEEP_DAYS = 31
"""How far back the no-show sweep looks for bookings nobody checked in: a hub that was
off longer leaves older ones booked (statistics count them as no-shows all the same)."""

Listener = Callable[[Change], None]
"""Called with every change after it is persisted and applied."""


def utc_now() -> datetime:
    """The current time, aware, in UTC: the default clock of the service."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Issued:
    """A newly issued ticket with what the citizen is told about it."""

    ticket: Ticket
    estimate: Estimate


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One service's live state, as the kiosk, the displays and the portal show it."""

    service: Service
    waiting: int
    estimated_wait_s: int | None
    """What a citizen taking a ticket now would be told."""
    issued_today: int
    open_counters: int
    availability: Availability
    """Whether it issues walk-in tickets now; if not, why and when it opens."""


@dataclass(frozen=True, slots=True)
class TicketStatus:
    """A ticket as its holder sees it: where it is, and where to go once called."""

    ticket: Ticket
    estimate: Estimate | None
    """People ahead and the expected wait, while the ticket waits."""
    counter_name: str | None
    """The counter that called or serves it."""
    latest_arrival: datetime | None = None
    """For a remote ticket whose holder must check in: the latest time to do so (in the
    site's zone), see :meth:`~hub.engine.Engine.latest_arrival`."""


class QueueService:
    """Runs every queue operation as engine → store → engine.apply → listeners."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utc_now,
        country: str | None = None,
        holiday_lang: str = "sk",
    ) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock
        self.country = country
        """The office's country, whose public holidays the calendar holds (``None``:
        the engine's calendar keeps the holidays it was built with)."""
        self.holiday_lang = holiday_lang
        self.clerks = CounterClerks(store)
        """The clerk seated at each counter: counter actions are attributed to them."""
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._availability: dict[str, Availability] = {}
        """What the listeners last heard of each service's availability (see
        :meth:`roll_over`)."""

    @classmethod
    def open(
        cls,
        store: Store,
        *,
        timezone: ZoneInfo,
        policy: QueuePolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        country: str | None = None,
        holiday_lang: str = "sk",
    ) -> QueueService:
        """Resume the queue from the store (already upgraded) for today.

        The engine's calendar gets the admin's closures and, with a ``country``, its
        public holidays of this year and the next (names in ``holiday_lang``).
        """
        policy = policy or QueuePolicy()
        today = clock().astimezone(timezone).date()
        # Resume on the day the queue stopped, then roll over to today, so that a
        # hub restarted after midnight starts the new day as a running one would.
        day = min(store.last_business_day() or today, today)
        snapshot = store.load_snapshot(day, policy.service_time_window)
        engine = Engine.from_snapshot(snapshot, timezone=timezone, policy=policy)
        service = cls(store, engine, clock=clock, country=country, holiday_lang=holiday_lang)
        service._refresh_calendar(today)
        service.roll_over()
        return service

    def subscribe(self, listener: Listener) -> None:
        """Hear of every change from now on (called under the service's lock)."""
        with self._lock:
            self._listeners.append(listener)

    # -- operations ----------------------------------------------------------

    def roll_over(self) -> Change | None:
        """Start a new business day now if one has begun (also done before every operation).

        The hub's main loop calls it every few seconds; the listeners also hear (of an
        empty change) when a service starts or stops issuing tickets as time passes (it
        opens, closes, or reaches its cut-off).
        """
        with self._lock:
            now = self.clock()
            change = self.engine.roll_over(now)
            if change is not None:
                self._commit(change)
                self._refresh_calendar(self.engine.local_day(now))
            availability = {
                code: self.engine.availability(code, now) for code in self.engine.services
            }
            if self._availability and availability != self._availability and change is None:
                self._notify(Change())
            self._availability = availability
            return change

    def issue(
        self,
        service: str,
        *,
        priority: Priority | None = None,
        lang: str = "sk",
        actor: str = "system",
    ) -> Issued:
        """Issue a ticket for ``service`` and tell how long its holder will wait."""
        with self._lock:
            now = self._today()
            change = self._commit(
                self.engine.issue(service, now, priority=priority, lang=lang, actor=actor)
            )
            assert change.subject is not None
            return Issued(change.subject, self.engine.estimate(change.subject))

    def prioritise(self, ticket_id: str, priority: Priority, *, actor: str = "system") -> Ticket:
        """Give live ticket ``ticket_id`` priority (a clerk's decision), audited; the ticket.

        Refused as :meth:`Engine.prioritise` refuses (``unknown_ticket`` for a finished one).
        """
        with self._lock:
            change = self._commit(
                self.engine.prioritise(ticket_id, priority, self._today(), actor=actor)
            )
            assert change.subject is not None
            return change.subject

    def issue_remote(self, service: str, *, lang: str = "sk", actor: str = "portal") -> Issued:
        """Issue a remote ticket for ``service`` with a fresh check-in code.

        The code is drawn at random among those no live remote ticket has.
        """
        with self._lock:
            now = self._today()
            for _ in range(REMOTE_CODE_DRAWS):
                code = f"{secrets.randbelow(10**REMOTE_CODE_DIGITS):0{REMOTE_CODE_DIGITS}d}"
                if self.engine.remote_ticket(code) is None:
                    break
            change = self._commit(
                self.engine.issue_remote(service, now, code=code, lang=lang, actor=actor)
            )
            assert change.subject is not None
            return Issued(change.subject, self.engine.estimate(change.subject))

    def remote_availability(self, service: str) -> Availability:
        """Whether ``service`` issues remote tickets now, and if not, why."""
        with self._lock:
            return self.engine.remote_availability(service, self.clock())

    def check_in(self, code: str, *, lang: str = "sk", actor: str = "system") -> Issued:
        """Check in the booking with ``code``: issue its ticket (see :meth:`decide_check_in`)."""
        with self._lock:
            now = self._today()
            change = self._commit(self.decide_check_in(code, now, lang=lang, actor=actor))
            assert change.subject is not None
            return Issued(change.subject, self.engine.estimate(change.subject))

    def decide_check_in(
        self, code: str, now: datetime, *, lang: str = "sk", actor: str = "system"
    ) -> Change:
        """Ask the engine what checking in the booking or remote ticket ``code`` would change.

        A six-digit code is a remote ticket's (its holder is in the office now); an
        eight-digit one a booking's, looked up in the store. An unknown code is refused
        with ``unknown_booking``. As :meth:`decide_issue`, nothing is done.
        """
        if is_remote_code(code):
            return self.engine.check_in_remote(code, now, actor=actor)
        appointment = self.store.appointment_by_code(code)
        if appointment is None:
            raise QueueError("unknown_booking", f"no booking has the code {code}")
        return self.engine.check_in(appointment, now, lang=lang, actor=actor)

    def sweep_no_shows(self) -> list[Appointment]:
        """Mark the bookings nobody checked in by their slot plus the grace as no-shows.

        Run by the hub's housekeeping (with the day rollover), under the queue's lock so
        that no check-in runs meanwhile. Returns the appointments marked.
        """
        with self._lock:
            now = self.clock()
            deadline = now - timedelta(seconds=self.engine.policy.checkin_grace_s)
            since = deadline - timedelta(days=NO_SHOW_SWEEP_DAYS)
            lapsed = self.store.mark_no_shows(deadline, now, since=since)
        for appointment in lapsed:
            log.info("booking %s of %s lapsed as a no-show", appointment.code, appointment.service)
        return lapsed

    def appointment(self, appointment_id: str) -> Appointment | None:
        """Appointment ``appointment_id`` as the store keeps it (the clerk greets its name)."""
        return self.store.appointment(appointment_id)

    def counter_action(
        self,
        counter_id: str,
        action: str,
        *,
        actor: str = "system",
        service: str | None = None,
        ticket_id: str | None = None,
    ) -> Change:
        """Do one clerk's action (see :data:`COUNTER_ACTIONS`) at ``counter_id``."""
        with self._lock:
            now = self._today()
            return self._commit(
                self.decide_counter_action(
                    counter_id, action, now, actor=actor, service=service, ticket_id=ticket_id
                )
            )

    def decide_counter_action(
        self,
        counter_id: str,
        action: str,
        now: datetime,
        *,
        actor: str = "system",
        service: str | None = None,
        ticket_id: str | None = None,
    ) -> Change:
        """Ask the engine what a clerk's action would change, without doing it.

        ``service`` is the target of a transfer; ``ticket_id`` makes ``next`` bring
        back that parked ticket instead of calling the next waiting one. The audit
        rows name the clerk: the web panel's user, else the clerk seated at the counter.
        """
        change = self._decide_counter_action(counter_id, action, now, actor, service, ticket_id)
        clerk = clerk_of_actor(actor) or self.clerks.at(counter_id, now)
        return attribute(change, clerk)

    def _decide_counter_action(
        self,
        counter_id: str,
        action: str,
        now: datetime,
        actor: str,
        service: str | None,
        ticket_id: str | None,
    ) -> Change:
        engine = self.engine
        if action == "next" and ticket_id is not None:
            return engine.unpark(counter_id, ticket_id, now, actor=actor)
        if action == "transfer":
            if service is None:
                raise QueueError("missing_service", "a transfer needs a target service")
            return engine.transfer(counter_id, service, now, actor=actor)
        if action == "next":
            return engine.call_next(counter_id, now, actor=actor)
        if action in COUNTER_ACTIONS:
            change: Change = getattr(engine, action)(counter_id, now, actor=actor)
            return change
        raise QueueError("unknown_action", f"no counter action {action!r}")

    def decide_issue(
        self,
        service: str,
        now: datetime,
        *,
        priority: Priority | None = None,
        lang: str = "sk",
        actor: str = "system",
    ) -> Change:
        """Ask the engine what issuing a ticket for ``service`` would change.

        Nothing is done: :meth:`apply_once` commits what its ``decide`` returns.
        """
        return self.engine.issue(service, now, priority=priority, lang=lang, actor=actor)

    def decide_reserve(
        self, device: str, service: str, size: int, now: datetime, *, actor: str = "system"
    ) -> Change:
        """Ask the engine what reserving ``size`` numbers of ``service`` would change.

        The block is for kiosk ``device`` to issue offline; as :meth:`decide_issue`.
        """
        return self.engine.reserve(device, service, size, now, actor=actor)

    def decide_offline(
        self, device: str, ticket: Ticket, now: datetime, *, actor: str = "system"
    ) -> Change:
        """Ask the engine what recording a ticket issued offline would change.

        ``ticket`` was issued by kiosk ``device`` from one of its blocks (looked up
        here); as :meth:`decide_issue`.
        """
        block = self.store.number_block(
            device, ticket.number_service, ticket.business_day, ticket.seq
        )
        return self.engine.record_offline(block, ticket, now, actor=actor)

    def apply_once(
        self,
        sender: str,
        msg_id: str,
        decide: Callable[[datetime], Change],
        reply: Callable[[Change | QueueError], bytes],
    ) -> tuple[bytes, bool]:
        """Run a device's command at most once, however often it is delivered.

        ``decide`` computes the change at the current time; ``reply`` turns the
        change (before it is applied) or the refusal into the answer, which is
        stored with the change in one transaction as the command's *receipt*.
        A command already seen returns its stored answer and changes nothing.
        Returns the answer and whether it was a duplicate.
        """
        with self._lock:
            stored = self.store.receipt(sender, msg_id)
            if stored is not None:
                return stored, True
            now = self._today()
            try:
                change = decide(now)
            except QueueError as refused:
                answer = reply(refused)
                self.store.write(Change(), receipt=Receipt(sender, msg_id, now, answer))
                return answer, False
            answer = reply(change)
            self._commit(change, Receipt(sender, msg_id, now, answer))
            return answer, False

    # -- catalog -------------------------------------------------------------

    def save_service(self, service: Service, position: int | None = None) -> None:
        """Create or change a service (validated by the engine before it is stored)."""
        with self._lock:
            current = self.engine.services.get(service.code)
            self.engine.put_service(service)
            try:
                self.store.save_service(service, position)
            except Exception:
                self._restore_service(service.code, current)
                raise
            self._notify(Change())

    def save_counter(self, counter: Counter, position: int | None = None) -> None:
        """Create or change a counter's name and services (its queue state is kept)."""
        with self._lock:
            current = self.engine.counters.get(counter.id)
            self.engine.put_counter(counter)
            try:
                self.store.save_counter(self.engine.counters[counter.id], position)
            except Exception:
                if current is None:
                    del self.engine.counters[counter.id]
                else:
                    self.engine.counters[counter.id] = current
                raise
            self._notify(Change(counters=(self.engine.counters[counter.id],)))

    # -- the calendar -----------------------------------------------------------

    @property
    def calendar(self) -> OfficeCalendar:
        """The office's calendar: public holidays and the admin's closures.

        What narrows every service's weekly hours (``calendar.open_spans(service.hours,
        day, service.code)``); it changes when closures do and at a new day.
        """
        with self._lock:
            return self.engine.calendar

    def closures(self) -> list[Closure]:
        """The admin's closures of today and later, by day and start."""
        return self.store.closures(since=self.today())

    def add_closure(self, closure: Closure) -> Closure:
        """Close the office, or some services, for a day or part of one; the stored closure.

        Refused (``invalid_closure``, ``unknown_service``) for a day that has passed or
        lies more than :data:`CLOSURE_HORIZON_DAYS` ahead, an end not after the start, a
        reason over :data:`MAX_CLOSURE_REASON` characters, or an unknown service.
        """
        with self._lock:
            today = self.today()
            problem = _closure_problem(closure, today)
            if problem is not None:
                raise QueueError("invalid_closure", problem)
            unknown = [code for code in closure.services if code not in self.engine.services]
            if unknown:
                raise QueueError("unknown_service", f"no service {', '.join(unknown)}")
            stored = dataclasses.replace(closure, id=uuid.uuid4().hex)
            self.store.add_closure(stored, at=self.clock())
            self._refresh_calendar(today)
            self._notify(Change())
            return stored

    def remove_closure(self, closure_id: str) -> bool:
        """Remove a closure; ``False`` if there is none with that id."""
        with self._lock:
            if not self.store.delete_closure(closure_id):
                return False
            self._refresh_calendar(self.today())
            self._notify(Change())
            return True

    def _refresh_calendar(self, today: date) -> None:
        """Give the engine the closures from ``today`` on, and the holidays.

        With a country, the holidays of ``today``'s year and the next.
        """
        calendar = dataclasses.replace(
            self.engine.calendar, closures=tuple(self.store.closures(since=today))
        )
        if self.country is not None:
            years = (today.year, today.year + 1)
            calendar = dataclasses.replace(
                calendar, holidays=public_holidays(self.country, years, self.holiday_lang)
            )
        self.engine.calendar = calendar

    # -- reading -------------------------------------------------------------

    def availability(self, service: str) -> Availability:
        """Whether ``service`` issues walk-in tickets now, and if not, why and until when."""
        with self._lock:
            return self.engine.availability(service, self.clock())

    def broker_accounts(self) -> list[Account]:
        """The office broker's accounts that the hub keeps, by user name."""
        return self.store.accounts()

    def statistics(self, start: date, end: date, *, target_wait_s: int) -> Statistics:
        """The statistics of business days ``start`` … ``end`` (see :mod:`hub.stats`)."""
        return stats.compute(
            self.store, start, end, timezone=self.engine.timezone, target_wait_s=target_wait_s
        )

    def notices(self, start: date, end: date) -> list[stats.NoticeCount]:
        """Citizens' notices per channel caused on business days ``start`` … ``end``."""
        return stats.notices(self.store, start, end, timezone=self.engine.timezone)

    def visits(self, start: date, end: date) -> Iterator[Visit]:
        """Every ticket issued on business days ``start`` … ``end``, in issue order."""
        return stats.visits(self.store, start, end)

    @property
    def day(self) -> date:
        """The business day the queue is on."""
        return self.engine.day

    def estimate(self, ticket: Ticket) -> Estimate:
        """People ahead of ``ticket`` and its expected wait, while it waits.

        Once it no longer waits (recorded after its day, say): nobody ahead, no wait.
        """
        if ticket.state is TicketState.WAITING:
            return self.engine.estimate(ticket)
        return Estimate(0, None)

    @property
    def timezone(self) -> ZoneInfo:
        """The office's time zone: a business day is a local date in it."""
        return self.engine.timezone

    def today(self) -> date:
        """Today's local date in the office's time zone (by the service's clock)."""
        return self.clock().astimezone(self.engine.timezone).date()

    def service(self, code: str) -> Service | None:
        """The service ``code`` of the catalog, or ``None``."""
        with self._lock:
            return self.engine.services.get(code)

    def services(self) -> list[Service]:
        """Every service of the catalog, in catalog order."""
        with self._lock:
            return list(self.engine.services.values())

    def counter(self, counter_id: str) -> Counter | None:
        """Counter ``counter_id`` with its live state, or ``None``."""
        with self._lock:
            return self.engine.counters.get(counter_id)

    def counters(self) -> list[Counter]:
        """Every counter with its live state, in catalog order."""
        with self._lock:
            return list(self.engine.counters.values())

    def live_ticket(self, ticket_id: str) -> Ticket | None:
        """Ticket ``ticket_id`` if it is live in today's queue (finished ones: ``None``)."""
        with self._lock:
            return self.engine.tickets.get(ticket_id)

    def status(self) -> list[ServiceStatus]:
        """Every service's live state, in catalog order."""
        with self._lock:
            engine = self.engine
            now = self.clock()
            return [
                ServiceStatus(
                    service=service,
                    waiting=engine.waiting_count(service.code),
                    estimated_wait_s=engine.estimate_new(service.code).estimated_wait_s,
                    issued_today=engine.issued_today(service.code),
                    open_counters=len(engine.open_counters(service.code)),
                    availability=engine.availability(service.code, now),
                )
                for service in engine.services.values()
            ]

    def read(self, look: Callable[[Engine], T]) -> T:
        """Run ``look`` on the engine under the lock: a consistent view for reports."""
        with self._lock:
            return look(self.engine)

    def ticket_status(self, ticket_id: str) -> TicketStatus | None:
        """Ticket ``ticket_id`` now: live from the queue, finished from the store."""
        with self._lock:
            engine = self.engine
            ticket = engine.tickets.get(ticket_id)
            if ticket is not None:
                waiting = ticket.state is TicketState.WAITING
                counter = engine.counters.get(ticket.counter) if ticket.counter else None
                return TicketStatus(
                    ticket,
                    engine.estimate(ticket) if waiting else None,
                    counter.name if counter else None,
                    engine.latest_arrival(ticket, self.clock()),
                )
        stored = self.store.ticket(ticket_id)
        if stored is None:
            return None
        counter = self.engine.counters.get(stored.counter) if stored.counter else None
        return TicketStatus(stored, None, counter.name if counter else None)

    # -- internals -------------------------------------------------------------

    def _today(self) -> datetime:
        now = self.clock()
        rollover = self.engine.roll_over(now)
        if rollover is not None:
            self._commit(rollover)
            self._refresh_calendar(self.engine.local_day(now))
        return now

    def _commit(self, change: Change, receipt: Receipt | None = None) -> Change:
        try:
            self.store.write(change, receipt=receipt)
        except StoreError:
            # The database disagrees with memory (another writer?): it is the truth.
            log.error("the database refused a change; reloading the queue from it")
            self._reload()
            raise
        self.engine.apply(change)
        self._notify(change)
        return change

    def _reload(self) -> None:
        engine = self.engine
        snapshot = self.store.load_snapshot(
            engine.local_day(self.clock()), engine.policy.service_time_window
        )
        self.engine = Engine.from_snapshot(
            snapshot, timezone=engine.timezone, policy=engine.policy, calendar=engine.calendar
        )

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                # A listener's failure must not undo a persisted change; it is logged.
                log.exception("a queue listener failed")

    def _restore_service(self, code: str, previous: Service | None) -> None:
        if previous is None:
            self.engine.services.pop(code, None)
        else:
            self.engine.services[code] = previous


def _closure_problem(closure: Closure, today: date) -> str | None:
    """What is wrong with a closure to be entered on ``today``, or ``None``."""
    if closure.day < today:
        return f"{closure.day} has passed"
    if closure.day > today + timedelta(days=CLOSURE_HORIZON_DAYS):
        return f"{closure.day} is more than {CLOSURE_HORIZON_DAYS} days ahead"
    if closure.start is not None and closure.end is not None and closure.end <= closure.start:
        return "the closure must end after it starts"
    if len(closure.reason) > MAX_CLOSURE_REASON:
        return f"the reason is longer than {MAX_CLOSURE_REASON} characters"
    return None

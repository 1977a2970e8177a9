"""Appointments: the bookable slots of a service, and holding, booking, moving, cancelling.

A service takes appointments when the admin switches it on in its
:class:`BookingRules`. Its slots follow the office calendar
(:meth:`~hub.calendar.OfficeCalendar.open_spans`: weekly hours narrowed by holidays and
closures): each open span of a day is cut into slots of ``slot_min`` minutes, and a slot
has as many seats as the rules give its weekday and hour (the counters set aside for
appointments). A slot's free seats are its seats less the held and booked ones.

No seat is booked twice, even by two hub processes at once: a booking picks the lowest
free seat and inserts its row, and the partial unique index on (service, start, seat)
of held and booked rows refuses a second one. A refused insert is tried again on the
next free seat, and the slot is full when none is left.

A citizen's booking starts as a *hold* while they fill in the form; a hold lapses after
``hold_min`` minutes: from then on it holds no seat, and it is marked cancelled when
its seat is next taken (or by the nightly pruning). The booking code is 8
random digits; moving a booking to another slot keeps its code. Anti-abuse: each client
address and each e-mail address may have only so many active bookings
(``[web] bookings_per_address`` and ``bookings_per_email``).

Listeners (:meth:`AppointmentBook.subscribe`) hear of each booking made, moved or
cancelled, after its transaction (the web side mails the citizen's confirmation).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from common.errors import Params, PoradovnikError
from common.i18n import LANGUAGES
from hub.model import Appointment, AppointmentState
from hub.service import QueueService
from hub.store import Store, appointment_from_row, metadata
from sync_agent.protocol import BOOKING_CODE_PATTERN

T = TypeVar("T")

log = logging.getLogger(__name__)

BookingListener = Callable[[str, Appointment], None]
"""Hears of a booking ``booked``, ``moved`` or ``cancelled`` (a hold is no booking)."""

_appointments: Final = metadata.tables["appointments"]
_rules: Final = metadata.tables["booking_rules"]

WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Weekday names as the admin's seat table spells them (Monday is 0)."""

_ACTIVE: Final = (AppointmentState.HELD.value, AppointmentState.BOOKED.value)
_CODE_RE: Final = re.compile(BOOKING_CODE_PATTERN)
_EMAIL_RE: Final = re.compile(r"[^@\s<>\"'()\[\],;:\\]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}")
_SEATS_RE: Final = re.compile(
    r"(?P<first>[A-Za-z]{3})(?:-(?P<last>[A-Za-z]{3}))?\s+"
    r"(?P<start>\d{1,2})-(?P<end>\d{1,2})\s+(?P<seats>\d{1,2})"
)
ATTEMPTS: Final = 8
"""How many times a booking is tried again after another took its seat (or code)."""

MAX_NAME: Final = 80
"""The longest name (or initials) a booking keeps."""


class BookingError(PoradovnikError):
    """A booking refused, with a stable ``code`` the pages and the API translate.

    ``unknown_service``, ``not_bookable``, ``out_of_range`` (a day outside the booking
    window), ``no_such_slot``, ``slot_full``, ``too_many_bookings``, ``unknown_code``,
    ``hold_lapsed``, ``too_late`` (past the cancel deadline), ``invalid`` (a name, an
    e-mail address, a language, or rules the admin gave).
    """

    def __init__(
        self, code: str, message: str, *, detail: str | None = None, params: Params | None = None
    ) -> None:
        super().__init__(message, code=code, detail=detail, params=params)
        self.message = message


@dataclass(frozen=True, slots=True)
class BookingRules:
    """Whether and how a service takes appointments (the admin sets them)."""

    service: str
    enabled: bool = False
    """Whether citizens (and the admin, for phone callers) may book the service."""
    slot_min: int = 15
    """A slot's length in minutes; each open span is cut into slots this long."""
    seats: int = 1
    """How many citizens a slot takes at once (counters given to appointments)."""
    seats_by_hour: Mapping[tuple[int, int], int] = field(default_factory=dict)
    """Seats of the slots starting in (weekday, hour), where they differ from ``seats``."""
    horizon_days: int = 30
    """How many days ahead bookings open (today is day 0)."""
    cancel_before_min: int = 60
    """The latest a booking may be cancelled or moved, in minutes before its slot."""
    hold_min: int = 10
    """How long a slot is kept for a citizen filling in the form."""

    def checked(self) -> BookingRules:
        """Return itself if every value is usable, else raise :class:`BookingError`."""
        bounds = {
            "slot_min": (self.slot_min, 5, 240),
            "seats": (self.seats, 0, 50),
            "horizon_days": (self.horizon_days, 0, 365),
            "cancel_before_min": (self.cancel_before_min, 0, 7 * 24 * 60),
            "hold_min": (self.hold_min, 1, 60),
        }
        for name, (value, low, high) in bounds.items():
            if not low <= value <= high:
                raise BookingError(
                    "invalid",
                    f"{name} must be {low}-{high}, not {value}",
                    detail="rules",
                    params={"low": low, "high": high},
                )
        for (weekday, hour), seats in self.seats_by_hour.items():
            if not (0 <= weekday <= 6 and 0 <= hour <= 23 and 0 <= seats <= 50):
                raise BookingError(
                    "invalid",
                    f"seats {seats} at ({weekday}, {hour}) are out of range",
                    detail="rules",
                    params={"low": 0, "high": 50},
                )
        return self

    def seats_at(self, local: datetime) -> int:
        """The seats of the slot that starts at ``local`` (site time)."""
        return self.seats_by_hour.get((local.weekday(), local.hour), self.seats)

    def describe_seats(self) -> str:
        """``seats_by_hour`` as :func:`parse_seats` reads it: ``Mon 08-10 3; Tue 13-14 2``."""
        parts = []
        for (weekday, hour), seats in sorted(self.seats_by_hour.items()):
            parts.append(f"{WEEKDAYS[weekday]} {hour:02d}-{hour + 1:02d} {seats}")
        return "; ".join(parts)


def parse_seats(text: str) -> dict[tuple[int, int], int]:
    """Read the seat table: ``Mon 08-12 3; Tue-Thu 13-15 2`` (hours end exclusive).

    Each entry gives the seats of the slots starting in those weekdays and hours. Raises
    :class:`BookingError` (``invalid``) with what is wrong.
    """
    if len(text) > 1000:
        raise BookingError(
            "invalid",
            "the seat table may have at most 1000 characters",
            detail="seat_table_long",
            params={"max": 1000},
        )
    table: dict[tuple[int, int], int] = {}
    for part in filter(None, (p.strip() for p in re.split(r"[;\n]", text))):
        match = _SEATS_RE.fullmatch(part)
        if match is None:
            raise BookingError(
                "invalid",
                f"{part!r} is not like 'Mon 08-12 3' or 'Tue-Fri 13-15 2'",
                detail="seat_table",
                params={"part": part},
            )
        names = [match["first"].capitalize(), (match["last"] or match["first"]).capitalize()]
        if any(name not in WEEKDAYS for name in names):
            raise BookingError(
                "invalid",
                f"{part!r}: weekdays are {', '.join(WEEKDAYS)}",
                detail="seat_table",
                params={"part": part},
            )
        first, last = (WEEKDAYS.index(name) for name in names)
        start, end, seats = int(match["start"]), int(match["end"]), int(match["seats"])
        if not (first <= last and 0 <= start < end <= 24 and seats <= 50):
            raise BookingError(
                "invalid",
                f"{part!r}: days or hours out of order, or over 50 seats",
                detail="seat_table",
                params={"part": part},
            )
        for weekday in range(first, last + 1):
            for hour in range(start, end):
                table[(weekday, hour)] = seats
    return table


@dataclass(frozen=True, slots=True)
class Slot:
    """One bookable time of a service, with its seats."""

    service: str
    starts_at: datetime
    """UTC."""
    ends_at: datetime
    """UTC."""
    seats: int
    taken: int
    """Seats held or booked."""

    @property
    def free(self) -> int:
        """Seats still to be had."""
        return max(0, self.seats - self.taken)


@dataclass(frozen=True, slots=True)
class Contact:
    """Who a booking is for, as they gave it."""

    name: str
    """A name or initials (1-80 characters)."""
    email: str | None = None
    """Where a confirmation may go; kept until the slot is over."""
    lang: str = "sk"

    def checked(self) -> Contact:
        """The contact trimmed (the e-mail address lower-cased), or :class:`BookingError`."""
        name = " ".join(self.name.split())
        if not 1 <= len(name) <= MAX_NAME or not name.isprintable():
            raise BookingError(
                "invalid",
                f"give a name or initials of 1-{MAX_NAME} characters",
                detail="name",
                params={"max": MAX_NAME},
            )
        email = (self.email or "").strip().lower() or None
        if email is not None and (len(email) > 254 or not _EMAIL_RE.fullmatch(email)):
            raise BookingError("invalid", "the e-mail address is not valid", detail="email")
        if self.lang not in LANGUAGES:
            raise BookingError(
                "invalid",
                f"the language must be one of {', '.join(LANGUAGES)}",
                detail="lang",
                params={"languages": ", ".join(LANGUAGES)},
            )
        return Contact(name, email, self.lang)


class AppointmentBook:
    """The service layer of appointments: slots, holds, bookings, moves and cancellations.

    Reads the catalog, the calendar, the site's time zone and the clock through
    :class:`~hub.service.QueueService`; writes ``appointments`` and ``booking_rules``
    through the store's write transactions.
    """

    def __init__(self, queue: QueueService, *, per_address: int, per_email: int) -> None:
        """``per_address``/``per_email``: active bookings one client address / e-mail may have."""
        self.queue = queue
        self.store = queue.store
        self.per_address = per_address
        self.per_email = per_email
        self._rules: dict[str, BookingRules] | None = None
        self._lock = threading.Lock()
        self._listeners: list[BookingListener] = []

    def subscribe(self, listener: BookingListener) -> None:
        """Hear of every booking made, moved or cancelled from now on (after its commit).

        A listener that fails is logged; the booking stands.
        """
        self._listeners.append(listener)

    def _tell(self, what: str, appointment: Appointment) -> Appointment:
        for listener in self._listeners:
            try:
                listener(what, appointment)
            except Exception:
                log.exception("a listener failed on booking %s %s", appointment.code, what)
        return appointment

    # -- rules -----------------------------------------------------------------------

    def rules(self, service: str) -> BookingRules:
        """The rules of ``service`` (switched off when the admin never set any)."""
        return self._all_rules().get(service) or BookingRules(service)

    def bookable(self) -> list[str]:
        """The codes of the services that take appointments, in catalog order."""
        rules = self._all_rules()
        return [s.code for s in self.queue.services() if (r := rules.get(s.code)) and r.enabled]

    def save_rules(self, rules: BookingRules) -> None:
        """Check and store a service's rules."""
        rules.checked()
        if self.queue.service(rules.service) is None:
            raise BookingError("unknown_service", f"there is no service {rules.service!r}")
        values: dict[str, Any] = {
            "enabled": rules.enabled,
            "slot_min": rules.slot_min,
            "seats": rules.seats,
            "seats_by_hour": [[d, h, n] for (d, h), n in sorted(rules.seats_by_hour.items())],
            "horizon_days": rules.horizon_days,
            "cancel_before_min": rules.cancel_before_min,
            "hold_min": rules.hold_min,
        }
        with self._lock:
            with self.store.transaction() as conn:
                conn.execute(delete(_rules).where(_rules.c.service == rules.service))
                conn.execute(insert(_rules).values(service=rules.service, **values))
            self._rules = None  # after the commit: the next read sees the new rules

    def _all_rules(self) -> dict[str, BookingRules]:
        cached = self._rules
        if cached is not None:
            return cached
        with self.store.db.connect() as conn:
            rows = conn.execute(select(_rules)).all()
        loaded = {
            row.service: BookingRules(
                service=row.service,
                enabled=bool(row.enabled),
                slot_min=row.slot_min,
                seats=row.seats,
                seats_by_hour={(d, h): n for d, h, n in row.seats_by_hour},
                horizon_days=row.horizon_days,
                cancel_before_min=row.cancel_before_min,
                hold_min=row.hold_min,
            )
            for row in rows
        }
        self._rules = loaded
        return loaded

    # -- slots -----------------------------------------------------------------------

    def days(self, service: str) -> list[date]:
        """The days bookings are open for (today and ``horizon_days`` after it)."""
        rules = self._bookable_rules(service)
        today = self.queue.today()
        return [today + timedelta(days=n) for n in range(rules.horizon_days + 1)]

    def slots(self, service: str, day: date, *, admin: bool = False) -> list[Slot]:
        """The slots of ``service`` on ``day`` that have not begun, with their free seats.

        Raises :class:`BookingError`: ``unknown_service``, ``not_bookable``, or
        ``out_of_range`` when ``day`` is before today or past the booking window (the
        admin may book past it).
        """
        times = self._open_times(service, day, admin=admin)
        if not times:
            return []
        now = self.queue.clock()
        with self.store.db.connect() as conn:
            taken: dict[datetime, int] = dict(
                conn.execute(
                    select(_appointments.c.starts_at, func.count())
                    .where(
                        _appointments.c.service == service,
                        _appointments.c.starts_at >= times[0][0],
                        _appointments.c.starts_at <= times[-1][0],
                        _holds_seat(now),
                    )
                    .group_by(_appointments.c.starts_at)
                ).all()
            )
        return [
            Slot(service, start, end, seats, int(taken.get(start, 0)))
            for start, end, seats in times
        ]

    def _open_times(
        self, service: str, day: date, *, admin: bool
    ) -> list[tuple[datetime, datetime, int]]:
        """(start, end, seats) of the slots of ``day`` not begun yet (see :meth:`slots`)."""
        rules = self._in_window(service, day, admin)
        now = self.queue.clock()
        return [t for t in self._slot_times(service, rules, day) if t[0] > now]

    def _in_window(self, service: str, day: date, admin: bool) -> BookingRules:
        """The rules of ``service``, if ``day`` may be booked (else ``out_of_range``)."""
        rules = self._bookable_rules(service)
        today = self.queue.today()
        if day < today or (not admin and day > today + timedelta(days=rules.horizon_days)):
            raise BookingError(
                "out_of_range",
                f"bookings are open from {today} to "
                f"{today + timedelta(days=rules.horizon_days)}, not {day}",
            )
        return rules

    def _slot_times(
        self, service: str, rules: BookingRules, day: date
    ) -> Iterator[tuple[datetime, datetime, int]]:
        """(start, end, seats) of each slot of ``day`` with a seat, in UTC."""
        definition = self.queue.service(service)
        assert definition is not None
        zone = self.queue.timezone
        length = timedelta(minutes=rules.slot_min)
        for start, end in self.queue.calendar.open_spans(definition.hours, day, service):
            # Counted in UTC: on the day clocks change, local steps would skip or repeat.
            begin = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
            finish = _end_of_span(day, end, zone).astimezone(UTC)
            while begin + length <= finish:
                seats = rules.seats_at(begin.astimezone(zone))
                if seats > 0:
                    yield begin, begin + length, seats
                begin += length

    def _bookable_rules(self, service: str) -> BookingRules:
        if self.queue.service(service) is None:
            raise BookingError("unknown_service", f"there is no service {service!r}")
        rules = self.rules(service)
        if not rules.enabled:
            raise BookingError("not_bookable", f"the service {service!r} takes no appointments")
        return rules

    def _slot(self, service: str, starts_at: datetime, *, admin: bool) -> Slot:
        """The slot of ``service`` that starts at ``starts_at`` (``no_such_slot`` if none).

        Its ``taken`` is not counted: the booking's transaction looks at the seats.
        """
        if starts_at.tzinfo is None:
            raise BookingError("no_such_slot", "give the slot's start with its time zone")
        start = starts_at.astimezone(UTC)
        day = start.astimezone(self.queue.timezone).date()
        # The slots of the day begun after now, lazily: stop at the one asked for.
        for begin, end, seats in self._slot_times(
            service, self._in_window(service, day, admin), day
        ):
            if begin > start:
                break
            if begin == start and begin > self.queue.clock():
                return Slot(service, begin, end, seats, 0)
        raise BookingError("no_such_slot", f"{service} has no bookable slot at {starts_at}")

    # -- bookings --------------------------------------------------------------------

    def hold(
        self, service: str, starts_at: datetime, contact: Contact, *, client: str | None
    ) -> Appointment:
        """Keep a seat of a slot for a citizen filling in the form (confirm it to book)."""
        return self._take(service, starts_at, contact, client=client, hold=True, admin=False)

    def book(
        self,
        service: str,
        starts_at: datetime,
        contact: Contact,
        *,
        client: str | None,
        admin: bool = False,
    ) -> Appointment:
        """Book a seat of a slot at once (the API; the admin for a phone caller).

        ``admin`` skips the per-address and per-e-mail limits and the booking window.
        """
        booked = self._take(service, starts_at, contact, client=client, hold=False, admin=admin)
        return self._tell("booked", booked)

    def confirm(self, code: str, contact: Contact) -> Appointment:
        """Turn a hold into a booking with the citizen's name (and e-mail address)."""
        contact = contact.checked()
        now = self.queue.clock()
        confirmed: list[Appointment] = []  # the booking, when this call made it

        def work(conn: Connection) -> Appointment:
            found = _by_code(conn, code)
            if found is None or found.state not in (
                AppointmentState.HELD,
                AppointmentState.BOOKED,
            ):
                raise BookingError("unknown_code", "no booking with this code")
            if found.state is AppointmentState.BOOKED:
                return found  # confirmed already (the form sent twice)
            if found.hold_until is None or found.hold_until <= now:
                _lapse(conn, now)  # committed all the same (see _write)
                raise BookingError("hold_lapsed", "the slot was kept too long; choose it again")
            self._check_email_limit(conn, contact.email, now, exclude=found.id)
            booked = replace(
                found,
                state=AppointmentState.BOOKED,
                hold_until=None,
                name=contact.name,
                email=contact.email,
                lang=contact.lang,
            )
            values = {
                "state": booked.state.value,
                "hold_until": None,
                "name": booked.name,
                "email": booked.email,
                "lang": booked.lang,
            }
            conn.execute(update(_appointments).where(_appointments.c.id == found.id).values(values))
            confirmed.append(booked)
            return booked

        result = self._write(work)
        return self._tell("booked", result) if confirmed else result

    def cancel(self, code: str, *, admin: bool = False) -> Appointment:
        """Cancel a booking (or a hold); a citizen only until the rules' deadline."""
        self._active_or_refuse(code)
        now = self.queue.clock()

        def work(conn: Connection) -> tuple[Appointment, AppointmentState]:
            found = self._changeable(conn, code, now, admin=admin)
            conn.execute(
                update(_appointments)
                .where(_appointments.c.id == found.id)
                .values(state=AppointmentState.CANCELLED.value, hold_until=None)
            )
            return replace(found, state=AppointmentState.CANCELLED, hold_until=None), found.state

        cancelled, was = self._write(work)
        return self._tell("cancelled", cancelled) if was is AppointmentState.BOOKED else cancelled

    def move(self, code: str, starts_at: datetime, *, admin: bool = False) -> Appointment:
        """Move a booking to another slot of its service; it keeps its code.

        The old slot must still be before the cancel deadline (unless ``admin``); the
        new one must have a free seat.
        """
        for _attempt in range(ATTEMPTS):
            now = self.queue.clock()
            found = self._active_or_refuse(code)
            slot = self._slot(found.service, starts_at, admin=admin)

            def work(conn: Connection, slot: Slot = slot, now: datetime = now) -> Appointment:
                current = self._changeable(conn, code, now, admin=admin)
                if current.state is not AppointmentState.BOOKED:
                    raise BookingError("unknown_code", "only a confirmed booking moves")
                seat = _free_seat(conn, slot, now)
                conn.execute(
                    update(_appointments)
                    .where(_appointments.c.id == current.id)
                    .values(starts_at=slot.starts_at, ends_at=slot.ends_at, seat=seat)
                )
                return replace(current, starts_at=slot.starts_at, ends_at=slot.ends_at)

            try:
                moved = self._write(work)
            except IntegrityError:
                continue
            return self._tell("moved", moved)
        raise BookingError("slot_full", "the slot was taken meanwhile; choose another")

    def find(self, code: str) -> Appointment | None:
        """The appointment with booking ``code`` (any state), or ``None``."""
        if not _CODE_RE.fullmatch(code):
            return None
        return self.store.appointment_by_code(code)

    def day_bookings(self, service: str, day: date) -> list[Appointment]:
        """The held and booked appointments of ``service`` on ``day``, by time (the admin's)."""
        zone = self.queue.timezone
        start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        now = self.queue.clock()
        with self.store.db.connect() as conn:
            rows = conn.execute(
                select(_appointments)
                .where(
                    _appointments.c.service == service,
                    _appointments.c.starts_at >= start,
                    _appointments.c.starts_at < end,
                    _holds_seat(now),
                )
                .order_by(_appointments.c.starts_at, _appointments.c.seat)
            ).all()
        return [appointment_from_row(row) for row in rows]

    # -- internals -------------------------------------------------------------------

    def _take(
        self,
        service: str,
        starts_at: datetime,
        contact: Contact,
        *,
        client: str | None,
        hold: bool,
        admin: bool,
    ) -> Appointment:
        """Insert a held or booked appointment on the lowest free seat of the slot."""
        rules = self._bookable_rules(service)
        if not hold:
            contact = contact.checked()
        if client is not None and len(client) > 64:
            client = client[:64]
        for _attempt in range(ATTEMPTS):
            slot = self._slot(service, starts_at, admin=admin)
            now = self.queue.clock()
            appointment = Appointment(
                id=uuid.uuid4().hex,
                code=f"{secrets.randbelow(10**8):08d}",
                service=service,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                name=contact.name if not hold else "",
                email=contact.email,
                lang=contact.lang if contact.lang in LANGUAGES else LANGUAGES[0],
                state=AppointmentState.HELD if hold else AppointmentState.BOOKED,
                created_at=now,
                hold_until=now + timedelta(minutes=rules.hold_min) if hold else None,
            )

            def work(
                conn: Connection, slot: Slot = slot, made: Appointment = appointment
            ) -> Appointment:
                if not admin:
                    self._check_client_limit(conn, client, made.created_at)
                    self._check_email_limit(conn, contact.email, made.created_at, exclude=None)
                values = {
                    "id": made.id,
                    "code": made.code,
                    "service": made.service,
                    "starts_at": made.starts_at,
                    "ends_at": made.ends_at,
                    "seat": _free_seat(conn, slot, made.created_at),
                    "name": made.name,
                    "email": made.email,
                    "lang": made.lang,
                    "state": made.state.value,
                    "created_at": made.created_at,
                    "hold_until": made.hold_until,
                    "client": client,
                }
                conn.execute(insert(_appointments).values(values))
                return made

            try:
                return self._write(work)
            except IntegrityError:
                # Another process took this seat (or drew this code) first: look again.
                continue
        raise BookingError("slot_full", "the slot was taken meanwhile; choose another")

    def _active_or_refuse(self, code: str) -> Appointment:
        """The held or booked appointment ``code``, else ``unknown_code``.

        Read without the writer: a guessed code costs no write transaction.
        """
        found = self.find(code)
        if found is None or found.state not in (AppointmentState.HELD, AppointmentState.BOOKED):
            raise BookingError("unknown_code", "no active booking with this code")
        return found

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction; a refusal it raises comes out after.

        What ``work`` wrote before refusing (a lapsed hold marked) is committed: a
        refusal is no database error, and the store keeps its writer connection.
        """
        refused: BookingError | None = None
        result: T | None = None
        with self.store.transaction() as conn:
            try:
                result = work(conn)
            except BookingError as exc:
                refused = exc
        if refused is not None:
            raise refused
        assert result is not None
        return result

    def _check_client_limit(self, conn: Connection, client: str | None, now: datetime) -> None:
        if client is None:
            return
        count = _active_count(conn, _appointments.c.client == client, now, self.per_address)
        if count >= self.per_address:
            raise BookingError(
                "too_many_bookings",
                f"this address already has {self.per_address} active bookings",
            )

    def _check_email_limit(
        self, conn: Connection, email: str | None, now: datetime, *, exclude: str | None
    ) -> None:
        if email is None:
            return
        condition = _appointments.c.email == email
        if exclude is not None:
            condition = condition & (_appointments.c.id != exclude)
        if _active_count(conn, condition, now, self.per_email) >= self.per_email:
            raise BookingError(
                "too_many_bookings",
                f"this e-mail address already has {self.per_email} active bookings",
            )

    def _changeable(
        self, conn: Connection, code: str, now: datetime, *, admin: bool
    ) -> Appointment:
        """The held or booked appointment ``code``, if it may still be changed at ``now``."""
        found = _by_code(conn, code) if _CODE_RE.fullmatch(code) else None
        if found is None or found.state not in (AppointmentState.HELD, AppointmentState.BOOKED):
            raise BookingError("unknown_code", "no active booking with this code")
        if found.ends_at <= now:
            raise BookingError("too_late", "the appointment is over")
        rules = self.rules(found.service)
        deadline = found.starts_at - timedelta(minutes=rules.cancel_before_min)
        if not admin and found.state is AppointmentState.BOOKED and now > deadline:
            raise BookingError(
                "too_late",
                f"a booking can be changed until {rules.cancel_before_min} minutes before it",
            )
        return found


def expire_holds(store: Store, now: datetime) -> int:
    """Mark the holds that lapsed by ``now`` cancelled; how many (the nightly pruning's).

    A lapsed hold holds no seat from the moment it lapses; its row is marked when its
    seat is next taken, when the citizen comes back to confirm, or here.
    """
    with store.transaction() as conn:
        return _lapse(conn, now)


def forget_contacts(store: Store, before: datetime) -> int:
    """Erase the e-mail and client addresses of appointments that ended before ``before``.

    The nightly pruning calls it: the addresses are kept only until the slot is over.
    """
    with store.transaction() as conn:
        return int(
            conn.execute(
                update(_appointments)
                .where(
                    _appointments.c.ends_at < before,
                    or_(_appointments.c.email.is_not(None), _appointments.c.client.is_not(None)),
                )
                .values(email=None, client=None)
            ).rowcount
        )


def _end_of_span(day: date, end: time, zone: Any) -> datetime:
    """A span's end as an aware datetime; ``time.max`` (open to midnight) is midnight."""
    if end == time.max:
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return datetime.combine(day, end, tzinfo=zone)


def _holds_seat(now: datetime) -> Any:
    """The rows that hold their seat at ``now``: booked, or held and not lapsed."""
    return or_(
        _appointments.c.state == AppointmentState.BOOKED.value,
        (_appointments.c.state == AppointmentState.HELD.value) & (_appointments.c.hold_until > now),
    )


def _active_count(conn: Connection, condition: Any, now: datetime, limit: int) -> int:
    """How many bookings matching ``condition`` hold a seat of a slot not yet over.

    Counts at most ``limit``: the limit's check needs no more, whatever one address
    (a city's shared network, say) has booked over time.
    """
    found = (
        select(_appointments.c.id)
        .where(condition, _holds_seat(now), _appointments.c.ends_at > now)
        .limit(limit)
        .subquery()
    )
    return int(conn.execute(select(func.count()).select_from(found)).scalar_one())


def _lapse(conn: Connection, now: datetime) -> int:
    """Cancel the holds that lapsed by ``now`` (the hold index finds them)."""
    return int(
        conn.execute(
            update(_appointments)
            .where(
                _appointments.c.hold_until <= now,
                _appointments.c.state == AppointmentState.HELD.value,
            )
            .values(state=AppointmentState.CANCELLED.value, hold_until=None)
        ).rowcount
    )


def _free_seat(conn: Connection, slot: Slot, now: datetime) -> int:
    """The lowest seat of ``slot`` no held or booked row has (``slot_full`` if none).

    The slot's lapsed holds are cancelled here, which frees their seats.
    """
    rows = conn.execute(
        select(_appointments.c.seat, _appointments.c.hold_until).where(
            _appointments.c.service == slot.service,
            _appointments.c.starts_at == slot.starts_at,
            _appointments.c.state.in_(_ACTIVE),
        )
    ).all()
    if any(hold is not None and hold <= now for _, hold in rows):
        conn.execute(
            update(_appointments)
            .where(
                _appointments.c.service == slot.service,
                _appointments.c.starts_at == slot.starts_at,
                _appointments.c.hold_until <= now,
                _appointments.c.state == AppointmentState.HELD.value,
            )
            .values(state=AppointmentState.CANCELLED.value, hold_until=None)
        )
    taken = {seat for seat, hold in rows if hold is None or hold > now}
    for seat in range(slot.seats):
        if seat not in taken:
            return seat
    raise BookingError("slot_full", "every seat of this slot is taken")


def _by_code(conn: Connection, code: str) -> Appointment | None:
    row = conn.execute(select(_appointments).where(_appointments.c.code == code)).first()
    return None if row is None else appointment_from_row(row)

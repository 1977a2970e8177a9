"""The queue's domain: services, counters, tickets and the changes between them.

Everything here is plain data with no I/O. The engine (:mod:`hub.engine`)
decides changes; the store (:mod:`hub.store`) persists them.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time

from common.i18n import service_name
from common.identity import HUB_DEVICE_ID


class TicketState(enum.StrEnum):
    """Where a ticket is in its life."""

    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    PARKED = "parked"
    DONE = "done"
    NO_SHOW = "no_show"
    EXPIRED = "expired"

    @property
    def live(self) -> bool:
        """Whether the ticket still holds its displayed number."""
        return self in LIVE_STATES

    @property
    def terminal(self) -> bool:
        """Whether the ticket's life is over."""
        return not self.live


LIVE_STATES = frozenset(
    {TicketState.WAITING, TicketState.CALLED, TicketState.SERVING, TicketState.PARKED}
)


class Priority(enum.StrEnum):
    """Why a ticket goes ahead of the others."""

    DISABILITY = "disability"
    PREGNANCY = "pregnancy"
    AGE = "age"
    WITH_CHILD = "with_child"
    OTHER = "other"


class CounterState(enum.StrEnum):
    """Whether a counter takes citizens right now."""

    OPEN = "open"
    PAUSED = "paused"


class Action(enum.StrEnum):
    """Every transition the engine knows, as written to the audit trail."""

    ISSUE = "issue"
    CALL = "call"
    RECALL = "recall"
    START = "start"
    DONE = "done"
    NO_SHOW = "no_show"
    TRANSFER = "transfer"
    PARK = "park"
    UNPARK = "unpark"
    EXPIRE = "expire"
    PAUSE = "pause"
    RESUME = "resume"
    RESERVE = "reserve"
    """A block of numbers set aside for a kiosk to issue while the hub is away."""
    PRIORITISE = "prioritise"
    """A clerk gave a live ticket priority (or changed its reason)."""
    CHECK_IN = "check_in"
    """A remote ticket's holder reported at a kiosk: they are in the office."""
    PASS = "pass"
    """A remote ticket whose holder has not checked in was passed over by a call."""


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Weekly opening hours: for each weekday (0 = Monday) a list of open intervals.

    A weekday missing from ``days`` is closed all day. ``always`` opens the service
    round the clock (the default, so a fresh install issues tickets at once).
    """

    days: Mapping[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    always: bool = True

    def is_open(self, local: datetime) -> bool:
        """Tell whether the service is open at ``local`` (a time in the site's zone)."""
        if self.always:
            return True
        now = local.time()
        return any(start <= now < end for start, end in self.days.get(local.weekday(), ()))

    def describe(self) -> str:
        """Render the hours compactly, e.g. ``Mon 08:00-12:00 13:00-15:00; Tue …``."""
        if self.always:
            return "always"
        names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        parts = []
        for day in range(7):
            spans = self.days.get(day, ())
            if spans:
                text = " ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in spans)
                parts.append(f"{names[day]} {text}")
        return "; ".join(parts) or "closed"


@dataclass(frozen=True, slots=True)
class RemoteRules:
    """Whether and how a service issues remote tickets (taken on the portal, from a phone)."""

    enabled: bool = False
    """The admin's switch: remote tickets are offered only when it is on."""
    daily_quota: int = 50
    """How many remote tickets the service issues per day (they count towards its limit)."""
    stop_before_close_s: int = 3600
    """Remote tickets stop this long before the current opening closes."""
    presence: bool = True
    """A remote ticket is called only after its holder checked in at a kiosk."""
    max_passes: int = 3
    """How many calls may pass over an unchecked remote ticket whose turn came; the
    next one that would expires it."""


@dataclass(frozen=True, slots=True)
class Service:
    """A kind of business a citizen comes for, with its own ticket numbers."""

    code: str
    """Stable identifier used in topics and URLs, e.g. ``taxes``."""
    prefix: str
    """The ticket letter, e.g. ``A`` for ``A042``; unique across services."""
    names: Mapping[str, str]
    """The service's name per language code (sk, cs, uk, en)."""
    hours: OpeningHours = field(default_factory=OpeningHours)
    """When tickets for the service may be issued."""
    daily_limit: int | None = None
    """How many tickets may be issued per day; ``None`` for no limit."""
    open: bool = True
    """The admin's switch: a closed service issues no tickets whatever its hours."""
    weight: float = 1.0
    """Multiplies waiting time when counters choose the next ticket (see docs)."""
    default_service_time_s: int = 300
    """Assumed duration of one visit until enough real visits are measured."""
    priority_allowed: bool = True
    """The admin's switch: whether a citizen may take a priority ticket of the service at a
    kiosk (or a clerks' system through the API). A clerk may raise a ticket's priority
    whatever it says."""
    remote: RemoteRules = field(default_factory=RemoteRules)
    """The remote tickets' rules (off by default)."""

    def name(self, lang: str) -> str:
        """The name in ``lang``, by the rule of :func:`common.i18n.service_name`."""
        return service_name(self.names, lang, self.code)


@dataclass(frozen=True, slots=True)
class Counter:
    """A desk where a clerk serves citizens."""

    id: str
    """Stable identifier used in topics, e.g. ``3``."""
    name: str
    """What the lobby display shows and speaks, e.g. ``Okienko 3``."""
    services: tuple[str, ...]
    """Codes of the services served here, in the clerk's order of preference."""
    state: CounterState = CounterState.PAUSED
    """Whether the counter is taking citizens."""
    current: str | None = None
    """Id of the ticket called to or served at this counter, if any."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """One citizen's place in the queue, from issue to its terminal state."""

    id: str
    """Globally unique, stable identifier (a UUID in hex)."""
    number_service: str
    """Code of the service whose day sequence issued the number (kept on transfer)."""
    business_day: date
    """The site-local day the ticket belongs to."""
    seq: int
    """Position in the day's sequence of ``number_service``, from 1, never reused."""
    number: str
    """What the citizen sees, e.g. ``A042``."""
    service: str
    """Code of the service the ticket waits for now (changes on transfer)."""
    issued_at: datetime
    """When the ticket was issued (UTC)."""
    arrived_at: datetime
    """The time that orders the queue: issue time, or transfer time where so configured."""
    state: TicketState = TicketState.WAITING
    priority: Priority | None = None
    """Why the ticket goes first, if it does."""
    lang: str = "sk"
    """The language the citizen chose, for the ticket and the portal."""
    counter: str | None = None
    """The counter that called or serves the ticket."""
    calls: int = 0
    """How many times the ticket has been called, recalls included."""
    called_at: datetime | None = None
    """When the ticket was first called at its current counter."""
    serving_at: datetime | None = None
    """When service started (the citizen arrived at the counter)."""
    finished_at: datetime | None = None
    """When the ticket reached a terminal state."""
    origin: str = HUB_DEVICE_ID
    """Who issued it: the hub (:data:`~common.identity.HUB_DEVICE_ID`), or a kiosk's device
    id for numbers issued offline."""
    appointment: str | None = None
    """The id of the :class:`Appointment` whose check-in issued the ticket; ``None`` for a
    walk-in. A booking is checked in at most once (the store enforces it)."""
    slot_at: datetime | None = None
    """The booked slot's start (UTC) for a checked-in appointment: the call order puts
    the ticket at that time (``docs/queue.md``)."""
    remote_code: str | None = None
    """A remote ticket's check-in code (six digits, unique among the day's live remote
    tickets); ``None`` for a ticket taken in the office."""
    checked_in_at: datetime | None = None
    """When a remote ticket's holder checked in at a kiosk."""
    passes: int = 0
    """How many calls passed over the remote ticket while its holder had not checked in."""

    @property
    def remote(self) -> bool:
        """Whether the ticket was taken remotely (on the portal) rather than in the office."""
        return self.remote_code is not None

    @property
    def booked(self) -> bool:
        """Whether the ticket waits for its booked slot.

        True for a checked-in appointment that was not transferred to another service
        (a transferred one waits there as a walk-in).
        """
        return self.slot_at is not None and self.service == self.number_service

    def evolve(self, **changes: object) -> Ticket:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class NumberBlock:
    """Day sequences of one service set aside for one kiosk to issue offline.

    The engine never issues these numbers itself; the kiosk issues them while the
    hub does not answer and delivers each ticket later (``docs/queue.md``).
    """

    id: str
    """Globally unique identifier (a UUID in hex)."""
    device: str
    """The kiosk the block belongs to."""
    service: str
    """Code of the service whose day sequence the numbers come from."""
    prefix: str
    """The service's ticket letter when the block was reserved (printed on its tickets)."""
    business_day: date
    """The only day the block's numbers may be issued on."""
    first_seq: int
    last_seq: int
    """The block is the sequences ``first_seq``…``last_seq``, both included."""
    reserved_at: datetime

    def holds(self, seq: int) -> bool:
        """Whether ``seq`` is one of the block's sequences."""
        return self.first_seq <= seq <= self.last_seq


class AppointmentState(enum.StrEnum):
    """Where a booking is in its life (its check-in is the ticket that names it)."""

    HELD = "held"
    """The slot is kept for a citizen who is still filling in the form; it lapses."""
    BOOKED = "booked"
    """Confirmed: the slot is the citizen's."""
    CANCELLED = "cancelled"
    """Given up by the citizen or the admin, or a hold that lapsed: the slot is free."""
    NO_SHOW = "no_show"
    """Booked, but nobody checked in before the slot's grace time ran out."""


@dataclass(frozen=True, slots=True)
class Appointment:
    """A citizen's booked time with a service.

    Checking in at a kiosk issues a ticket whose ``appointment`` is this id; the
    appointment itself is not changed by it.
    """

    id: str
    """Globally unique identifier (a UUID in hex)."""
    code: str
    """The booking code the citizen keeps (in the QR code, typed on the kiosk's keypad)."""
    service: str
    """Code of the service booked."""
    starts_at: datetime
    """The slot's start (UTC)."""
    ends_at: datetime
    """The slot's end (UTC)."""
    name: str
    """The name, or initials, the citizen gave; the clerk greets them with it."""
    email: str | None
    """Where the confirmation went, if the citizen gave an address."""
    lang: str
    """The citizen's language, for the ticket and the messages."""
    state: AppointmentState
    created_at: datetime
    hold_until: datetime | None = None
    """When a :attr:`AppointmentState.HELD` slot lapses."""


@dataclass(frozen=True, slots=True)
class Event:
    """One audit row: who moved what from which state to which, and when."""

    at: datetime
    action: Action
    actor: str
    """Who asked: ``counter:3``, ``kiosk:k1``, ``admin:jana``, ``system``…"""
    ticket_id: str | None = None
    counter_id: str | None = None
    service: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    """What one engine operation decided: new versions of tickets and counters, and why.

    The engine never mutates itself while deciding. The service layer persists a
    change and then hands it back to :meth:`Engine.apply`, so a failed write leaves
    the engine exactly as it was.
    """

    tickets: tuple[Ticket, ...] = ()
    """New or updated tickets, in the order they changed."""
    counters: tuple[Counter, ...] = ()
    """Updated counters."""
    events: tuple[Event, ...] = ()
    """The audit rows, one per transition."""
    new_ticket_ids: frozenset[str] = frozenset()
    """Which of ``tickets`` are new (inserted rather than updated)."""
    subject: Ticket | None = None
    """The ticket the operation was about (issued, called…), if any."""
    day: date | None = None
    """Set by a day rollover: the business day the engine moves to."""
    blocks: tuple[NumberBlock, ...] = ()
    """Number blocks newly reserved for kiosks."""

    def ticket(self, ticket_id: str) -> Ticket:
        """Return the new version of ticket ``ticket_id`` from this change."""
        for ticket in reversed(self.tickets):
            if ticket.id == ticket_id:
                return ticket
        raise KeyError(ticket_id)

    def __add__(self, other: Change) -> Change:
        return Change(
            tickets=self.tickets + other.tickets,
            counters=self.counters + other.counters,
            events=self.events + other.events,
            new_ticket_ids=self.new_ticket_ids | other.new_ticket_ids,
            subject=other.subject or self.subject,
            day=other.day or self.day,
            blocks=self.blocks + other.blocks,
        )

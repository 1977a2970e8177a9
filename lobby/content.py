"""What a lobby display shows, apart from how: the content model of the call screen.

:class:`Lobby` takes the hub's messages (calls, the retained ``queue/<service>``
and ``counter/<id>/state``) and keeps what the waiting room should see: the current
call, the previous ones, and the queue of each service. It sequences calls that come
together (each stays current for a minimum time, the others wait their turn, so none
flashes past), blinks a new call for a while, and marks recalls. :meth:`Lobby.scene`
gives a frozen :class:`Scene` for any renderer; :meth:`Lobby.next_change` says when
the scene will change by itself, so a renderer can sleep until then.

It imports neither pygame nor serial, and keeps no clock of its own (every method
takes ``now``, seconds on a monotonic clock), so the hub's web display page can reuse
it as it is. It is not thread-safe: one thread feeds it and reads it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime

from common.i18n import service_name
from lobby.catalog import Catalog
from sync_agent.protocol import Call, CounterState, QueueState

__all__ = [
    "APPOINTMENT_MARK",
    "BLINK_PERIOD_S",
    "PRIORITY_MARK",
    "REMOTE_MARK",
    "Lobby",
    "Scene",
    "ShownCall",
    "ShownService",
    "ticket_marks",
]

BLINK_PERIOD_S = 0.5
"""A highlighted call is lit for this long, then dark for as long, and again."""

APPOINTMENT_MARK = "■"
"""The mark beside the number of a booked appointment's ticket: printed on the ticket (every
ESC/POS code page has it, so it prints as text at any size), on the kiosk's confirmation,
the call screen and the hub's /display page, so a citizen sees the same sign everywhere."""

PRIORITY_MARK = "»"
"""The discreet mark beside the number of a priority ticket, wherever the appointment's mark
goes. It never tells why the ticket has priority (that stays between the citizen and the
clerk). Most ESC/POS code pages have it, so it prints as text."""

REMOTE_MARK = "▲"
"""The mark beside the number of a remote ticket (taken on the portal): on the call screen,
the hub's /display page and the clerk's panel."""


def ticket_marks(*, appointment: bool, priority: bool, remote: bool = False) -> str:
    """The marks beside a ticket's number: the appointment's, the priority's, the remote's.

    A remote ticket has neither of the others (it carries no priority and no booking).
    """
    return (
        (APPOINTMENT_MARK if appointment else "")
        + (PRIORITY_MARK if priority else "")
        + (REMOTE_MARK if remote else "")
    )


@dataclass(frozen=True, slots=True)
class ShownCall:
    """A call as the screen shows it."""

    ticket: str
    """The ticket's number, such as ``A042``."""
    ticket_id: str
    counter: str
    """The counter's id, such as ``3``."""
    counter_name: str
    """The counter's name, such as ``Okienko 3``."""
    service: str
    recall: bool
    """Whether the ticket was called before (a recall, or the return of a parked ticket)."""
    shown_at: float = 0.0
    """When it became the current call (monotonic seconds)."""
    appointment: bool = False
    """Whether the ticket is a booked appointment's (marked with :data:`APPOINTMENT_MARK`)."""
    priority: bool = False
    """Whether the ticket has priority (marked with :data:`PRIORITY_MARK`)."""
    remote: bool = False
    """Whether the ticket was taken remotely (marked with :data:`REMOTE_MARK`)."""

    @property
    def mark(self) -> str:
        """The marks shown beside the number (:func:`ticket_marks`); empty for most tickets."""
        return ticket_marks(
            appointment=self.appointment, priority=self.priority, remote=self.remote
        )

    @property
    def marks(self) -> tuple[tuple[str, str], ...]:
        """Each mark beside the number, with the label that names it for screen readers.

        The labels are ``appointment``, ``priority`` and ``remote``.
        """
        return tuple(
            (label, mark)
            for label, mark, shown in (
                ("appointment", APPOINTMENT_MARK, self.appointment),
                ("priority", PRIORITY_MARK, self.priority),
                ("remote", REMOTE_MARK, self.remote),
            )
            if shown
        )

    @property
    def place(self) -> str:
        """Where to go, as screens name it: the counter's number, or its name if it has none."""
        return self.counter if self.counter.isdigit() else self.counter_name

    @classmethod
    def of(cls, call: Call) -> ShownCall:
        """The shown form of a ``calls`` message."""
        return cls(
            ticket=call.ticket,
            ticket_id=call.ticket_id,
            counter=call.counter,
            counter_name=call.counter_name,
            service=call.service,
            recall=call.recall or call.calls > 1,
            appointment=call.appointment,
            priority=call.priority,
            remote=call.remote,
        )


@dataclass(frozen=True, slots=True)
class ShownService:
    """One service's queue as the screen shows it."""

    service: str
    prefix: str
    names: dict[str, str]
    """The service's name by language."""
    open: bool
    waiting: int
    estimated_wait_s: int | None
    cut_off: bool = False
    """Open, but taking no more tickets in this opening."""
    opens_at: datetime | None = None
    """When it is not open: the next time it opens, in the site's zone."""
    at: datetime | None = None
    """When the hub described it (its clock decides what "today" is)."""

    def name(self, lang: str) -> str:
        """The service's name in ``lang``, by the rule of :func:`common.i18n.service_name`."""
        return service_name(self.names, lang, self.service)

    def closed_text(self, texts: Catalog) -> str:
        """What the screen says of it while it is not open: why, and when it opens next."""
        why = texts.label("cut_off" if self.cut_off else "closed")
        opens = self.opens_at
        if opens is None:
            return why
        clock = opens.strftime("%H:%M")
        if self.at is not None and self.at.astimezone(opens.tzinfo).date() == opens.date():
            return f"{why} · {texts.label('opens_today', time=clock)}"
        day = texts.label("date", day=opens.day, month=opens.month)
        return f"{why} · {texts.label('opens_on', date=day, time=clock)}"

    @property
    def estimated_minutes(self) -> int | None:
        """The estimated wait in whole minutes, rounded up; ``None`` when unknown."""
        if self.estimated_wait_s is None:
            return None
        return max(1, math.ceil(self.estimated_wait_s / 60))


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything the screen shows at one moment; equal scenes look the same."""

    current: ShownCall | None
    lit: bool
    """Whether the current call is drawn highlighted now (it blinks while it is new)."""
    history: tuple[ShownCall, ...]
    """Previous calls, newest first."""
    services: tuple[ShownService, ...]
    """The services' queues, by ticket prefix."""
    language: str
    """The language of the labels now."""
    connected: bool
    """Whether the display hears the hub (else the screen says so)."""
    waiting_calls: int
    """How many calls wait for their turn to be the current one."""


class Lobby:
    """The call screen's content, fed with the hub's messages and read as :class:`Scene`.

    ``history`` is how many previous calls are kept; ``highlight_s`` how long a new
    call blinks; ``min_show_s`` the least time a call stays current while others wait;
    ``languages`` the labels' languages, switched every ``language_cycle_s`` (0: the
    first only).
    """

    def __init__(
        self,
        *,
        history: int = 5,
        highlight_s: float = 4.0,
        min_show_s: float = 6.0,
        languages: tuple[str, ...] = ("sk",),
        language_cycle_s: float = 0.0,
    ) -> None:
        if not languages:
            raise ValueError("a lobby needs at least one language")
        self.history_size = history
        self.highlight_s = highlight_s
        self.min_show_s = min_show_s
        self.languages = languages
        self.language_cycle_s = language_cycle_s
        self.current: ShownCall | None = None
        self.history: deque[ShownCall] = deque(maxlen=history + 1)  # +1: the current ticket again
        self.pending: dict[str, ShownCall] = {}
        """Calls waiting for their turn by ticket id, oldest first (a dict keeps the order
        of insertion, and a ticket called again keeps its place in constant time)."""
        self.services: dict[str, ShownService] = {}
        self.counters: dict[str, CounterState] = {}
        """The retained state of every counter heard of, by id."""
        self.connected = False

    # -- input ---------------------------------------------------------------------

    def call(self, call: Call) -> None:
        """A ``calls`` message arrived: it waits for its turn (see :meth:`advance`).

        A ticket called again while it still waits is not queued twice: the newer call
        (another counter, or a recall) takes its place in the line.
        """
        shown = ShownCall.of(call)
        waiting = self.pending.get(shown.ticket_id)
        if waiting is not None:
            shown = replace(shown, recall=shown.recall or waiting.recall)
        self.pending[shown.ticket_id] = shown

    def past(self, call: Call) -> None:
        """A call heard too late to announce: it joins the previous calls, silently."""
        self._remember(ShownCall.of(call))

    def queue(self, state: QueueState) -> None:
        """A service's retained ``queue/<service>`` state arrived."""
        self.services[state.service] = ShownService(
            service=state.service,
            prefix=state.prefix,
            names=dict(state.names),
            open=state.open,
            waiting=state.waiting,
            estimated_wait_s=state.estimated_wait_s,
            cut_off=state.cut_off,
            opens_at=state.opens_at,
            at=state.at,
        )

    def counter(self, state: CounterState) -> None:
        """A counter's retained ``counter/<id>/state`` arrived."""
        self.counters[state.counter] = state

    def set_connected(self, connected: bool) -> None:
        """Whether the display hears the hub now."""
        self.connected = connected

    # -- time ----------------------------------------------------------------------

    def advance(self, now: float) -> list[ShownCall]:
        """Let waiting calls take their turn; return those that became current now.

        A call stays current for at least ``min_show_s`` while others wait; then the
        next one in line replaces it and the old one goes to the history.
        """
        shown: list[ShownCall] = []
        while self.pending and (
            self.current is None or now >= self.current.shown_at + self.min_show_s
        ):
            following = replace(self.pending.pop(next(iter(self.pending))), shown_at=now)
            if self.current is not None:
                self._remember(self.current)
            self.current = following
            shown.append(following)
            if self.min_show_s > 0:
                break
        return shown

    def _remember(self, call: ShownCall) -> None:
        if self.history_size == 0:
            return
        for old in list(self.history):
            if old.ticket_id == call.ticket_id:
                self.history.remove(old)
        self.history.appendleft(call)

    def next_change(self, now: float) -> float | None:
        """When the scene changes by itself next (monotonic seconds), ``None`` if never.

        That is the next blink of a new call, the turn of a waiting call, or the next
        language of the labels.
        """
        times: list[float] = []
        current = self.current
        if current is not None:
            age = now - current.shown_at
            if age < self.highlight_s:
                blink = (math.floor(age / BLINK_PERIOD_S) + 1) * BLINK_PERIOD_S
                times.append(current.shown_at + min(blink, self.highlight_s))
            if self.pending:
                times.append(max(now, current.shown_at + self.min_show_s))
        elif self.pending:
            times.append(now)
        if self.language_cycle_s > 0 and len(self.languages) > 1:
            cycle = self.language_cycle_s
            times.append((math.floor(now / cycle) + 1) * cycle)
        return min(times) if times else None

    # -- output --------------------------------------------------------------------

    def language(self, now: float) -> str:
        """The labels' language at ``now``."""
        if self.language_cycle_s <= 0 or len(self.languages) == 1:
            return self.languages[0]
        return self.languages[int(now // self.language_cycle_s) % len(self.languages)]

    def lit(self, now: float) -> bool:
        """Whether the current call is drawn highlighted at ``now`` (blinking while new)."""
        current = self.current
        if current is None:
            return False
        age = now - current.shown_at
        return 0 <= age < self.highlight_s and int(age // BLINK_PERIOD_S) % 2 == 0

    def scene(self, now: float) -> Scene:
        """What the screen shows at ``now``."""
        current = self.current
        # A ticket called again is current, not also among the previous calls.
        history = tuple(
            call for call in self.history if current is None or call.ticket_id != current.ticket_id
        )
        return Scene(
            current=current,
            lit=self.lit(now),
            history=history[: self.history_size],
            services=tuple(sorted(self.services.values(), key=lambda r: (r.prefix, r.service))),
            language=self.language(now),
            connected=self.connected,
            waiting_calls=len(self.pending),
        )

    def board_text(self, counter: str) -> str:
        """What a counter's LED board shows: its current ticket's number, or nothing."""
        state = self.counters.get(counter)
        if state is None or state.ticket is None:
            return ""
        return state.ticket.number

"""What pages and the API show, computed from the queue: shared by every blueprint."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from hub.model import TicketState
from hub.service import Engine, QueueService, TicketStatus

TICKET_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
"""Ticket ids are UUIDs in hex; anything else is not looked up."""


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One service's line on the queue-status page."""

    code: str
    prefix: str
    name: str
    open: bool
    """Whether tickets are issued now (the admin's switch, the hours narrowed by the
    office calendar, the cut-off)."""
    cut_off: bool
    """Open, but taking no more tickets in this opening (those waiting fill it)."""
    opens_at: datetime | None
    """When it is not open: the next time it opens, in the site's zone (``None``: not known)."""
    closed_for: str | None
    """Why the calendar closes it now: a holiday's name or the admin's reason."""
    hours: str
    waiting: int
    wait_min: int | None
    """Estimated wait for a new ticket in whole minutes (rounded up); ``None``: unknown."""
    open_counters: int
    issued_today: int
    daily_limit: int | None


def minutes(seconds: int | None) -> int | None:
    """Seconds as whole minutes, rounded up (a citizen would rather wait less than told)."""
    return None if seconds is None else math.ceil(seconds / 60)


def queue_rows(queue: QueueService, lang: str) -> list[QueueRow]:
    """Every service's live state in ``lang``, in catalog order."""
    return [
        QueueRow(
            code=s.service.code,
            prefix=s.service.prefix,
            name=s.service.name(lang),
            open=s.availability.issuing,
            cut_off=s.availability.refused == "cut_off",
            opens_at=s.availability.opens_at,
            closed_for=s.availability.closed_for,
            hours=s.service.hours.describe(),
            waiting=s.waiting,
            wait_min=minutes(s.estimated_wait_s),
            open_counters=s.open_counters,
            issued_today=s.issued_today,
            daily_limit=s.service.daily_limit,
        )
        for s in queue.status()
    ]


def longest_waits(engine: Engine, now: datetime) -> dict[str, float]:
    """The longest current wait in seconds per service that has anyone waiting.

    Call it under the queue's lock (:meth:`QueueService.read`).
    """
    longest: dict[str, float] = {}
    for ticket in engine.tickets.values():
        if ticket.state is TicketState.WAITING:
            waited = (now - ticket.arrived_at).total_seconds()
            longest[ticket.service] = max(longest.get(ticket.service, 0.0), waited)
    return longest


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket as its holder's page shows it."""

    id: str
    number: str
    service: str
    service_name: str
    state: str
    people_ahead: int | None
    wait_min: int | None
    counter: str | None
    counter_name: str | None
    issued_at: datetime
    called_at: datetime | None
    remote: bool = False
    """Taken remotely (on the portal)."""
    remote_code: str | None = None
    """A remote ticket's check-in code, while its holder has still to check in."""
    latest_at: datetime | None = None
    """The latest time to be in the office and check in (see
    :meth:`~hub.engine.Engine.latest_arrival`)."""
    checked_in: bool = False
    """A remote ticket whose holder has checked in at a kiosk."""

    @property
    def live(self) -> bool:
        """Whether the ticket can still change (the page keeps listening)."""
        return TicketState(self.state).live


def ticket_view(queue: QueueService, ticket_id: str, lang: str) -> TicketView | None:
    """Ticket ``ticket_id`` for its holder, or ``None`` if there is no such ticket."""
    if not TICKET_ID_RE.fullmatch(ticket_id):
        return None
    status = queue.ticket_status(ticket_id)
    if status is None:
        return None
    return _view(queue, status, lang)


def _view(queue: QueueService, status: TicketStatus, lang: str) -> TicketView:
    ticket = status.ticket
    service = queue.service(ticket.service)
    estimate = status.estimate
    return TicketView(
        id=ticket.id,
        number=ticket.number,
        service=ticket.service,
        service_name=service.name(lang) if service else ticket.service,
        state=ticket.state.value,
        people_ahead=estimate.people_ahead if estimate else None,
        wait_min=minutes(estimate.estimated_wait_s) if estimate else None,
        counter=ticket.counter,
        counter_name=status.counter_name,
        issued_at=ticket.issued_at,
        called_at=ticket.called_at,
        remote=ticket.remote,
        remote_code=ticket.remote_code if ticket.checked_in_at is None else None,
        latest_at=status.latest_arrival,
        checked_in=ticket.checked_in_at is not None,
    )

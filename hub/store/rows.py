"""Row mapping: the model's objects as the store's rows, and back.

Writes take plain tuples in a table's column order, built straight from the model
objects (see :mod:`hub.store.writer`); reads turn result rows into model objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Final

from sqlalchemy import Row

from hub.model import (
    Action,
    Appointment,
    AppointmentState,
    Counter,
    Event,
    NumberBlock,
    OpeningHours,
    Priority,
    RemoteRules,
    Ticket,
    TicketState,
)
from hub.store.tables import BLOCKS, EVENTS, RECEIPTS, TICKETS


@dataclass(frozen=True, slots=True)
class Receipt:
    """The answer a device command got, kept so that it is applied only once."""

    sender: str
    """Who sent it, e.g. ``counter:3`` or ``kiosk:k1``: message ids are unique per sender."""
    msg_id: str
    at: datetime
    reply: bytes


TICKET_COLUMNS: Final = tuple(column.name for column in TICKETS.c)
"""The tickets table's columns, in its order."""

TICKET_CHANGES: Final = (
    "service",
    "arrived_at",
    "state",
    "priority",
    "lang",
    "counter_id",
    "calls",
    "called_at",
    "serving_at",
    "finished_at",
    "checked_in_at",
    "passes",
)
"""What a transition may change in a ticket's row (the rest is fixed at issue)."""

RECEIPT_COLUMNS: Final = tuple(column.name for column in RECEIPTS.c)
EVENT_COLUMNS: Final = tuple(column.name for column in EVENTS.c if column.name != "id")
"""The events table's columns but the generated id, in its order."""
BLOCK_COLUMNS: Final = tuple(column.name for column in BLOCKS.c)


def ticket_values(t: Ticket) -> dict[str, Any]:
    """A ticket's column values, by column name."""
    return {
        "id": t.id,
        "number_service": t.number_service,
        "business_day": t.business_day,
        "seq": t.seq,
        "number": t.number,
        "service": t.service,
        "issued_at": t.issued_at,
        "arrived_at": t.arrived_at,
        "state": t.state.value,
        "priority": None if t.priority is None else t.priority.value,
        "lang": t.lang,
        "counter_id": t.counter,
        "calls": t.calls,
        "called_at": t.called_at,
        "serving_at": t.serving_at,
        "finished_at": t.finished_at,
        "origin": t.origin,
        "appointment": t.appointment,
        "slot_at": t.slot_at,
        "remote_code": t.remote_code,
        "checked_in_at": t.checked_in_at,
        "passes": t.passes,
    }


def ticket_row(t: Ticket) -> tuple[Any, ...]:
    """``_INSERT_TICKET``'s parameters: every column, in the table's order."""
    values = ticket_values(t)
    return tuple(values[name] for name in TICKET_COLUMNS)


def ticket_changes(t: Ticket) -> tuple[Any, ...]:
    """``_UPDATE_TICKET``'s parameters: the :data:`TICKET_CHANGES`, then the key."""
    values = ticket_values(t)
    return (*(values[name] for name in TICKET_CHANGES), t.id)


def block_row(b: NumberBlock) -> tuple[Any, ...]:
    """``_INSERT_BLOCK``'s parameters: every column, in the table's order."""
    values = {
        "id": b.id,
        "device": b.device,
        "service": b.service,
        "prefix": b.prefix,
        "business_day": b.business_day,
        "first_seq": b.first_seq,
        "last_seq": b.last_seq,
        "reserved_at": b.reserved_at,
    }
    return tuple(values[name] for name in BLOCK_COLUMNS)


def counter_changes(c: Counter) -> tuple[Any, ...]:
    """``_UPDATE_COUNTER``'s parameters: state, current ticket, then the key."""
    return (c.state.value, c.current, c.id)


def event_row(e: Event) -> tuple[Any, ...]:
    """``_INSERT_EVENT``'s parameters: every column but the generated id, in order."""
    return (
        e.at,
        e.action.value,
        e.actor,
        e.ticket_id,
        e.counter_id,
        e.service,
        e.from_state,
        e.to_state,
        dict(e.detail),
    )


def hours_to_json(hours: OpeningHours) -> dict[str, Any]:
    """Serialize opening hours: ``{"always": bool, "days": {"0": [["08:00", "12:00"]]}}``."""
    return {
        "always": hours.always,
        "days": {
            str(day): [[_time_text(start), _time_text(end)] for start, end in spans]
            for day, spans in sorted(hours.days.items())
        },
    }


def hours_from_json(data: Mapping[str, Any]) -> OpeningHours:
    """Read opening hours written by :func:`hours_to_json`."""
    days = {
        int(day): tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in spans)
        for day, spans in data.get("days", {}).items()
    }
    return OpeningHours(days=days, always=bool(data.get("always", True)))


def remote_to_json(rules: RemoteRules) -> dict[str, Any]:
    """Serialize a service's remote tickets' rules."""
    return dataclasses.asdict(rules)


def remote_from_json(data: Mapping[str, Any] | None) -> RemoteRules:
    """Read the rules written by :func:`remote_to_json` (``None``: remote tickets off)."""
    if not data:
        return RemoteRules()
    known = {f.name for f in dataclasses.fields(RemoteRules)}
    return RemoteRules(**{k: v for k, v in data.items() if k in known})


def _time_text(value: time) -> str:
    if value.second or value.microsecond:
        return value.isoformat()
    return f"{value:%H:%M}"


def ticket_from_row(row: Row[Any]) -> Ticket:
    """A ticket from its row of ``tickets``."""
    return Ticket(
        id=row.id,
        number_service=row.number_service,
        business_day=row.business_day,
        seq=row.seq,
        number=row.number,
        service=row.service,
        issued_at=row.issued_at,
        arrived_at=row.arrived_at,
        state=TicketState(row.state),
        priority=None if row.priority is None else Priority(row.priority),
        lang=row.lang,
        counter=row.counter_id,
        calls=row.calls,
        called_at=row.called_at,
        serving_at=row.serving_at,
        finished_at=row.finished_at,
        origin=row.origin,
        appointment=row.appointment,
        slot_at=row.slot_at,
        remote_code=row.remote_code,
        checked_in_at=row.checked_in_at,
        passes=row.passes,
    )


def event_from_row(row: Row[Any]) -> Event:
    """An audit event from its row of ``events``."""
    return Event(
        at=row.at,
        action=Action(row.action),
        actor=row.actor,
        ticket_id=row.ticket_id,
        counter_id=row.counter_id,
        service=row.service,
        from_state=row.from_state,
        to_state=row.to_state,
        detail=dict(row.detail or {}),
    )


def block_from_row(row: Row[Any]) -> NumberBlock:
    """A number block from its row of ``number_blocks``."""
    return NumberBlock(
        id=row.id,
        device=row.device,
        service=row.service,
        prefix=row.prefix,
        business_day=row.business_day,
        first_seq=row.first_seq,
        last_seq=row.last_seq,
        reserved_at=row.reserved_at,
    )


def appointment_from_row(row: Row[Any]) -> Appointment:
    """An appointment from its row of ``appointments``."""
    return Appointment(
        id=row.id,
        code=row.code,
        service=row.service,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        name=row.name,
        email=row.email,
        lang=row.lang,
        state=AppointmentState(row.state),
        created_at=row.created_at,
        hold_until=row.hold_until,
    )

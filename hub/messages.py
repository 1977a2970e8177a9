"""The queue as the protocol's messages: the calls a change made, a service's state.

The bridge publishes them on MQTT and the call board (the web display page) shows
them; both build them here, from the engine the service layer holds.
"""

from __future__ import annotations

from datetime import datetime

from hub.engine import Engine
from hub.model import Action, Change
from sync_agent import protocol as p

__all__ = ["CALL_ACTIONS", "calls_of", "queue_state"]

CALL_ACTIONS = frozenset({Action.CALL, Action.RECALL, Action.UNPARK})
"""Transitions that make the lobby call a ticket."""


def calls_of(change: Change, engine: Engine) -> list[p.Call]:
    """The ``calls`` messages of a change: one per ticket it called, recalled or unparked.

    ``engine`` is the queue after the change (it names the counters).
    """
    calls = []
    for event in change.events:
        if event.action in CALL_ACTIONS and event.ticket_id and event.counter_id:
            ticket = change.ticket(event.ticket_id)
            counter = engine.counters[event.counter_id]
            calls.append(
                p.Call(
                    ticket=ticket.number,
                    ticket_id=ticket.id,
                    counter=counter.id,
                    counter_name=counter.name,
                    service=ticket.service,
                    called_at=event.at,
                    recall=event.action is Action.RECALL,
                    calls=ticket.calls,
                    appointment=ticket.appointment is not None,
                    priority=ticket.priority is not None,
                    remote=ticket.remote,
                )
            )
    return calls


def queue_state(engine: Engine, code: str, now: datetime) -> p.QueueState:
    """Service ``code``'s retained ``queue/<service>`` state at ``now``."""
    service = engine.services[code]
    availability = engine.availability(code, now)
    return p.QueueState(
        service=code,
        prefix=service.prefix,
        names=dict(service.names),
        open=availability.issuing,
        opens_at=availability.opens_at,
        cut_off=availability.refused == "cut_off",
        hours=service.hours.describe(),
        waiting=engine.waiting_count(code),
        estimated_wait_s=engine.estimate_new(code).estimated_wait_s,
        issued_today=engine.issued_today(code),
        daily_limit=service.daily_limit,
        open_counters=len(engine.open_counters(code)),
        at=now,
        priority_allowed=service.priority_allowed,
    )

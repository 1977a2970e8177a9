"""Priority: the service's switch for self-service, and a clerk raising a ticket's priority."""

from __future__ import annotations

import dataclasses

import pytest

from hub import demo_office
from hub.engine import Engine, QueueError
from hub.model import Action, Priority, TicketState
from tests.hub.test_engine import at, issue, make_engine, run


@pytest.fixture
def engine() -> Engine:
    return make_engine()


def _id(engine: Engine, number: str) -> str:
    return next(t.id for t in engine.tickets.values() if t.number == number)


def test_a_service_without_priority_refuses_a_priority_ticket() -> None:
    services = [
        dataclasses.replace(s, priority_allowed=s.code != "taxes") for s in demo_office.SERVICES
    ]
    engine = make_engine(services=services)
    with pytest.raises(QueueError) as refused:
        engine.issue("taxes", at(0), priority=Priority.AGE)
    assert refused.value.code == "priority_not_offered"
    assert issue(engine, "taxes", 0) == "A001"  # a ticket without priority still comes
    assert issue(engine, "waste", 0, priority=Priority.AGE) == "B001"


def test_a_clerk_raises_a_waiting_ticket_ahead_of_the_others(engine: Engine) -> None:
    issue(engine, "taxes", 0)  # A001
    issue(engine, "taxes", 1)  # A002
    change = run(
        engine, engine.prioritise(_id(engine, "A002"), Priority.DISABILITY, at(2), actor="web:jana")
    )
    (event,) = change.events
    assert event.action is Action.PRIORITISE
    assert event.actor == "web:jana"
    assert event.detail == {"priority": "disability", "was": None}
    assert event.from_state == event.to_state == "waiting"
    assert engine.estimate(engine.tickets[_id(engine, "A002")]).people_ahead == 0
    called = run(engine, engine.call_next("1", at(5))).subject
    assert called is not None
    assert called.number == "A002"
    assert called.priority is Priority.DISABILITY


def test_a_called_ticket_keeps_its_priority_when_transferred(engine: Engine) -> None:
    issue(engine, "waste", 0)  # B001
    issue(engine, "taxes", 1)  # A001
    run(engine, engine.call_next("1", at(2)))  # calls B001 (longest wait)
    b001 = _id(engine, "B001")
    run(engine, engine.prioritise(b001, Priority.AGE, at(3)))
    run(engine, engine.transfer("1", "taxes", at(4)))
    called = run(engine, engine.call_next("1", at(5))).subject
    assert called is not None
    assert called.id == b001


def test_priority_is_refused_for_finished_unknown_and_unchanged_tickets(engine: Engine) -> None:
    issue(engine, "taxes", 0)
    ticket_id = _id(engine, "A001")
    run(engine, engine.prioritise(ticket_id, Priority.AGE, at(1)))
    with pytest.raises(QueueError) as same:
        engine.prioritise(ticket_id, Priority.AGE, at(2))
    assert same.value.code == "same_priority"
    # The reason can be corrected.
    change = run(engine, engine.prioritise(ticket_id, Priority.WITH_CHILD, at(2)))
    assert change.events[0].detail == {"priority": "with_child", "was": "age"}
    run(engine, engine.call_next("1", at(3)))
    done = run(engine, engine.done("1", at(4))).subject
    assert done is not None
    assert done.state is TicketState.DONE
    for ticket in (ticket_id, "nope"):
        with pytest.raises(QueueError) as finished:
            engine.prioritise(ticket, Priority.PREGNANCY, at(5))
        assert finished.value.code == "unknown_ticket"

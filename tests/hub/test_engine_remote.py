"""Remote tickets in the engine: issue, check-in, passing over and expiry (docs/queue.md)."""

from __future__ import annotations

import dataclasses
from datetime import time

import pytest
from test_engine import at, make_engine, run
from test_engine_appointments import ONE_COUNTER, walk_in

from hub.engine import Engine, QueueError
from hub.model import (
    Action,
    OpeningHours,
    Priority,
    RemoteRules,
    Service,
    Ticket,
    TicketState,
)

RULES = RemoteRules(enabled=True, daily_quota=3, stop_before_close_s=3600, max_passes=1)
TAXES = Service(
    "taxes",
    "A",
    {"sk": "Dane"},
    hours=OpeningHours({0: ((time(8), time(12)),)}, always=False),
    remote=RULES,
)


def remote_engine(**rules: object) -> Engine:
    service = dataclasses.replace(TAXES, remote=dataclasses.replace(RULES, **rules))  # type: ignore[arg-type]
    return make_engine(services=(service,), counters=ONE_COUNTER)


def take(engine: Engine, minute: float, code: str) -> Ticket:
    change = run(engine, engine.issue_remote("taxes", at(minute), code=code, lang="en"))
    assert change.subject is not None
    return change.subject


def next_called(engine: Engine, minute: float) -> Ticket | None:
    counter = engine.counters["1"]
    if counter.current is not None:
        run(engine, engine.done("1", at(minute)))
    return run(engine, engine.call_next("1", at(minute))).subject


def refused(engine: Engine, minute: float, code: str = "123456") -> str:
    with pytest.raises(QueueError) as caught:
        engine.issue_remote("taxes", at(minute), code=code)
    return caught.value.code


def test_a_remote_ticket_takes_the_next_number_with_its_code_and_no_priority() -> None:
    engine = remote_engine()
    assert walk_in(engine, 0).number == "A001"
    ticket = take(engine, 1, "123456")
    assert (ticket.number, ticket.remote_code, ticket.priority) == ("A002", "123456", None)
    assert ticket.remote
    assert ticket.lang == "en"
    assert engine.remote_issued_today("taxes") == 1
    assert engine.issued_today("taxes") == 2
    assert engine.remote_ticket("123456") == ticket
    assert refused(engine, 2) == "duplicate_code"


def test_remote_tickets_stop_by_switch_quota_and_before_closing() -> None:
    assert refused(remote_engine(enabled=False), 0) == "remote_disabled"
    engine = remote_engine()
    for n in range(3):
        take(engine, n, f"00000{n}")
    assert refused(engine, 5) == "remote_quota"
    assert engine.remote_availability("taxes", at(5)).refused == "remote_quota"
    late = remote_engine()
    # Open 08:00-12:00: remote tickets stop an hour before, at 11:00.
    take(late, 179, "111111")
    assert refused(late, 181) == "remote_closed"
    assert late.remote_availability("taxes", at(181)).closes_at is not None
    assert walk_in(late, 181).number == "A002"  # walk-ins still come in


def test_an_unchecked_remote_ticket_is_passed_over_then_expires() -> None:
    engine = remote_engine(max_passes=1)
    remote = take(engine, 0, "123456")
    first, second = walk_in(engine, 1), walk_in(engine, 2)
    assert engine.latest_arrival(remote, at(3)) is not None
    change = engine.call_next("1", at(3))
    assert change.subject == first.evolve(
        state=TicketState.CALLED, counter="1", calls=1, called_at=at(3)
    )
    passed = change.ticket(remote.id)
    assert (passed.passes, passed.state) == (1, TicketState.WAITING)
    assert [e.action for e in change.events][-2:] == [Action.PASS, Action.CALL]
    run(engine, change)
    change = engine.done("1", at(4)) + engine.call_next("1", at(4))
    expired = change.ticket(remote.id)
    assert expired.state is TicketState.EXPIRED
    assert any(e.detail == {"reason": "not_checked_in"} for e in change.events)
    run(engine, change)
    assert change.subject is not None
    assert change.subject.id == second.id
    assert engine.remote_ticket("123456") is None
    with pytest.raises(QueueError) as gone:
        engine.check_in_remote("123456", at(5))
    assert gone.value.code == "unknown_booking"


def test_a_checked_in_remote_ticket_is_called_in_its_turn() -> None:
    engine = remote_engine()
    remote = take(engine, 0, "123456")
    walk_in(engine, 1)
    change = run(engine, engine.check_in_remote("123456", at(2), actor="kiosk:k1"))
    assert change.subject is not None
    assert change.subject.checked_in_at == at(2)
    assert change.events[0].action is Action.CHECK_IN
    assert engine.latest_arrival(change.subject, at(2)) is None
    with pytest.raises(QueueError) as again:
        engine.check_in_remote("123456", at(3))
    assert again.value.code == "checked_in"
    called = next_called(engine, 3)
    assert called is not None
    assert called.id == remote.id  # it arrived first


def test_without_the_presence_rule_a_remote_ticket_is_called_unchecked() -> None:
    engine = remote_engine(presence=False)
    remote = take(engine, 0, "123456")
    called = next_called(engine, 1)
    assert called is not None
    assert called.id == remote.id


def test_alone_in_the_queue_an_unchecked_ticket_still_uses_its_passes() -> None:
    engine = remote_engine(max_passes=0)
    remote = take(engine, 0, "123456")
    change = run(engine, engine.call_next("1", at(1)))
    assert change.subject is None
    assert change.ticket(remote.id).state is TicketState.EXPIRED


def test_turning_presence_off_releases_the_held_back_tickets() -> None:
    engine = remote_engine()
    remote = take(engine, 0, "123456")
    engine.put_service(
        dataclasses.replace(TAXES, remote=dataclasses.replace(RULES, presence=False))
    )
    called = next_called(engine, 1)
    assert called is not None
    assert called.id == remote.id


def test_a_remote_ticket_never_carries_priority_and_yields_to_priority_tickets() -> None:
    engine = remote_engine()
    remote = take(engine, 0, "123456")
    run(engine, engine.check_in_remote("123456", at(1)))
    urgent = run(engine, engine.issue("taxes", at(2), priority=Priority.AGE)).subject
    assert urgent is not None
    with pytest.raises(QueueError) as caught:
        engine.prioritise(remote.id, Priority.AGE, at(3))
    assert caught.value.code == "remote_ticket"
    assert engine.tickets[remote.id].priority is None
    called = [next_called(engine, 4), next_called(engine, 5)]
    assert [t.number if t else None for t in called] == [urgent.number, remote.number]

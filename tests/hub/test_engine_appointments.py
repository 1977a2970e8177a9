"""Appointments in the engine: check-in, fair merging with walk-ins (docs/queue.md)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from appointment_helpers import make_appointment
from test_engine import TZ, at, make_engine, run

from common.settings import QueueSettings, Settings, WebSettings
from hub.app import queue_policy
from hub.engine import Engine, QueueError, QueuePolicy, Snapshot
from hub.model import Action, AppointmentState, Counter, Priority, Ticket, TicketState

ONE_COUNTER = (Counter("1", "Okienko 1", ("taxes",)),)


def check_in(engine: Engine, slot_minute: float, minute: float, **kw: object) -> Ticket:
    """Check in a fresh booking of ``taxes`` at ``slot_minute`` at ``minute``."""
    booking = make_appointment("taxes", at(slot_minute), **kw)  # type: ignore[arg-type]
    change = run(engine, engine.check_in(booking, at(minute), lang="en", actor="kiosk:k1"))
    assert change.subject is not None
    return change.subject


def walk_in(engine: Engine, minute: float) -> Ticket:
    """Issue a walk-in's ticket of ``taxes`` at ``minute``."""
    change = run(engine, engine.issue("taxes", at(minute)))
    assert change.subject is not None
    return change.subject


def call(engine: Engine, minute: float, counter: str = "1") -> Ticket | None:
    change = run(engine, engine.call_next(counter, at(minute)))
    if change.subject is not None:
        run(engine, engine.done(counter, at(minute)))
    return change.subject


def test_check_in_issues_a_marked_ticket_from_the_services_numbers() -> None:
    engine = make_engine()
    assert walk_in(engine, 0).number == "A001"
    booking = make_appointment("taxes", at(30))
    change = engine.check_in(booking, at(20), lang="en", actor="kiosk:k1")
    ticket = change.subject
    assert ticket is not None
    assert (ticket.number, ticket.appointment, ticket.slot_at) == ("A002", booking.id, at(30))
    assert ticket.lang == "en"
    assert ticket.booked
    (event,) = change.events
    assert event.action is Action.ISSUE
    assert event.detail == {"appointment": booking.id}
    run(engine, change)
    assert engine.is_checked_in(booking.id)
    assert engine.issued_today("taxes") == 2


@pytest.mark.parametrize(
    ("state", "minute", "code"),
    [
        (AppointmentState.BOOKED, 30 - 31, "too_early"),
        (AppointmentState.BOOKED, 30 + 11, "too_late"),
        (AppointmentState.CANCELLED, 25, "cancelled"),
        (AppointmentState.HELD, 25, "unknown_booking"),
        (AppointmentState.NO_SHOW, 25, "too_late"),
    ],
)
def test_check_in_refusals(state: AppointmentState, minute: float, code: str) -> None:
    engine = make_engine()
    booking = make_appointment("taxes", at(30), state=state)
    with pytest.raises(QueueError) as refused:
        engine.check_in(booking, at(minute), lang="sk")
    assert refused.value.code == code


def test_the_check_in_window_edges_are_inclusive() -> None:
    engine = make_engine(QueuePolicy(checkin_early_s=600, checkin_grace_s=300))
    assert check_in(engine, 30, 20).booked
    assert check_in(engine, 30, 35).booked


def test_a_booking_is_checked_in_once_even_after_a_restart() -> None:
    engine = make_engine()
    booking = make_appointment("taxes", at(30))
    run(engine, engine.check_in(booking, at(25), lang="sk"))
    with pytest.raises(QueueError) as refused:
        engine.check_in(booking, at(26), lang="sk")
    assert refused.value.code == "checked_in"
    resumed = Engine.from_snapshot(
        Snapshot(day=engine.day, services=list(engine.services.values()), checked_in={booking.id}),
        timezone=engine.timezone,
    )
    with pytest.raises(QueueError) as again:
        resumed.check_in(booking, at(27), lang="sk")
    assert again.value.code == "checked_in"


def test_a_due_appointment_is_called_ahead_of_walk_ins() -> None:
    engine = make_engine(counters=ONE_COUNTER)
    first, second = walk_in(engine, 0), walk_in(engine, 1)
    booked = check_in(engine, 10, 2)
    # Before its slot (less the call window) it waits behind those who arrived before.
    called = call(engine, 5)
    assert called is not None
    assert called.id == first.id
    # From its slot less the 2-minute call window on, it goes first.
    called = call(engine, 8)
    assert called is not None
    assert called.id == booked.id
    called = call(engine, 9)
    assert called is not None
    assert called.id == second.id


def test_an_early_appointment_is_called_when_nobody_else_waits() -> None:
    engine = make_engine(counters=ONE_COUNTER)
    booked = check_in(engine, 30, 2)
    called = call(engine, 3)
    assert called is not None
    assert called.id == booked.id


def test_due_appointments_go_by_their_slot_and_before_priority() -> None:
    engine = make_engine(counters=ONE_COUNTER)
    run(engine, engine.issue("taxes", at(12), priority=Priority.AGE))
    later = check_in(engine, 15, 1)
    earlier = check_in(engine, 10, 2)
    assert [getattr(call(engine, 20), "id", None) for _ in range(2)] == [earlier.id, later.id]


def test_walk_ins_past_the_target_wait_get_their_share_of_calls() -> None:
    policy = QueuePolicy(walk_in_target_wait_s=600, appointment_share=0.5, share_window=4)
    engine = make_engine(policy, counters=ONE_COUNTER)
    walk_ins = [walk_in(engine, m) for m in range(4)]
    booked = [check_in(engine, 20, 15 + m) for m in range(4)]
    order = [call(engine, 30 + m) for m in range(8)]
    kinds = ["A" if t is not None and t.booked else "W" for t in order]
    # The walk-ins waited past 10 minutes: appointments get every other call.
    assert kinds == ["W", "A", "W", "A", "W", "A", "W", "A"]
    assert {t.id for t in order if t is not None} == {t.id for t in walk_ins + booked}


def test_appointments_are_not_capped_while_walk_ins_wait_within_target() -> None:
    policy = QueuePolicy(walk_in_target_wait_s=600, appointment_share=0.5)
    engine = make_engine(policy, counters=ONE_COUNTER)
    walk_in(engine, 19)
    booked = [check_in(engine, 20, 15 + m) for m in range(3)]
    order = [call(engine, 21 + m) for m in range(3)]
    assert [t.id for t in order if t is not None] == [t.id for t in booked]


def test_a_transferred_appointment_waits_as_a_walk_in() -> None:
    engine = make_engine()
    early = run(engine, engine.issue("waste", at(3))).subject
    booked = check_in(engine, 10, 5)
    run(engine, engine.call_next("2", at(10)))
    moved = run(engine, engine.transfer("2", "waste", at(12))).subject
    assert moved is not None
    assert not moved.booked
    assert moved.appointment == booked.appointment
    called = run(engine, engine.call_next("3", at(13))).subject
    assert early is not None
    assert called is not None
    assert called.id == early.id


def test_a_called_appointment_follows_the_normal_no_show_path() -> None:
    engine = make_engine(counters=ONE_COUNTER)
    booked = check_in(engine, 10, 5)
    run(engine, engine.call_next("1", at(10)))
    finished = run(engine, engine.no_show("1", at(11))).subject
    assert finished is not None
    assert finished.id == booked.id
    assert finished.state is TicketState.NO_SHOW


def test_the_day_rollover_forgets_checked_in_bookings() -> None:
    engine = make_engine()
    booked = check_in(engine, 10, 5)
    change = engine.roll_over(at(24 * 60))
    assert change is not None
    run(engine, change)
    assert not engine.is_checked_in(booked.appointment or "")


def test_only_earlier_slots_are_ahead_of_a_booked_ticket() -> None:
    engine = make_engine(counters=ONE_COUNTER)
    walk_in(engine, 0)
    later = check_in(engine, 30, 1)
    earlier = check_in(engine, 20, 2)
    assert engine.estimate(earlier).people_ahead == 0
    assert engine.estimate(later).people_ahead == 1
    # A walk-in who comes after a slot started waits behind that appointment.
    assert engine.estimate(walk_in(engine, 25)).people_ahead == 2
    assert engine.estimate_new("taxes").people_ahead == 4


def test_checking_in_needs_the_same_business_day() -> None:
    engine = make_engine(QueuePolicy(checkin_early_s=24 * 3600))
    booking = make_appointment("taxes", at(24 * 60 + 5))
    with pytest.raises(QueueError) as refused:
        engine.check_in(booking, at(10), lang="sk")
    assert refused.value.code == "too_early"
    assert timedelta(0) < booking.starts_at - at(10)


def test_a_slot_just_after_midnight_opens_its_check_in_at_midnight() -> None:
    engine = make_engine()  # check-in opens 30 minutes before the slot
    midnight = datetime.combine(engine.day + timedelta(days=1), time.min, tzinfo=TZ)
    booking = make_appointment("taxes", midnight + timedelta(minutes=10))
    assert engine.check_in_opens(booking.starts_at) == midnight
    assert engine.check_in_opens(at(30)) == at(0)
    with pytest.raises(QueueError) as refused:
        engine.check_in(booking, midnight - timedelta(minutes=5), lang="sk")
    assert refused.value.code == "too_early"
    assert f"opens at {midnight:%Y-%m-%d} 00:00" in refused.value.message


def test_the_policy_comes_from_the_queue_and_web_settings() -> None:
    settings = Settings(
        role="hub",
        queue=QueueSettings(
            checkin_early_min=20,
            checkin_grace_min=5,
            appointment_call_window_min=1,
            appointment_share=0.25,
            appointment_share_window=8,
        ),
        web=WebSettings(target_wait_min=12),
    )
    policy = queue_policy(settings)
    assert (policy.checkin_early_s, policy.checkin_grace_s, policy.call_window_s) == (
        1200,
        300,
        60,
    )
    assert (policy.appointment_share, policy.share_window) == (0.25, 8)
    assert policy.walk_in_target_wait_s == 12 * 60

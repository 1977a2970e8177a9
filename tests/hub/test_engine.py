"""The queue engine's rules, one behaviour at a time (docs/queue.md)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest

from common.numbering import display_number
from hub import demo_office
from hub.engine import Engine, QueueError, QueuePolicy, Snapshot
from hub.model import (
    Action,
    Change,
    Counter,
    CounterState,
    OpeningHours,
    Priority,
    Service,
    TicketState,
)

TZ = ZoneInfo("Europe/Bratislava")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=TZ).astimezone(UTC)  # a Monday, 08:00 local


def make_engine(policy: QueuePolicy | None = None, **kwargs: object) -> Engine:
    ids = count(1)
    return Engine(
        timezone=TZ,
        policy=policy,
        services=kwargs.pop("services", demo_office.SERVICES),  # type: ignore[arg-type]
        counters=kwargs.pop("counters", demo_office.COUNTERS),  # type: ignore[arg-type]
        day=T0.astimezone(TZ).date(),
        new_id=lambda: f"t{next(ids):04d}",
    )


def run(engine: Engine, change: Change) -> Change:
    """Apply a decided change, as the service layer does after writing it."""
    engine.apply(change)
    return change


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def engine() -> Engine:
    return make_engine()


def issue(engine: Engine, service: str, minute: float, **kw: object) -> str:
    change = run(engine, engine.issue(service, at(minute), **kw))  # type: ignore[arg-type]
    assert change.subject is not None
    return change.subject.number


def test_numbers_count_per_service_and_start_at_001(engine: Engine) -> None:
    assert [issue(engine, "taxes", m) for m in range(3)] == ["A001", "A002", "A003"]
    assert issue(engine, "waste", 4) == "B001"
    assert engine.issued_today("taxes") == 3


def test_display_number_wraps_after_999() -> None:
    assert display_number("A", 999) == "A999"
    assert display_number("A", 1000) == "A001"


def test_wrap_skips_numbers_still_held_by_live_tickets() -> None:
    engine = make_engine()
    held = run(engine, engine.issue("taxes", at(0))).subject
    assert held is not None
    # The same office after a restart, 999 numbers later, with A001 still waiting.
    snapshot = Snapshot(
        day=engine.day,
        services=list(demo_office.SERVICES),
        counters=list(demo_office.COUNTERS),
        tickets=[held],
        last_seq={"taxes": 999},
        issued={"taxes": 999},
    )
    resumed = Engine.from_snapshot(snapshot, timezone=TZ)
    assert issue(resumed, "taxes", 1) == "A002"
    assert issue(resumed, "taxes", 2) == "A003"


def test_issue_refuses_closed_service_outside_hours_and_over_limit() -> None:
    services = (
        Service("a", "A", {"sk": "A"}, open=False),
        Service(
            "b",
            "B",
            {"sk": "B"},
            hours=OpeningHours({0: ((time(9), time(12)),)}, always=False),
        ),
        Service("c", "C", {"sk": "C"}, daily_limit=1),
    )
    engine = make_engine(services=services, counters=())
    with pytest.raises(QueueError) as closed:
        engine.issue("a", at(0))
    assert closed.value.code == "service_closed"
    with pytest.raises(QueueError) as hours:
        engine.issue("b", at(0))  # 08:00, opens at 09:00
    assert hours.value.code == "outside_hours"
    assert "Mon 09:00-12:00" in hours.value.message
    assert issue(engine, "b", 61) == "B001"
    issue(engine, "c", 0)
    with pytest.raises(QueueError) as limit:
        engine.issue("c", at(1))
    assert limit.value.code == "daily_limit"
    with pytest.raises(QueueError) as unknown:
        engine.issue("nope", at(1))
    assert unknown.value.code == "unknown_service"


def test_next_calls_priority_first_then_longest_wait(engine: Engine) -> None:
    issue(engine, "taxes", 0)  # A001
    issue(engine, "waste", 1)  # B001
    issue(engine, "taxes", 2, priority=Priority.PREGNANCY)  # A002
    called = [run(engine, engine.call_next("1", at(10))).subject for _ in range(3)]
    assert [t.number for t in called if t] == ["A002", "A001", "B001"]


def test_service_weight_lets_a_shorter_wait_go_first() -> None:
    services = (
        Service("a", "A", {"sk": "A"}),
        Service("b", "B", {"sk": "B"}, weight=3.0),
    )
    engine = make_engine(services=services, counters=(Counter("1", "1", ("a", "b")),))
    issue(engine, "a", 0)  # waits 10 min at weight 1
    issue(engine, "b", 6)  # waits 4 min at weight 3 = 12
    change = run(engine, engine.call_next("1", at(10)))
    assert change.subject is not None
    assert change.subject.number == "B001"


def test_next_only_calls_the_counters_services(engine: Engine) -> None:
    issue(engine, "info", 0)
    change = run(engine, engine.call_next("2", at(1)))  # counter 2 serves taxes only
    assert change.subject is None
    assert engine.counters["2"].state is CounterState.OPEN


def test_next_finishes_the_current_ticket_as_done(engine: Engine) -> None:
    issue(engine, "taxes", 0)
    issue(engine, "taxes", 1)
    first = run(engine, engine.call_next("2", at(2))).subject
    change = run(engine, engine.call_next("2", at(7)))
    assert first is not None
    assert [(e.action, e.ticket_id) for e in change.events] == [
        (Action.DONE, first.id),
        (Action.CALL, change.subject.id if change.subject else None),
    ]
    assert first.id not in engine.tickets
    assert engine.mean_service_time("taxes") == 300.0


def test_recall_counts_and_the_call_past_max_is_a_no_show() -> None:
    engine = make_engine(QueuePolicy(max_calls=2))
    issue(engine, "taxes", 0)
    run(engine, engine.call_next("2", at(1)))
    recall = run(engine, engine.recall("2", at(2)))
    assert recall.subject is not None
    assert recall.subject.calls == 2
    assert recall.events[0].action is Action.RECALL
    gone = run(engine, engine.recall("2", at(3)))
    assert gone.subject is not None
    assert gone.subject.state is TicketState.NO_SHOW
    assert gone.events[0].detail == {"auto": True}
    assert engine.counters["2"].current is None


def test_no_show_by_clerk_and_refused_once_serving(engine: Engine) -> None:
    issue(engine, "taxes", 0)
    issue(engine, "taxes", 1)
    run(engine, engine.call_next("2", at(2)))
    assert run(engine, engine.no_show("2", at(3))).subject.state is TicketState.NO_SHOW  # type: ignore[union-attr]
    run(engine, engine.call_next("2", at(4)))
    run(engine, engine.start("2", at(5)))
    with pytest.raises(QueueError) as refused:
        engine.no_show("2", at(6))
    assert refused.value.code == "invalid_transition"
    assert "serving" in refused.value.message


def test_actions_without_a_ticket_are_refused(engine: Engine) -> None:
    for action in (engine.recall, engine.done, engine.no_show, engine.park, engine.start):
        with pytest.raises(QueueError) as refused:
            action("1", at(0))
        assert refused.value.code == "no_ticket"
    with pytest.raises(QueueError) as unknown:
        engine.call_next("99", at(0))
    assert unknown.value.code == "unknown_counter"


def test_transfer_keeps_number_and_arrival(engine: Engine) -> None:
    issue(engine, "taxes", 0)  # A001 at 08:00
    issue(engine, "parking", 5)  # C001 at 08:05
    run(engine, engine.call_next("2", at(10)))
    moved = run(engine, engine.transfer("2", "parking", at(12))).subject
    assert moved is not None
    assert (moved.number, moved.service, moved.state) == ("A001", "parking", TicketState.WAITING)
    # It keeps its 08:00 arrival, so it goes before C001.
    assert run(engine, engine.call_next("4", at(13))).subject.number == "A001"  # type: ignore[union-attr]


def test_transfer_to_the_back_when_configured() -> None:
    engine = make_engine(QueuePolicy(transfer_keeps_arrival=False))
    issue(engine, "taxes", 0)
    issue(engine, "parking", 5)
    run(engine, engine.call_next("2", at(10)))
    run(engine, engine.transfer("2", "parking", at(12)))
    assert run(engine, engine.call_next("4", at(13))).subject.number == "C001"  # type: ignore[union-attr]
    run(engine, engine.call_next("4", at(14)))
    with pytest.raises(QueueError) as same:
        engine.transfer("4", "parking", at(15))
    assert same.value.code == "same_service"


def test_park_and_unpark(engine: Engine) -> None:
    issue(engine, "taxes", 0)
    ticket = run(engine, engine.call_next("2", at(1))).subject
    assert ticket is not None
    run(engine, engine.park("2", at(2)))
    assert engine.tickets[ticket.id].state is TicketState.PARKED
    assert engine.counters["2"].current is None
    back = run(engine, engine.unpark("1", ticket.id, at(9))).subject
    assert back is not None
    assert (back.state, back.counter, back.number) == (TicketState.CALLED, "1", "A001")
    with pytest.raises(QueueError) as busy:
        engine.unpark("1", ticket.id, at(10))
    assert busy.value.code == "counter_busy"


def test_pause_and_resume(engine: Engine) -> None:
    with pytest.raises(QueueError) as already:
        engine.pause("1", at(0))  # counters start the day paused
    assert already.value.code == "already_paused"
    run(engine, engine.resume("1", at(0)))
    issue(engine, "taxes", 1)
    run(engine, engine.call_next("1", at(2)))
    with pytest.raises(QueueError) as busy:
        engine.pause("1", at(3))
    assert busy.value.code == "counter_busy"
    run(engine, engine.done("1", at(4)))
    change = run(engine, engine.pause("1", at(5)))
    assert (change.events[0].action, change.events[0].to_state) == (Action.PAUSE, "paused")


def test_day_rollover_expires_leftovers_and_restarts_numbers(engine: Engine) -> None:
    issue(engine, "taxes", 0)
    run(engine, engine.call_next("2", at(1)))
    issue(engine, "taxes", 2)
    tomorrow = at(24 * 60)
    with pytest.raises(QueueError) as stale:
        engine.issue("taxes", tomorrow)
    assert stale.value.code == "day_changed"
    rollover = engine.roll_over(tomorrow)
    assert rollover is not None
    assert {t.state for t in rollover.tickets} == {TicketState.EXPIRED}
    assert len(rollover.events) == 2
    run(engine, rollover)
    assert engine.roll_over(tomorrow) is None
    assert engine.tickets == {}
    assert engine.counters["2"] == Counter("2", "Okienko 2", ("taxes",))
    assert issue(engine, "taxes", 24 * 60 + 1) == "A001"


def test_every_transition_has_an_audit_event(engine: Engine) -> None:
    change = engine.issue("taxes", at(0), actor="kiosk:k1")
    assert change.events[0].actor == "kiosk:k1"
    assert (change.events[0].from_state, change.events[0].to_state) == (None, "waiting")


def test_put_service_refuses_a_prefix_in_use(engine: Engine) -> None:
    with pytest.raises(QueueError) as dup:
        engine.put_service(Service("new", "A", {"sk": "Nová"}))
    assert dup.value.code == "duplicate_prefix"
    with pytest.raises(QueueError) as bad:
        engine.put_counter(Counter("9", "9", ("nope",)))
    assert bad.value.code == "unknown_service"


def test_estimate_from_recent_service_times_and_open_counters(engine: Engine) -> None:
    for m in range(4):
        issue(engine, "taxes", m)
    # Nobody serves yet: counters 1, 2 and 5 serve taxes, all paused → capacity 3.
    newest = run(engine, engine.issue("taxes", at(5))).subject
    assert newest is not None
    estimate = engine.estimate(newest)
    assert estimate.people_ahead == 4
    assert estimate.estimated_wait_s == round(4 * 420 / 3 + 210)
    # One counter opens and is busy: capacity 1, every visit so far took 10 min.
    run(engine, engine.call_next("2", at(6)))
    run(engine, engine.call_next("2", at(16)))
    estimate = engine.estimate(newest)
    assert estimate.people_ahead == 2
    assert estimate.estimated_wait_s == 2 * 600 + 300


def test_a_hub_restarted_after_midnight_expires_yesterdays_tickets(engine: Engine) -> None:
    issue(engine, "taxes", 0)
    ticket = run(engine, engine.call_next("2", at(1))).subject
    assert ticket is not None
    tomorrow = at(24 * 60)
    snapshot = Snapshot(
        day=tomorrow.astimezone(TZ).date(),
        services=list(demo_office.SERVICES),
        counters=list(engine.counters.values()),
        tickets=[ticket],
    )
    resumed = Engine.from_snapshot(snapshot, timezone=TZ)
    rollover = resumed.roll_over(tomorrow)
    assert rollover is not None
    assert [t.state for t in rollover.tickets] == [TicketState.EXPIRED]
    assert [c.current for c in rollover.counters] == [None]

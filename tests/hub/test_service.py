"""The service layer: engine, store and listeners kept in step, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.app import seed_demo
from hub.engine import QueueError
from hub.model import Action, Change, TicketState
from hub.service import QueueService
from hub.store import Store, StoreError, sqlite_url

TZ = ZoneInfo("Europe/Bratislava")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=TZ).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "hub.sqlite3")


def open_queue(url: str, clock: Clock) -> QueueService:
    store = Store(url)
    store.upgrade()
    return QueueService.open(store, timezone=TZ, clock=clock)


@pytest.fixture
def queue(db: str, clock: Clock) -> QueueService:
    queue = open_queue(db, clock)
    seed_demo(queue)
    yield queue
    queue.store.close()


def test_issue_tells_people_ahead_and_wait(queue: QueueService) -> None:
    first = queue.issue("taxes", actor="kiosk:k1")
    second = queue.issue("taxes", actor="kiosk:k1")
    assert (first.ticket.number, second.ticket.number) == ("A001", "A002")
    assert (first.estimate.people_ahead, second.estimate.people_ahead) == (0, 1)
    assert second.estimate.estimated_wait_s is not None
    assert second.estimate.estimated_wait_s > first.estimate.estimated_wait_s  # type: ignore[operator]
    [event] = queue.store.events(first.ticket.id)
    assert (event.action, event.actor, event.to_state) == (Action.ISSUE, "kiosk:k1", "waiting")


def test_listeners_hear_only_persisted_changes(queue: QueueService) -> None:
    heard: list[tuple[Change, object]] = []
    queue.subscribe(lambda change: heard.append((change, queue.store.ticket(change.tickets[0].id))))
    queue.issue("waste")
    queue.counter_action("1", "next", actor="counter:1")
    assert [change.events[-1].action for change, _ in heard] == [Action.ISSUE, Action.CALL]
    change, stored = heard[-1]
    assert stored == change.tickets[-1]


def test_counter_actions_by_name(queue: QueueService) -> None:
    queue.issue("taxes")
    called = queue.counter_action("2", "next").subject
    assert called is not None
    moved = queue.counter_action("2", "transfer", service="parking").subject
    assert moved is not None
    assert (moved.service, moved.state) == ("parking", TicketState.WAITING)
    with pytest.raises(QueueError) as missing:
        queue.counter_action("2", "transfer")
    assert missing.value.code == "missing_service"
    with pytest.raises(QueueError) as unknown:
        queue.counter_action("2", "dance")
    assert unknown.value.code == "unknown_action"


def test_parked_ticket_comes_back_with_next(queue: QueueService) -> None:
    queue.issue("taxes")
    ticket = queue.counter_action("2", "next").subject
    assert ticket is not None
    queue.counter_action("2", "park")
    back = queue.counter_action("1", "next", ticket_id=ticket.id).subject
    assert back is not None
    assert (back.number, back.counter, back.state) == ("A001", "1", TicketState.CALLED)


def test_restart_resumes_numbering_and_live_tickets(db: str, clock: Clock) -> None:
    queue = open_queue(db, clock)
    seed_demo(queue)
    queue.issue("taxes")
    queue.issue("taxes")
    queue.counter_action("2", "next")
    queue.store.close()

    again = open_queue(db, clock)
    assert again.issue("taxes").ticket.number == "A003"
    assert {t.number: t.state for t in again.engine.tickets.values()} == {
        "A001": TicketState.CALLED,
        "A002": TicketState.WAITING,
        "A003": TicketState.WAITING,
    }
    assert again.counter_action("2", "next").subject.number == "A002"  # type: ignore[union-attr]
    again.store.close()


def test_a_rival_writer_cannot_issue_the_same_number(db: str, clock: Clock) -> None:
    ours = open_queue(db, clock)
    seed_demo(ours)
    rival = open_queue(db, clock)  # a second hub process started by mistake
    assert rival.issue("taxes").ticket.number == "A001"
    with pytest.raises(StoreError) as conflict:
        ours.issue("taxes")
    assert "A001" in str(conflict.value)
    # The failed write changed nothing in memory, and the hub resynchronised.
    assert ours.issue("taxes").ticket.number == "A002"
    numbers = sorted(t.number for t in ours.engine.tickets.values())
    assert numbers == ["A001", "A002"]
    ours.store.close()
    rival.store.close()


def test_a_new_day_expires_leftovers_and_restarts_numbers(
    queue: QueueService, clock: Clock
) -> None:
    queue.issue("info")
    clock.now += timedelta(days=1)
    assert queue.issue("info").ticket.number == "D001"
    [expired] = [e for e in queue.store.events() if e.action is Action.EXPIRE]
    assert expired.to_state == "expired"


def test_catalog_changes_are_validated_before_they_are_stored(queue: QueueService) -> None:
    taxes = queue.engine.services["taxes"]
    clash = type(taxes)(code="new", prefix="A", names={"sk": "Nová"})
    with pytest.raises(QueueError):
        queue.save_service(clash)
    assert "new" not in {s.code for s in queue.store.services()}
    status = {s.service.code: s for s in queue.status()}
    assert set(status) == {"taxes", "waste", "parking", "info"}


def test_a_hub_restarted_after_midnight_starts_the_day_paused(db: str, clock: Clock) -> None:
    queue = open_queue(db, clock)
    seed_demo(queue)
    queue.issue("taxes")
    queue.counter_action("2", "next")
    queue.counter_action("2", "done")  # counter 2 is open and free at closing time
    queue.store.close()
    clock.now += timedelta(days=1)
    again = open_queue(db, clock)
    assert again.engine.counters["2"].state.value == "paused"
    assert again.issue("taxes").ticket.number == "A001"
    again.store.close()

"""The admin's closures kept by the store, and the calendar the service layer keeps current."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import inspect

from hub.app import seed_demo
from hub.calendar import Closure
from hub.model import Change, OpeningHours, Service
from hub.service import QueueError, QueueService
from hub.store import HEAD_REVISION, Store, sqlite_url

TZ = ZoneInfo("Europe/Bratislava")
MONDAY = date(2026, 3, 2)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.now = at.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


# -- the store ---------------------------------------------------------------------


def test_closures_are_kept_and_listed_by_day(store: Store) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    later = Closure(MONDAY + timedelta(days=7), reason="Inventúra", id="b" * 32)
    partial = Closure(
        MONDAY, time(10), time(12, 30), "Školenie", services=("taxes", "waste"), id="a" * 32
    )
    past = Closure(MONDAY - timedelta(days=3), id="c" * 32)
    for closure in (later, partial, past):
        store.add_closure(closure, at=at)
    assert store.closures() == [past, partial, later]
    assert store.closures(since=MONDAY) == [partial, later]
    assert store.delete_closure(partial.id)
    assert not store.delete_closure(partial.id)
    assert store.closures(since=MONDAY) == [later]


def test_the_closures_migration_goes_down_and_up(store: Store) -> None:
    store.add_closure(Closure(MONDAY, id="a" * 32), at=datetime(2026, 3, 1, tzinfo=UTC))
    store.downgrade("0006_appointments")
    with store.db.connect() as conn:
        assert "closures" not in inspect(conn).get_table_names()
    store.upgrade()
    assert store.revision() == HEAD_REVISION
    assert store.closures() == []


# -- the service layer ---------------------------------------------------------------


@pytest.fixture
def queue(tmp_path: Path) -> QueueService:
    store = Store(sqlite_url(tmp_path / "hub.sqlite3"))
    store.upgrade()
    queue = QueueService.open(
        store, timezone=TZ, clock=Clock(local(MONDAY, 9)), country="SK", holiday_lang="sk"
    )
    seed_demo(queue)
    yield queue
    store.close()


def heard(queue: QueueService) -> list[Change]:
    changes: list[Change] = []
    queue.subscribe(changes.append)
    return changes


def test_a_closure_stops_issuing_and_says_when_it_opens(queue: QueueService) -> None:
    changes = heard(queue)
    closure = queue.add_closure(Closure(MONDAY, end=time(11), reason="Porada", services=("taxes",)))
    assert closure.id
    assert changes, "the devices hear that the closures changed"
    with pytest.raises(QueueError) as refused:
        queue.issue("taxes")
    assert refused.value.code == "outside_hours"
    status = {s.service.code: s for s in queue.status()}
    assert status["taxes"].availability.opens_at == local(MONDAY, 11)
    assert status["waste"].availability.issuing
    assert queue.closures() == [closure]
    assert queue.calendar.closures == (closure,)
    assert queue.remove_closure(closure.id)
    assert not queue.remove_closure(closure.id)
    assert queue.issue("taxes").ticket.number == "A001"


def test_closures_survive_a_restart(queue: QueueService) -> None:
    queue.add_closure(Closure(MONDAY, reason="Sťahovanie"))
    again = QueueService.open(queue.store, timezone=TZ, clock=queue.clock, country="SK")
    with pytest.raises(QueueError) as refused:
        again.issue("info")
    assert refused.value.code == "outside_hours"


@pytest.mark.parametrize(
    ("closure", "code"),
    [
        (Closure(MONDAY - timedelta(days=1)), "invalid_closure"),
        (Closure(MONDAY + timedelta(days=800)), "invalid_closure"),
        (Closure(MONDAY, time(12), time(11)), "invalid_closure"),
        (Closure(MONDAY, time(12), time(12)), "invalid_closure"),
        (Closure(MONDAY, reason="x" * 201), "invalid_closure"),
        (Closure(MONDAY, services=("nope",)), "unknown_service"),
    ],
)
def test_a_closure_that_makes_no_sense_is_refused(
    queue: QueueService, closure: Closure, code: str
) -> None:
    with pytest.raises(QueueError) as refused:
        queue.add_closure(closure)
    assert refused.value.code == code
    assert queue.closures() == []


def test_holidays_of_the_new_year_arrive_at_the_rollover(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path / "hub.sqlite3"))
    store.upgrade()
    clock = Clock(local(date(2026, 12, 30), 9))
    queue = QueueService.open(store, timezone=TZ, clock=clock, country="SK")
    # This year's and the next: enough for the next opening across New Year.
    assert {date(2026, 12, 24), date(2027, 1, 1)} <= queue.calendar.holidays.keys()
    assert date(2028, 1, 1) not in queue.calendar.holidays
    clock.now = local(date(2027, 1, 2), 9).astimezone(UTC)
    assert queue.roll_over() is not None
    assert date(2028, 1, 1) in queue.calendar.holidays
    assert date(2026, 12, 24) not in queue.calendar.holidays
    store.close()


def test_listeners_hear_when_a_service_closes_as_time_passes(queue: QueueService) -> None:
    svc = queue.service("taxes")
    assert svc is not None
    hours = OpeningHours({0: ((time(8), time(12)),)}, always=False)
    queue.save_service(Service(svc.code, svc.prefix, dict(svc.names), hours=hours))
    queue.roll_over()
    changes = heard(queue)
    queue.roll_over()
    assert changes == []  # nothing changed
    queue.clock.now = local(MONDAY, 12).astimezone(UTC)  # type: ignore[attr-defined]
    queue.roll_over()
    assert changes == [Change()]
    assert queue.availability("taxes").opens_at == local(MONDAY + timedelta(days=7), 8)

"""Tests of bookable slots and bookings (hub.appointments) on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from hub.appointments import (
    AppointmentBook,
    BookingError,
    BookingRules,
    Contact,
    expire_holds,
    forget_contacts,
    parse_seats,
)
from hub.calendar import Closure, OfficeCalendar
from hub.engine import Engine
from hub.model import AppointmentState, OpeningHours, Service
from hub.service import QueueService
from hub.store import Store, metadata

TZ = ZoneInfo("Europe/Bratislava")
MONDAY = date(2026, 3, 2)
HOURS = OpeningHours(
    days={0: ((time(8), time(12)), (time(13), time(15))), 1: ((time(8), time(12)),)},
    always=False,
)
TAXES = Service("taxes", "A", {"sk": "Dane"}, hours=HOURS)
RULES = BookingRules(
    "taxes",
    enabled=True,
    slot_min=30,
    seats=1,
    seats_by_hour={(0, 8): 2, (0, 14): 0},
    horizon_days=14,
    cancel_before_min=60,
    hold_min=10,
)
ANNA = Contact("Anna N.", "anna@example.org", "sk")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


def open_book(
    store: Store, clock: Clock, calendar: OfficeCalendar | None = None, **limits: int
) -> AppointmentBook:
    engine = Engine.from_snapshot(store.load_snapshot(MONDAY, 20), timezone=TZ, calendar=calendar)
    queue = QueueService(store, engine, clock=clock)
    options = {"per_address": 4, "per_email": 2} | limits
    return AppointmentBook(queue, **options)


@pytest.fixture
def clock() -> Clock:
    return Clock(local(MONDAY - timedelta(days=3), 9))  # the Friday before


@pytest.fixture
def book(store: Store, clock: Clock) -> AppointmentBook:
    store.save_service(TAXES)
    made = open_book(store, clock)
    made.save_rules(RULES)
    return made


# -- rules -------------------------------------------------------------------------


def test_seat_table_is_read_and_described_back() -> None:
    table = parse_seats("Mon 08-10 3; tue-thu 13-14 2\nSun 23-24 0")
    assert table == {
        (0, 8): 3,
        (0, 9): 3,
        (1, 13): 2,
        (2, 13): 2,
        (3, 13): 2,
        (6, 23): 0,
    }
    rules = BookingRules("x", seats_by_hour=table)
    assert parse_seats(rules.describe_seats()) == table


@pytest.mark.parametrize(
    "text",
    ["Mon 08-10", "Xyz 08-10 2", "Fri-Mon 08-10 2", "Mon 10-08 2", "Mon 08-25 2", "Mon 8-9 99"],
)
def test_bad_seat_tables_are_refused(text: str) -> None:
    with pytest.raises(BookingError) as caught:
        parse_seats(text)
    assert caught.value.code == "invalid"


@pytest.mark.parametrize(
    "changes",
    [
        {"slot_min": 2},
        {"slot_min": 500},
        {"seats": -1},
        {"horizon_days": 400},
        {"hold_min": 0},
        {"cancel_before_min": -5},
        {"seats_by_hour": {(7, 8): 1}},
    ],
)
def test_bad_rules_are_refused(book: AppointmentBook, changes: dict[str, object]) -> None:
    with pytest.raises(BookingError) as caught:
        book.save_rules(BookingRules("taxes", **changes))  # type: ignore[arg-type]
    assert caught.value.code == "invalid"


def test_rules_round_trip_and_unknown_service(store: Store, book: AppointmentBook) -> None:
    assert book.rules("taxes") == RULES
    assert open_book(store, book.queue.clock).rules("taxes") == RULES  # type: ignore[arg-type]
    assert book.bookable() == ["taxes"]
    with pytest.raises(BookingError) as caught:
        book.save_rules(BookingRules("nope", enabled=True))
    assert caught.value.code == "unknown_service"


# -- slots -------------------------------------------------------------------------


def test_open_spans_are_cut_into_slots_with_seats_by_hour(book: AppointmentBook) -> None:
    slots = book.slots("taxes", MONDAY)
    starts = [s.starts_at.astimezone(TZ).strftime("%H:%M") for s in slots]
    # 08:00-12:00 and 13:00-15:00 in 30 minutes; 14:00-15:00 has no seat.
    morning = ["08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    assert starts == [*morning, "13:00", "13:30"]
    assert [s.seats for s in slots[:3]] == [2, 2, 1]
    assert all(s.free == s.seats for s in slots)
    assert slots[0].ends_at - slots[0].starts_at == timedelta(minutes=30)


def test_holidays_and_closures_remove_slots(store: Store, clock: Clock) -> None:
    store.save_service(TAXES)
    calendar = OfficeCalendar(
        holidays={MONDAY + timedelta(days=7): "Holiday"},
        closures=(Closure(MONDAY, time(9), time(11), "Training"),),
    )
    book = open_book(store, clock, calendar)
    book.save_rules(RULES)
    starts = [s.starts_at.astimezone(TZ).strftime("%H:%M") for s in book.slots("taxes", MONDAY)]
    assert starts == ["08:00", "08:30", "11:00", "11:30", "13:00", "13:30"]
    assert book.slots("taxes", MONDAY + timedelta(days=7)) == []


def test_days_outside_the_window_and_services_without_booking_are_refused(
    book: AppointmentBook, clock: Clock
) -> None:
    today = clock.now.date()
    for day in (today - timedelta(days=1), today + timedelta(days=15)):
        with pytest.raises(BookingError) as caught:
            book.slots("taxes", day)
        assert caught.value.code == "out_of_range"
    assert book.slots("taxes", today + timedelta(days=15), admin=True) == []  # a Saturday
    with pytest.raises(BookingError) as unknown:
        book.slots("nope", MONDAY)
    assert unknown.value.code == "unknown_service"
    book.save_rules(BookingRules("taxes", enabled=False))
    with pytest.raises(BookingError) as off:
        book.slots("taxes", MONDAY)
    assert off.value.code == "not_bookable"


def test_the_days_clocks_change_have_each_slot_once(store: Store, clock: Clock) -> None:
    store.save_service(Service("taxes", "A", {"sk": "Dane"}))  # open always
    book = open_book(store, clock)
    book.save_rules(replace(RULES, seats_by_hour={}, horizon_days=365))
    for day, hours in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25)):
        slots = book.slots("taxes", day)
        starts = [s.starts_at for s in slots]
        assert len(starts) == len(set(starts)) == hours * 2
        assert all(b.starts_at == a.ends_at for a, b in itertools.pairwise(slots))


def test_slots_that_began_are_not_offered(book: AppointmentBook, clock: Clock) -> None:
    clock.now = local(MONDAY, 11, 10)
    starts = [s.starts_at.astimezone(TZ).strftime("%H:%M") for s in book.slots("taxes", MONDAY)]
    assert starts == ["11:30", "13:00", "13:30"]


# -- booking -----------------------------------------------------------------------


def test_book_cancel_and_the_seat_is_free_again(book: AppointmentBook) -> None:
    at = local(MONDAY, 9)
    booked = book.book("taxes", at, ANNA, client="10.0.0.1")
    assert booked.state is AppointmentState.BOOKED
    assert len(booked.code) == 8
    assert booked.code.isdigit()
    assert book.find(booked.code) == booked
    with pytest.raises(BookingError) as full:
        book.book("taxes", at, Contact("Bob"), client="10.0.0.2")
    assert full.value.code == "slot_full"
    assert [a.code for a in book.day_bookings("taxes", MONDAY)] == [booked.code]
    assert book.cancel(booked.code).state is AppointmentState.CANCELLED
    assert book.day_bookings("taxes", MONDAY) == []
    again = book.book("taxes", at, Contact("Bob"), client="10.0.0.2")
    assert again.code != booked.code
    with pytest.raises(BookingError) as twice:
        book.cancel(booked.code)
    assert twice.value.code == "unknown_code"


def test_a_slot_with_two_seats_takes_two(book: AppointmentBook) -> None:
    at = local(MONDAY, 8)
    book.book("taxes", at, Contact("A"), client="a")
    book.book("taxes", at, Contact("B"), client="b")
    assert book.slots("taxes", MONDAY)[0].free == 0
    with pytest.raises(BookingError, match="taken"):
        book.book("taxes", at, Contact("C"), client="c")


def test_a_time_that_is_no_slot_is_refused(book: AppointmentBook) -> None:
    for at in (local(MONDAY, 9, 10), local(MONDAY, 14), local(MONDAY, 12, 30)):
        with pytest.raises(BookingError) as caught:
            book.book("taxes", at, ANNA, client="x")
        assert caught.value.code == "no_such_slot"
    with pytest.raises(BookingError):
        book.book("taxes", datetime(2026, 3, 2, 9), ANNA, client="x")  # naive


def test_a_hold_confirms_or_lapses_and_frees_its_seat(
    book: AppointmentBook, clock: Clock, store: Store
) -> None:
    at = local(MONDAY, 10)
    held = book.hold("taxes", at, Contact("", lang="uk"), client="x")
    assert held.state is AppointmentState.HELD
    assert held.hold_until == clock.now + timedelta(minutes=10)
    confirmed = book.confirm(held.code, Contact("Olena", None, "uk"))
    assert confirmed.state is AppointmentState.BOOKED
    assert book.find(held.code) == confirmed

    other = book.hold("taxes", local(MONDAY, 10, 30), Contact(""), client="x")
    clock.now += timedelta(minutes=11)
    assert book.slots("taxes", MONDAY)[5].free == 1  # a lapsed hold holds nothing
    with pytest.raises(BookingError) as lapsed:
        book.confirm(other.code, Contact("Late"))
    assert lapsed.value.code == "hold_lapsed"
    found = book.find(other.code)
    assert found is not None
    assert found.state is AppointmentState.CANCELLED
    assert expire_holds(store, clock.now) == 0
    third = book.hold("taxes", local(MONDAY, 11), Contact(""), client="y")
    clock.now += timedelta(minutes=11)
    assert expire_holds(store, clock.now) == 1
    lapsed_third = book.find(third.code)
    assert lapsed_third is not None
    assert lapsed_third.state is AppointmentState.CANCELLED


def test_a_lapsed_hold_gives_its_seat_to_the_next_booking(
    book: AppointmentBook, clock: Clock
) -> None:
    at = local(MONDAY, 9)  # one seat
    held = book.hold("taxes", at, Contact(""), client="x")
    with pytest.raises(BookingError, match="taken"):
        book.book("taxes", at, ANNA, client="y")
    clock.now += timedelta(minutes=10)
    booked = book.book("taxes", at, ANNA, client="y")
    assert booked.state is AppointmentState.BOOKED
    found = book.find(held.code)
    assert found is not None
    assert found.state is AppointmentState.CANCELLED


def test_cancel_and_move_respect_the_deadline(book: AppointmentBook, clock: Clock) -> None:
    booked = book.book("taxes", local(MONDAY, 9), ANNA, client="x")
    moved = book.move(booked.code, local(MONDAY, 13))
    assert moved.code == booked.code
    assert moved.starts_at == local(MONDAY, 13).astimezone(UTC)
    assert [s.free for s in book.slots("taxes", MONDAY) if s.starts_at == moved.starts_at] == [0]
    clock.now = local(MONDAY, 12, 30)  # 30 minutes before: past the 60-minute deadline
    for change in (
        lambda: book.cancel(booked.code),
        lambda: book.move(booked.code, local(MONDAY, 13, 30)),
    ):
        with pytest.raises(BookingError) as late:
            change()
        assert late.value.code == "too_late"
    assert book.cancel(booked.code, admin=True).state is AppointmentState.CANCELLED


def test_limits_per_address_and_per_email(store: Store, clock: Clock) -> None:
    store.save_service(TAXES)
    book = open_book(store, clock, per_address=2, per_email=1)
    book.save_rules(RULES)
    book.book("taxes", local(MONDAY, 9), ANNA, client="1.2.3.4")
    with pytest.raises(BookingError) as email:
        book.book(
            "taxes", local(MONDAY, 9, 30), Contact("Anna", "ANNA@example.org"), client="5.6.7.8"
        )
    assert email.value.code == "too_many_bookings"
    book.book("taxes", local(MONDAY, 10), Contact("B"), client="1.2.3.4")
    with pytest.raises(BookingError) as address:
        book.hold("taxes", local(MONDAY, 10, 30), Contact(""), client="1.2.3.4")
    assert address.value.code == "too_many_bookings"
    phoned = book.book("taxes", local(MONDAY, 10, 30), ANNA, client=None, admin=True)
    assert phoned.state is AppointmentState.BOOKED


@pytest.mark.parametrize(
    "contact",
    [
        Contact(""),
        Contact("x" * 81),
        Contact("Bad\x00name"),
        Contact("Anna", "not-an-address"),
        Contact("Anna", "a@b.c" + "c" * 260),
        Contact("Anna", None, "de"),
    ],
)
def test_bad_contacts_are_refused(book: AppointmentBook, contact: Contact) -> None:
    with pytest.raises(BookingError) as caught:
        book.book("taxes", local(MONDAY, 9), contact, client="x")
    assert caught.value.code == "invalid"


def test_codes_that_are_not_codes_find_nothing(book: AppointmentBook) -> None:
    for code in ("", "1234567", "123456789", "abcdefgh", "1234567\n", "' OR 1=1"):
        assert book.find(code) is None
        with pytest.raises(BookingError):
            book.cancel(code)


def test_contacts_are_forgotten_after_the_slot(book: AppointmentBook, store: Store) -> None:
    booked = book.book("taxes", local(MONDAY, 9), ANNA, client="1.2.3.4")
    assert forget_contacts(store, local(MONDAY, 9, 15)) == 0
    assert forget_contacts(store, local(MONDAY, 9, 31)) == 1
    found = book.find(booked.code)
    assert found is not None
    assert found.email is None
    assert found.name == "Anna N."


# -- concurrency -------------------------------------------------------------------


@pytest.fixture
def books(open_store: Callable[[], Store], clock: Clock) -> list[AppointmentBook]:
    """Three hub processes, as it were: each its own store and book on one database."""
    first = open_store()
    first.save_service(TAXES)
    made = [
        open_book(first, clock, per_address=1000),
        *(open_book(open_store(), clock, per_address=1000) for _ in range(2)),
    ]
    made[0].save_rules(RULES)
    return made


def test_no_seat_is_booked_twice_by_parallel_bookings(books: list[AppointmentBook]) -> None:
    at = local(MONDAY, 8)  # two seats
    workers = 12
    start = threading.Barrier(workers)

    def attempt(n: int) -> str:
        book = books[n % len(books)]
        start.wait(timeout=30)
        try:
            return book.book("taxes", at, Contact(f"C{n}"), client=f"c{n}").code
        except BookingError as exc:
            return exc.code

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(attempt, range(workers)))
    codes = [r for r in results if r.isdigit()]
    assert len(codes) == 2
    assert sorted(r for r in results if not r.isdigit()) == ["slot_full"] * (workers - 2)
    table = metadata.tables["appointments"]
    with books[0].store.db.connect() as conn:
        seats = conn.execute(select(table.c.seat).where(table.c.state == "booked")).scalars().all()
    assert sorted(seats) == [0, 1]


def test_parallel_bookings_of_a_busy_day_fill_every_seat_once(books: list[AppointmentBook]) -> None:
    slots = books[0].slots("taxes", MONDAY)
    seats = sum(s.seats for s in slots)
    workers = 8
    start = threading.Barrier(workers)

    def fill(n: int) -> int:
        book = books[n % len(books)]
        start.wait(timeout=30)
        got = 0
        for slot in slots:
            for _ in range(slot.seats):
                try:
                    book.book("taxes", slot.starts_at, Contact(f"W{n}"), client=f"w{n}")
                    got += 1
                except BookingError as exc:
                    assert exc.code == "slot_full"
        return got

    with ThreadPoolExecutor(workers) as pool:
        assert sum(pool.map(fill, range(workers))) == seats
    assert all(s.free == 0 for s in books[1].slots("taxes", MONDAY))
    assert len(books[2].day_bookings("taxes", MONDAY)) == seats

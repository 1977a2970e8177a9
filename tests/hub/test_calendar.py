"""The office calendar: public holidays, the admin's closures, and the cut-off (docs/queue.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from hub.calendar import Closure, OfficeCalendar, public_holidays
from hub.engine import Engine, QueueError, QueuePolicy
from hub.model import Counter, OpeningHours, Service

TZ = ZoneInfo("Europe/Bratislava")

WEEKDAYS = OpeningHours(
    {d: ((time(8), time(12)), (time(13), time(15))) for d in range(5)}, always=False
)
"""Mon-Fri 08:00-12:00 and 13:00-15:00."""

NIGHTS = OpeningHours(
    {0: ((time(20), time.max),), 1: ((time.min, time(2)), (time(20), time.max))},
    always=False,
)
"""Mon 20:00 to Tue 02:00, and Tue from 20:00 to midnight."""


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


# -- public holidays ---------------------------------------------------------------


def test_slovak_holidays_are_named_in_slovak() -> None:
    found = public_holidays("SK", [2026], "sk")
    assert found[date(2026, 8, 29)] == "Výročie Slovenského národného povstania"
    assert date(2026, 12, 24) in found
    assert date(2026, 7, 6) not in found  # a Czech holiday


def test_czech_holidays_differ_from_slovak_ones() -> None:
    found = public_holidays("CZ", [2026], "cs")
    assert date(2026, 7, 6) in found  # Jan Hus
    assert date(2026, 8, 29) not in found
    assert "Nový rok" in found[date(2026, 1, 1)]


def test_ukrainian_holidays_follow_the_law_of_each_year() -> None:
    before = public_holidays("UA", [2021], "uk")
    assert before[date(2021, 1, 7)] == "Різдво Христове"
    # Under martial law (since 2022) Ukraine keeps no public holidays off work.
    assert public_holidays("UA", [2026], "uk") == {}


def test_holidays_of_several_years_and_a_language_the_package_lacks() -> None:
    found = public_holidays("SK", [2026, 2027], "xx")
    assert date(2026, 1, 1) in found
    assert date(2027, 1, 1) in found


def test_a_holiday_closes_a_service_with_hours_but_not_one_open_always() -> None:
    calendar = OfficeCalendar(holidays=public_holidays("SK", [2026]))
    good_friday = date(2026, 4, 3)
    assert calendar.open_spans(WEEKDAYS, good_friday) == []
    assert not calendar.is_open(WEEKDAYS, local(good_friday, 9))
    assert calendar.is_open(OpeningHours(), local(good_friday, 9))


# -- closures ------------------------------------------------------------------------


def test_a_partial_closure_cuts_a_hole_in_the_day() -> None:
    monday = date(2026, 3, 2)
    calendar = OfficeCalendar(closures=(Closure(monday, time(10), time(13, 30)),))
    assert calendar.open_spans(WEEKDAYS, monday) == [
        (time(8), time(10)),
        (time(13, 30), time(15)),
    ]
    assert calendar.is_open(WEEKDAYS, local(monday, 9, 59))
    assert not calendar.is_open(WEEKDAYS, local(monday, 10))
    assert calendar.next_opening(WEEKDAYS, local(monday, 10)) == local(monday, 13, 30)


def test_the_calendar_says_why_it_closes() -> None:
    monday = date(2026, 3, 2)
    calendar = OfficeCalendar(
        holidays={monday: "Sviatok"},
        closures=(
            Closure(monday, time(10), time(11), "Porada", ("taxes",)),
            Closure(date(2026, 3, 3), time(10), time(11)),
        ),
    )
    assert calendar.closed_for(WEEKDAYS, local(monday, 9)) == "Sviatok"
    # A service open always keeps holidays, but not closures.
    assert calendar.closed_for(OpeningHours(), local(monday, 9), "taxes") is None
    assert calendar.closed_for(OpeningHours(), local(monday, 10, 30), "taxes") == "Porada"
    assert calendar.closed_for(OpeningHours(), local(monday, 10, 30), "waste") is None
    assert calendar.closed_for(WEEKDAYS, local(date(2026, 3, 3), 10, 30)) is None  # no reason


def test_a_closure_open_ended_on_one_side_runs_to_the_edge_of_the_day() -> None:
    monday = date(2026, 3, 2)
    afternoon = OfficeCalendar(closures=(Closure(monday, start=time(11)),))
    assert afternoon.open_spans(WEEKDAYS, monday) == [(time(8), time(11))]
    morning = OfficeCalendar(closures=(Closure(monday, end=time(9)),))
    assert morning.open_spans(WEEKDAYS, monday)[0] == (time(9), time(12))


def test_a_closure_of_some_services_leaves_the_others_open() -> None:
    monday = date(2026, 3, 2)
    calendar = OfficeCalendar(closures=(Closure(monday, services=("taxes",)),))
    assert calendar.open_spans(WEEKDAYS, monday, "taxes") == []
    assert calendar.open_spans(WEEKDAYS, monday, "waste") != []
    # A whole-day closure closes even a service open always.
    office = OfficeCalendar(closures=(Closure(monday),))
    assert office.open_spans(OpeningHours(), monday) == []


# -- the next opening --------------------------------------------------------------


def test_next_opening_skips_the_weekend() -> None:
    friday = date(2026, 3, 6)
    assert OfficeCalendar().next_opening(WEEKDAYS, local(friday, 16)) == local(date(2026, 3, 9), 8)


def test_next_opening_skips_holidays_and_closures() -> None:
    # Maundy Thursday 2026-04-02 closed by the admin, Good Friday and Easter Monday are
    # holidays: the office opens next on Tuesday.
    calendar = OfficeCalendar(
        holidays=public_holidays("SK", [2026]),
        closures=(Closure(date(2026, 4, 2), reason="Inventory"),),
    )
    wednesday = date(2026, 4, 1)
    assert calendar.next_opening(WEEKDAYS, local(wednesday, 15)) == local(date(2026, 4, 7), 8)


def test_next_opening_is_now_while_open_and_none_when_never() -> None:
    monday = date(2026, 3, 2)
    calendar = OfficeCalendar()
    assert calendar.next_opening(WEEKDAYS, local(monday, 9, 30)) == local(monday, 9, 30)
    assert calendar.next_opening(OpeningHours({}, always=False), local(monday, 9)) is None


# -- the end of the current opening -------------------------------------------------


def test_closing_is_the_end_of_the_current_span() -> None:
    monday = date(2026, 3, 2)
    calendar = OfficeCalendar()
    assert calendar.closing(WEEKDAYS, local(monday, 9)) == local(monday, 12)
    assert calendar.closing(WEEKDAYS, local(monday, 12, 30)) is None


def test_a_span_to_midnight_that_goes_on_the_next_day_is_one_opening() -> None:
    monday = date(2026, 3, 2)
    calendar = OfficeCalendar()
    assert calendar.closing(NIGHTS, local(monday, 23)) == local(date(2026, 3, 3), 2)
    # Tuesday's evening span runs to midnight and Wednesday does not go on.
    assert calendar.closing(NIGHTS, local(date(2026, 3, 3), 21)) == local(date(2026, 3, 4), 0)
    assert calendar.closing(OpeningHours(), local(monday, 9)) is None


# -- the cut-off -------------------------------------------------------------------


def make_engine(hours: OpeningHours, *, margin_min: int = 5) -> Engine:
    engine = Engine(
        timezone=TZ,
        policy=QueuePolicy(cut_off_margin_s=margin_min * 60),
        services=[Service("taxes", "A", {"sk": "Dane"}, hours=hours, default_service_time_s=600)],
        counters=[Counter("1", "Okienko 1", ("taxes",))],
        day=date(2026, 3, 2),
    )
    engine.apply(engine.resume("1", local(date(2026, 3, 2), 8).astimezone(UTC)))
    return engine


def fill(engine: Engine, people: int, at: datetime) -> None:
    for _ in range(people):
        engine.apply(engine.issue("taxes", at))


def test_a_service_stops_issuing_when_those_waiting_fill_the_time_to_closing() -> None:
    monday = date(2026, 3, 2)
    engine = make_engine(WEEKDAYS)
    fill(engine, 4, local(monday, 10, 30))
    engine.apply(engine.call_next("1", local(monday, 10, 30)))
    # One served, 3 waiting: a new ticket would be called in 3 × 10 + 5 minutes.
    assert engine.availability("taxes", local(monday, 11)).issuing
    fill(engine, 2, local(monday, 11))
    # 5 waiting: it would be called at 12:00, and the office closes then.
    late = engine.availability("taxes", local(monday, 11, 5))
    assert late.refused == "cut_off"
    assert late.closes_at == local(monday, 12)
    assert late.opens_at == local(monday, 13)
    with pytest.raises(QueueError) as refused:
        engine.issue("taxes", local(monday, 11, 5))
    assert refused.value.code == "cut_off"
    assert "12:00" in refused.value.message
    # After lunch the next span has room for them and more.
    assert engine.availability("taxes", local(monday, 13)).issuing


def test_an_empty_queue_is_cut_off_only_within_the_margin() -> None:
    monday = date(2026, 3, 2)
    engine = make_engine(WEEKDAYS, margin_min=5)
    assert engine.availability("taxes", local(monday, 14, 55)).issuing
    assert engine.availability("taxes", local(monday, 14, 56)).refused == "cut_off"
    assert engine.availability("taxes", local(monday, 14, 56)).opens_at == local(
        date(2026, 3, 3), 8
    )
    no_margin = make_engine(WEEKDAYS, margin_min=0)
    assert no_margin.availability("taxes", local(monday, 14, 59)).issuing


def test_no_cut_off_before_midnight_when_the_opening_goes_on() -> None:
    monday = date(2026, 3, 2)
    engine = make_engine(NIGHTS)
    fill(engine, 5, local(monday, 23))  # ~50 minutes of work, past midnight
    assert engine.availability("taxes", local(monday, 23, 1)).issuing
    engine.apply(engine.issue("taxes", local(monday, 23, 1)))


def test_a_service_open_always_is_never_cut_off() -> None:
    monday = date(2026, 3, 2)
    engine = make_engine(OpeningHours())
    fill(engine, 30, local(monday, 23, 50))
    assert engine.availability("taxes", local(monday, 23, 55)).issuing


def test_closed_services_say_when_they_open() -> None:
    saturday = date(2026, 3, 7)
    engine = make_engine(WEEKDAYS)
    engine.calendar = OfficeCalendar(closures=(Closure(date(2026, 3, 9), end=time(10)),))
    closed = engine.availability("taxes", local(saturday, 9))
    assert closed.refused == "outside_hours"
    assert closed.opens_at == local(date(2026, 3, 9), 10)
    with pytest.raises(QueueError) as refused:
        engine.issue("taxes", local(date(2026, 3, 2), 12, 30))
    assert refused.value.code == "outside_hours"
    assert "13:00" in refused.value.message


def test_the_admins_switch_gives_no_next_opening() -> None:
    engine = make_engine(WEEKDAYS)
    svc = engine.services["taxes"]
    engine.put_service(Service(svc.code, svc.prefix, dict(svc.names), hours=svc.hours, open=False))
    off = engine.availability("taxes", local(date(2026, 3, 2), 9))
    assert off.refused == "service_closed"
    assert off.opens_at is None

"""The city's statistics: a branch's figures, from the branches' logs as the city stores them.

Two branches' audit logs, made by hand and stored through the consumer's path
(:meth:`CityStore.store_batch`), and their figures worked out by hand beside them.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from city import stats
from city.store import CityStore
from hub.stats import Group
from sync_agent.city_protocol import HistoryBatch, HistoryEvent

pytestmark = pytest.mark.postgres

DAY = date(2026, 12, 7)
ZONE = ZoneInfo("Europe/Bratislava")  # UTC+1 in December: 08:00Z is the 09:00 hour
TARGET_S = 900


def at(hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return datetime(2026, 12, 7, int(hours), int(minutes), tzinfo=UTC)


def ticket_event(
    seq: int,
    when: str,
    action: str,
    ticket: str,
    service: str,
    to_state: str,
    *,
    number: str,
    counter: str | None = None,
    priority: str | None = None,
    day: date = DAY,
) -> HistoryEvent:
    """One row of a branch's log about a ticket, as its uplink sends it."""
    return HistoryEvent(
        seq=seq,
        at=at(when),
        action=action,
        actor="test",
        ticket_id=ticket,
        counter_id=counter,
        service=service,
        to_state=to_state,
        number=number,
        business_day=day,
        priority=priority,
    )


NORTH = [
    # n1: taxes, waits 10 min at c1, served 5 min.
    ticket_event(1, "08:00", "issue", "n1", "taxes", "waiting", number="A001"),
    # n2: taxes, waits 30 min (over the 15-minute target), does not come.
    ticket_event(2, "08:05", "issue", "n2", "taxes", "waiting", number="A002"),
    ticket_event(3, "08:10", "call", "n1", "taxes", "called", number="A001", counter="c1"),
    ticket_event(4, "08:15", "done", "n1", "taxes", "done", number="A001", counter="c1"),
    ticket_event(5, "08:35", "call", "n2", "taxes", "called", number="A002", counter="c1"),
    ticket_event(6, "08:40", "no_show", "n2", "taxes", "no_show", number="A002", counter="c1"),
    # n3: waste, waits 2 min at c2; 18 min at the counter, 6 of them parked: 12 min.
    ticket_event(7, "09:00", "issue", "n3", "waste", "waiting", number="B001"),
    ticket_event(8, "09:02", "call", "n3", "waste", "called", number="B001", counter="c2"),
    ticket_event(9, "09:04", "park", "n3", "waste", "parked", number="B001", counter="c2"),
    ticket_event(10, "09:10", "unpark", "n3", "waste", "called", number="B001", counter="c2"),
    ticket_event(11, "09:20", "done", "n3", "waste", "done", number="B001", counter="c2"),
    # A counter's pause: no ticket, no figure.
    HistoryEvent(seq=12, at=at("09:30"), action="pause", actor="test", counter_id="c1"),
    # n4: the next day, outside the range.
    ticket_event(
        13, "09:40", "issue", "n4", "taxes", "waiting", number="A001", day=date(2026, 12, 8)
    ),
]

SOUTH = [
    # s1: taxes, waits 20 min, sent on to waste, served there in 6 min.
    ticket_event(1, "08:00", "issue", "s1", "taxes", "waiting", number="A001"),
    # s2: waste with priority, waits 2 min, served 8 min.
    ticket_event(
        2, "08:10", "issue", "s2", "waste", "waiting", number="B001", priority="disability"
    ),
    ticket_event(
        3,
        "08:12",
        "call",
        "s2",
        "waste",
        "called",
        number="B001",
        counter="c2",
        priority="disability",
    ),
    ticket_event(4, "08:20", "call", "s1", "taxes", "called", number="A001", counter="c1"),
    ticket_event(
        5,
        "08:20",
        "done",
        "s2",
        "waste",
        "done",
        number="B001",
        counter="c2",
        priority="disability",
    ),
    ticket_event(6, "08:22", "transfer", "s1", "waste", "waiting", number="A001", counter="c1"),
    ticket_event(7, "08:30", "call", "s1", "waste", "called", number="A001", counter="c2"),
    ticket_event(8, "08:36", "done", "s1", "waste", "done", number="A001", counter="c2"),
]


@pytest.fixture
def two_branches(city_store: CityStore) -> CityStore:
    """Branches north and south with their logs stored as the consumer stores them."""
    for site, events in (("north", NORTH), ("south", SOUTH)):
        city_store.add_branch(site, name=site.title(), address=f"{site} street 1")
        stored = city_store.store_batch(
            site, HistoryBatch(site=site, first_available=1, events=events)
        )
        assert stored.stored == len(events)
    return city_store


def figures(group: Group) -> tuple[object, ...]:
    """A group's figures: tickets, served, no-shows, mean wait, mean service, target share."""
    return (
        group.tickets,
        group.served,
        group.no_shows,
        group.mean_wait_s,
        group.mean_service_s,
        group.within_target_share,
    )


def compute(store: CityStore, **options: object) -> stats.CityStatistics:
    return stats.compute(
        store.db,
        DAY,
        DAY,
        timezone=ZONE,
        target_wait_s=TARGET_S,
        **options,  # type: ignore[arg-type]
    )


def test_figures_across_branches_are_worked_out_by_hand(two_branches: CityStore) -> None:
    found = compute(two_branches)
    f = found.figures
    # Waits 600, 1800, 120 (north), 1200, 120 (south); visits 300, 720, 360, 480.
    assert figures(f.total) == (5, 4, 1, 768.0, 465.0, 0.6)
    assert {g.key: figures(g) for g in found.per_branch} == {
        "north": (3, 2, 1, 840.0, 510.0, 2 / 3),
        "south": (2, 2, 0, 660.0, 420.0, 0.5),
    }
    # s1 waited for taxes and ended in waste: its wait counts in taxes, its end in waste.
    assert {g.key: figures(g) for g in f.per_service} == {
        "taxes": (3, 1, 1, 1200.0, 300.0, 1 / 3),
        "waste": (3, 3, 0, 120.0, 520.0, 1.0),
    }
    assert {g.key: figures(g) for g in f.per_hour} == {
        "09:00": (4, 3, 1, 930.0, 380.0, 0.5),
        "10:00": (1, 1, 0, 120.0, 720.0, 1.0),
    }
    assert [(g.key, g.tickets) for g in f.per_priority] == [("disability", 1)]
    assert found.per_counter == []  # counters' ids mean nothing across branches


def test_one_branch_has_its_counters(two_branches: CityStore) -> None:
    found = compute(two_branches, branch="north")
    assert figures(found.figures.total) == (3, 2, 1, 840.0, 510.0, 2 / 3)
    assert [g.key for g in found.per_branch] == ["north"]
    assert {g.key: figures(g) for g in found.per_counter} == {
        "c1": (2, 1, 1, 1200.0, 300.0, 0.5),
        "c2": (1, 1, 0, 120.0, 720.0, 1.0),
    }


def test_sites_narrow_the_figures(two_branches: CityStore) -> None:
    found = compute(two_branches, sites=frozenset({"south"}))
    assert figures(found.figures.total) == (2, 2, 0, 660.0, 420.0, 0.5)
    assert compute(two_branches, sites=frozenset()).figures.total.tickets == 0


def test_a_ticket_whose_issue_the_city_lacks_is_left_out(city_store: CityStore) -> None:
    """A branch that joined with its older rows pruned: its first row is a call."""
    city_store.add_branch("late", name="Late", address="x")
    batch = HistoryBatch(site="late", first_available=3, events=NORTH[2:6])
    assert city_store.store_batch("late", batch).stored == 4
    found = compute(city_store)
    # n1's and n2's issues are gone: nothing to count.
    assert found.figures.total.tickets == 0


def test_csv_lists_every_ticket_with_its_branch(two_branches: CityStore) -> None:
    body = stats.to_csv(stats.visits(two_branches.db, DAY, DAY))
    rows = list(csv.DictReader(io.StringIO(body)))
    assert list(rows[0])[:3] == ["branch", "business_day", "number"]
    assert [(r["branch"], r["number"], r["state"]) for r in rows] == [
        ("north", "A001", "done"),
        ("south", "A001", "done"),
        ("north", "A002", "no_show"),
        ("south", "B001", "done"),
        ("north", "B001", "done"),
    ]
    transferred = rows[1]
    assert (transferred["services"], transferred["wait_s"], transferred["service_s"]) == (
        "taxes waste",
        "1200.0",
        "360.0",
    )

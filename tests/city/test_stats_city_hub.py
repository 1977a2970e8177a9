"""A branch's figures at the city are the figures its own hub computes.

A morning is played through a real hub's queue service (on SQLite, with a clock set to
each step): a transfer, a park, a recall, a priority ticket, a no-show and a ticket
nobody calls. The hub's audit log, joined with its tickets as the branch's uplink
sends it, is stored in the city through the consumer's path; the city's figures for
the branch must equal the hub's own, group by group.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from city import stats as city_stats
from city.store import CityStore
from hub import stats as hub_stats
from hub.app import seed_demo
from hub.model import Priority
from hub.service import QueueService
from hub.store import Store, metadata, sqlite_url
from sync_agent.city_protocol import HistoryBatch, HistoryEvent

pytestmark = pytest.mark.postgres

ZONE = ZoneInfo("Europe/Bratislava")
DAY = date(2026, 3, 2)
TARGET_S = 900


class Clock:
    """The queue's clock, set to each step's local time."""

    def __init__(self) -> None:
        self.now = self.at("07:59")

    @staticmethod
    def at(hhmm: str) -> datetime:
        hours, minutes = map(int, hhmm.split(":"))
        return datetime(2026, 3, 2, hours, minutes, tzinfo=ZONE).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


def play(queue: QueueService, clock: Clock) -> None:
    def at(hhmm: str) -> None:
        clock.now = clock.at(hhmm)

    at("08:00")
    queue.issue("taxes")
    at("08:01")
    queue.counter_action("1", "next")
    at("08:02")
    queue.issue("waste", priority=Priority.DISABILITY)
    at("08:06")
    queue.counter_action("1", "recall")
    at("08:08")
    queue.counter_action("1", "transfer", service="waste")
    at("08:10")
    queue.counter_action("3", "next")  # the priority ticket first
    at("08:12")
    queue.counter_action("3", "park")
    parked = next(t.id for t in queue.engine.tickets.values() if t.state == "parked")
    at("08:15")
    queue.counter_action("3", "next")
    at("08:20")
    queue.counter_action("3", "done")
    at("08:21")
    queue.counter_action("3", "next", ticket_id=parked)
    at("08:25")
    queue.counter_action("3", "done")
    at("08:30")
    queue.issue("taxes")
    at("08:31")
    queue.counter_action("2", "next")
    at("08:40")
    queue.counter_action("2", "no_show")
    at("09:45")
    queue.issue("parking")


def history(store: Store) -> list[HistoryEvent]:
    """The hub's audit log joined with its tickets: the rows its uplink sends the city."""
    events, tickets = metadata.tables["events"], metadata.tables["tickets"]
    query = (
        select(events, tickets.c.number, tickets.c.business_day, tickets.c.priority)
        .select_from(events.outerjoin(tickets, tickets.c.id == events.c.ticket_id))
        .order_by(events.c.id)
    )
    with store.db.connect() as conn:
        rows = conn.execute(query).all()
    return [
        HistoryEvent(
            seq=row.id,
            at=row.at,
            action=row.action,
            actor=row.actor,
            ticket_id=row.ticket_id,
            counter_id=row.counter_id,
            service=row.service,
            from_state=row.from_state,
            to_state=row.to_state,
            detail=dict(row.detail or {}),
            number=row.number,
            business_day=row.business_day,
            priority=row.priority,
        )
        for row in rows
    ]


def groups(found: list[hub_stats.Group]) -> dict[str, tuple[object, ...]]:
    return {
        g.key: (
            g.tickets,
            g.served,
            g.no_shows,
            g.mean_wait_s,
            g.mean_service_s,
            g.within_target_share,
        )
        for g in found
    }


def test_the_city_computes_a_branchs_own_figures(city_store: CityStore, tmp_path: Path) -> None:
    clock = Clock()
    store = Store(sqlite_url(tmp_path / "hub.db"))
    store.upgrade()
    queue = QueueService.open(store, timezone=ZONE, clock=clock)
    seed_demo(queue)
    play(queue, clock)
    hub = hub_stats.compute(store, DAY, DAY, timezone=ZONE, target_wait_s=TARGET_S)
    rows = history(store)
    store.close()

    city_store.add_branch("office", name="Office", address="Main 1")
    for first in range(0, len(rows), 100):
        batch = HistoryBatch(site="office", first_available=1, events=rows[first : first + 100])
        city_store.store_batch("office", batch)
    city = city_stats.compute(
        city_store.db, DAY, DAY, timezone=ZONE, target_wait_s=TARGET_S, branch="office"
    ).figures

    # The morning went as played: 4 tickets, one sent on from taxes to waste, one parked,
    # one no-show, one with priority, one never called.
    assert groups([hub.total])["total"][:3] == (4, 2, 1)
    assert groups(hub.per_service)["taxes"][:3] == (2, 0, 1)
    assert groups(hub.per_service)["waste"][:3] == (2, 2, 0)
    assert [g.key for g in hub.per_priority] == ["disability"]
    for name in ("per_service", "per_counter", "per_hour", "per_priority"):
        assert groups(getattr(city, name)) == groups(getattr(hub, name)), name
    assert groups([city.total]) == groups([hub.total])
    assert city.remote == hub.remote

"""Statistics of appointments against walk-ins, on a hand-built day."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from appointment_helpers import insert_appointment, make_appointment
from flask.testing import FlaskClient

from hub import demo_office, stats
from hub.model import AppointmentState, Change, Ticket, TicketState
from hub.service import QueueService
from hub.store import Store

TZ = ZoneInfo("Europe/Bratislava")
DAY = date(2026, 3, 2)


def local(hhmm: str, day: date = DAY) -> datetime:
    return datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), tzinfo=TZ)


def visit(
    seq: int,
    issued: str,
    called: str,
    finished: str,
    state: TicketState,
    *,
    slot: str | None = None,
    appointment: str | None = None,
) -> Ticket:
    """A finished ticket of ``taxes`` at counter 1, its times local on DAY."""
    return Ticket(
        id=f"t{seq}",
        number_service="taxes",
        business_day=DAY,
        seq=seq,
        number=f"A{seq:03d}",
        service="taxes",
        issued_at=local(issued),
        arrived_at=local(issued),
        state=state,
        counter="1",
        calls=1,
        called_at=local(called),
        finished_at=local(finished),
        appointment=appointment,
        slot_at=local(slot) if slot else None,
    )


def build_day(store: Store) -> None:
    """Two walk-ins, three citizens who checked in (early, on time, late), bookings missed."""
    for service in demo_office.SERVICES:
        store.save_service(service)
    booked = {
        hhmm: insert_appointment(store, make_appointment("taxes", local(hhmm)))
        for hhmm in ("09:00", "09:30", "10:00")
    }
    missed = AppointmentState.NO_SHOW
    insert_appointment(store, make_appointment("taxes", local("11:00"), state=missed))
    insert_appointment(
        store, make_appointment("taxes", local("11:00", DAY + timedelta(1)), state=missed)
    )
    cancelled = AppointmentState.CANCELLED
    insert_appointment(store, make_appointment("taxes", local("11:00"), state=cancelled), seat=1)
    done, no_show = TicketState.DONE, TicketState.NO_SHOW
    tickets = (
        visit(1, "08:00", "08:10", "08:15", done),
        visit(2, "08:05", "08:25", "08:26", no_show),
        visit(3, "08:50", "09:00", "09:10", done, slot="09:00", appointment=booked["09:00"].id),
        visit(4, "09:32", "09:33", "09:40", done, slot="09:30", appointment=booked["09:30"].id),
        visit(5, "10:08", "10:10", "10:11", no_show, slot="10:00", appointment=booked["10:00"].id),
    )
    store.write(Change(tickets=tickets, new_ticket_ids=frozenset(t.id for t in tickets)))


def test_appointments_are_set_against_walk_ins(store: Store) -> None:
    build_day(store)
    figures = stats.compute(store, DAY, DAY, timezone=TZ, target_wait_s=900)
    booked, walk_ins = figures.appointments, figures.walk_ins
    assert (booked.tickets, booked.served, booked.no_shows) == (3, 2, 1)
    assert (walk_ins.tickets, walk_ins.served, walk_ins.no_shows) == (2, 1, 1)
    assert booked.mean_wait_s == pytest.approx((600 + 60 + 120) / 3)
    assert walk_ins.mean_wait_s == pytest.approx((600 + 1200) / 2)
    punctual = figures.punctuality
    assert (punctual.early, punctual.on_time, punctual.late) == (1, 1, 1)
    assert punctual.mean_offset_s == pytest.approx((-600 + 120 + 480) / 3)
    assert figures.booked_no_shows == 1
    assert figures.booked_no_show_rate == pytest.approx(1 / 4)
    assert figures.total.tickets == 5


def test_a_day_without_bookings_has_no_rates(store: Store) -> None:
    for service in demo_office.SERVICES:
        store.save_service(service)
    figures = stats.compute(store, DAY, DAY, timezone=TZ, target_wait_s=900)
    assert figures.booked_no_show_rate is None
    assert figures.punctuality.mean_offset_s is None


def day_statistics(admin: FlaskClient) -> tuple[str, list[dict[str, str]]]:
    """The admin's statistics page of ``DAY`` and the rows of its CSV."""
    query = f"from={DAY.isoformat()}&to={DAY.isoformat()}"
    admin.set_cookie("lang", "en")  # the English wording
    page = admin.get(f"/admin/statistics?{query}").get_data(as_text=True)
    body = admin.get(f"/admin/statistics.csv?{query}").get_data(as_text=True)
    return page, list(csv.DictReader(io.StringIO(body)))


def test_the_statistics_page_and_csv_show_appointments(
    admin: FlaskClient, web_queue: QueueService
) -> None:
    build_day(web_queue.store)
    page, rows = day_statistics(admin)
    assert '<td>With a booking</td><td class="num">3</td>' in page
    assert '<td>Walk-ins</td><td class="num">2</td>' in page
    assert "1 early · 1 on time (within 5 min) · 1 late · on average 0:00" in page
    assert "Bookings nobody checked in: 1 (25 %" in page
    offsets = [row["checkin_offset_s"] for row in rows]
    assert offsets == ["", "", "-600.0", "120.0", "480.0"]
    assert rows[2]["slot_at"] == "2026-03-02T08:00:00+00:00"  # 09:00 in Bratislava

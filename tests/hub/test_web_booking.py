"""Booking on the REST API, the portal pages and the admin pages (Flask's test client)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from web_helpers import csrf_token

from hub.appointments import AppointmentBook, BookingRules, Contact
from hub.model import AppointmentState
from hub.web import hub
from sync_agent.protocol import parse_checkin_qr

RULES = BookingRules(
    "taxes",
    enabled=True,
    slot_min=30,
    seats=1,
    horizon_days=7,
    cancel_before_min=60,
    hold_min=10,
)


def book_of(app: Flask) -> AppointmentBook:
    return hub(app).appointments


@pytest.fixture
def bookable(app: Flask) -> date:
    """A day with bookable slots: taxes (open always) takes appointments.

    The day after tomorrow: its first slot (at midnight) is more than the rules'
    ``cancel_before_min`` away at whatever hour the tests run, so it can be changed.
    """
    book_of(app).save_rules(RULES)
    return book_of(app).queue.today() + timedelta(days=2)


def first_slot(client: FlaskClient, day: date, index: int = 0) -> dict[str, Any]:
    answer = client.get(f"/api/v1/services/taxes/slots?date={day.isoformat()}")
    assert answer.status_code == 200, answer.get_json()
    slot: dict[str, Any] = answer.get_json()["slots"][index]
    return slot


def post_booking(client: FlaskClient, **body: Any) -> Any:
    return client.post("/api/v1/appointments", json=body)


# -- API ---------------------------------------------------------------------------


def test_api_slots_book_and_cancel(client: FlaskClient, bookable: date) -> None:
    slots = client.get(f"/api/v1/services/taxes/slots?date={bookable.isoformat()}").get_json()
    assert slots["service"] == "taxes"
    assert slots["date"] == bookable.isoformat()
    assert len(slots["slots"]) == 48  # open always: 24 hours of 30-minute slots
    slot = slots["slots"][3]
    assert slot["free"] == slot["seats"] == 1

    answer = post_booking(
        client, service="taxes", starts_at=slot["starts_at"], name="Anna", email="a@example.org"
    )
    assert answer.status_code == 201, answer.get_json()
    booked = answer.get_json()
    assert re.fullmatch(r"\d{8}", booked["code"])
    assert booked["state"] == "booked"
    assert parse_checkin_qr(booked["qr"]) == booked["code"]
    assert booked["url"].endswith(f"/appointment/{booked['code']}")
    assert first_slot(client, bookable, 3)["free"] == 0

    full = post_booking(client, service="taxes", starts_at=slot["starts_at"], name="Bob")
    assert full.status_code == 409
    assert full.get_json()["error"]["code"] == "slot_full"

    cancelled = client.delete(f"/api/v1/appointments/{booked['code']}")
    assert cancelled.status_code == 200
    assert cancelled.get_json()["state"] == "cancelled"
    assert cancelled.headers["Cache-Control"] == "no-store"
    assert first_slot(client, bookable, 3)["free"] == 1
    again = client.delete(f"/api/v1/appointments/{booked['code']}")
    assert again.status_code == 404
    assert again.get_json()["error"]["code"] == "unknown_code"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("date=2026-13-40", 422, "invalid"),
        ("date=tomorrow", 422, "invalid"),
        ("date=-8.9e-41", 422, "invalid"),
        ("", 422, "invalid"),
        ("date=2000-01-01", 400, "out_of_range"),
        ("date=2999-01-01", 400, "out_of_range"),
    ],
)
def test_api_bad_days_are_refused(
    client: FlaskClient, bookable: date, query: str, status: int, code: str
) -> None:
    answer = client.get(f"/api/v1/services/taxes/slots?{query}")
    assert answer.status_code == status
    assert answer.get_json()["error"]["code"] == code


def test_api_unknown_and_unbookable_services_are_404(client: FlaskClient, bookable: date) -> None:
    for service in ("nope", "waste", "x" * 300):
        answer = client.get(f"/api/v1/services/{service}/slots?date={bookable.isoformat()}")
        assert answer.status_code == 404
        assert answer.get_json()["error"]["code"] in ("unknown_service", "not_bookable")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"service": "taxes", "starts_at": "2026-01-01T09:00:00", "name": "A"}, 422, "invalid"),
        ({"service": "taxes", "starts_at": "nonsense", "name": "A"}, 422, "invalid"),
        ({"service": "taxes", "starts_at": "{slot}", "name": ""}, 422, "invalid"),
        ({"service": "taxes", "starts_at": "{slot}", "name": "A" * 81}, 422, "invalid"),
        ({"service": "taxes", "starts_at": "{slot}", "name": "A", "extra": 1}, 422, "invalid"),
        ({"service": "taxes", "starts_at": "{slot}", "name": "A", "lang": "de"}, 422, "invalid"),
        ({"service": "taxes", "starts_at": "{slot}", "name": "A", "email": "no"}, 400, "invalid"),
        ({"service": "taxes", "starts_at": "{odd}", "name": "A"}, 400, "no_such_slot"),
        (
            {"service": "taxes", "starts_at": "2999-01-01T09:00:00Z", "name": "A"},
            400,
            "out_of_range",
        ),
        ({"service": "nope", "starts_at": "{slot}", "name": "A"}, 404, "unknown_service"),
    ],
)
def test_api_bad_bookings_are_refused(
    client: FlaskClient, bookable: date, body: dict[str, Any], status: int, code: str
) -> None:
    slot = first_slot(client, bookable)["starts_at"]
    odd = (datetime.fromisoformat(slot) + timedelta(minutes=7)).isoformat()
    filled = {k: v.format(slot=slot, odd=odd) if isinstance(v, str) else v for k, v in body.items()}
    answer = post_booking(client, **filled)
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["error"]["code"] == code


def test_api_bodies_that_are_not_json_objects_are_refused(client: FlaskClient) -> None:
    assert client.post("/api/v1/appointments", data="x").status_code == 400
    assert client.post("/api/v1/appointments", json=[1]).status_code == 400


def test_api_limits_active_bookings_per_email(client: FlaskClient, bookable: date) -> None:
    # The default allows 2 per e-mail address; a third (any case) is refused.
    for index in range(2):
        slot = first_slot(client, bookable, index)["starts_at"]
        answer = post_booking(client, service="taxes", starts_at=slot, name="A", email="a@x.org")
        assert answer.status_code == 201
    slot = first_slot(client, bookable, 2)["starts_at"]
    third = post_booking(client, service="taxes", starts_at=slot, name="A", email="A@X.org")
    assert third.status_code == 409
    assert third.get_json()["error"]["code"] == "too_many_bookings"


def test_api_limits_active_bookings_per_address(client: FlaskClient, bookable: date) -> None:
    codes = []
    for index in range(5):
        slot = first_slot(client, bookable, index)["starts_at"]
        answer = post_booking(client, service="taxes", starts_at=slot, name=f"P{index}")
        codes.append(answer.get_json().get("code"))
        expected = 201 if index < 4 else 409
        assert answer.status_code == expected
    # Cancelling one makes room again.
    assert client.delete(f"/api/v1/appointments/{codes[0]}").status_code == 200
    slot = first_slot(client, bookable, 0)["starts_at"]
    assert post_booking(client, service="taxes", starts_at=slot, name="P").status_code == 201


def test_api_booking_and_code_guessing_are_rate_limited(
    client: FlaskClient, bookable: date
) -> None:
    # booking_limit "10/hour": the eleventh attempt from one address is 429, refused or not.
    for index in range(10):
        post_booking(client, service="taxes", starts_at="nonsense", name=str(index))
    limited = post_booking(client, service="taxes", starts_at="x", name="A")
    assert limited.status_code == 429
    # booking_code_limit "20/minute;100/hour": guessing codes soon gets 429 too.
    answers = [client.delete(f"/api/v1/appointments/{n:08d}").status_code for n in range(21)]
    assert answers[:20] == [404] * 20
    assert answers[20] == 429


def test_openapi_documents_booking(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/services/{service}/slots"]
    assert "post" in paths["/api/v1/appointments"]
    assert "delete" in paths["/api/v1/appointments/{code}"]


# -- portal ------------------------------------------------------------------------


def hold_on_page(client: FlaskClient, day: date, index: int = 0) -> str:
    page = client.get(f"/book/taxes?date={day.isoformat()}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    starts = re.findall(r'name="slot" value="([^"]+)"', html)
    token = csrf_token(client, f"/book/taxes?date={day.isoformat()}")
    held = client.post("/book/taxes", data={"slot": starts[index], "csrf_token": token})
    assert held.status_code == 303
    location = held.headers["Location"]
    match = re.search(r"/appointment/(\d{8})$", location)
    assert match, location
    return match.group(1)


def test_portal_book_confirm_ics_and_cancel(
    client: FlaskClient, app: Flask, bookable: date
) -> None:
    listing = client.get("/book?lang=en").get_data(as_text=True)
    assert "/book/taxes" in listing
    assert "/book/waste" not in listing
    code = hold_on_page(client, bookable)
    held = client.get(f"/appointment/{code}")
    assert held.headers["Cache-Control"] == "no-store"
    form = held.get_data(as_text=True)
    assert "night after your appointment" in form  # how long the e-mail address is kept
    token = csrf_token(client, f"/appointment/{code}")
    confirmed = client.post(
        f"/appointment/{code}/confirm",
        data={"name": " Anna  N. ", "email": "anna@example.org", "csrf_token": token},
    )
    assert confirmed.status_code == 303
    page = client.get(f"/appointment/{code}").get_data(as_text=True)
    assert code in page
    assert "<svg" in page
    assert "Anna N." in page
    found = book_of(app).find(code)
    assert found is not None
    assert found.state is AppointmentState.BOOKED
    assert found.lang == "en"

    ics = client.get(f"/appointment/{code}.ics")
    assert ics.mimetype == "text/calendar"
    event = next(iter(Calendar.from_ical(ics.data).walk("VEVENT")))
    assert event.decoded("dtstart") == found.starts_at
    assert code in str(event.get("description"))

    token = csrf_token(client, f"/appointment/{code}")
    assert client.post(f"/appointment/{code}/cancel", data={"csrf_token": token}).status_code == 303
    cancelled = book_of(app).find(code)
    assert cancelled is not None
    assert cancelled.state is AppointmentState.CANCELLED
    assert client.get(f"/appointment/{code}.ics").status_code == 404


def test_portal_move_keeps_the_code(client: FlaskClient, app: Flask, bookable: date) -> None:
    code = hold_on_page(client, bookable)
    token = csrf_token(client, f"/appointment/{code}")
    client.post(f"/appointment/{code}/confirm", data={"name": "A", "csrf_token": token})
    page = client.get(f"/appointment/{code}/move?date={bookable.isoformat()}")
    starts = re.findall(r'name="slot" value="([^"]+)"', page.get_data(as_text=True))
    token = csrf_token(client, f"/appointment/{code}/move?date={bookable.isoformat()}")
    moved = client.post(f"/appointment/{code}/move", data={"slot": starts[5], "csrf_token": token})
    assert moved.status_code == 303
    found = book_of(app).find(code)
    assert found is not None
    assert found.starts_at == datetime.fromisoformat(starts[5])


def test_portal_forms_need_their_csrf_token(client: FlaskClient, bookable: date) -> None:
    slot = first_slot(client, bookable)["starts_at"]
    assert client.post("/book/taxes", data={"slot": slot}).status_code == 400
    code = post_booking(client, service="taxes", starts_at=slot, name="A").get_json()["code"]
    assert client.post(f"/appointment/{code}/cancel").status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "/book/nope",
        "/book/waste",
        "/appointment/12345678",
        "/appointment/abc",
        "/appointment/12345678.ics",
        "/appointment/12345678/move",
    ],
)
def test_portal_unknown_things_are_404(client: FlaskClient, bookable: date, url: str) -> None:
    assert client.get(url).status_code == 404


def test_portal_bad_days_and_slots_are_400(client: FlaskClient, bookable: date) -> None:
    assert client.get("/book/taxes?date=2026-02-31").status_code == 400
    assert client.get("/book/taxes?date=2000-01-01").status_code == 400
    token = csrf_token(client, f"/book/taxes?date={bookable.isoformat()}")
    for slot in ("nonsense", "2026-01-01T09:00:00", "9" * 41):
        assert (
            client.post("/book/taxes", data={"slot": slot, "csrf_token": token}).status_code == 400
        )
    late = datetime.fromisoformat(first_slot(client, bookable)["starts_at"]) + timedelta(minutes=1)
    answer = client.post("/book/taxes", data={"slot": late.isoformat(), "csrf_token": token})
    assert answer.status_code == 400


def test_portal_finds_a_booking_by_its_code(client: FlaskClient, bookable: date) -> None:
    slot = first_slot(client, bookable)["starts_at"]
    code = post_booking(client, service="taxes", starts_at=slot, name="A").get_json()["code"]
    token = csrf_token(client, "/appointment")
    found = client.post(
        "/appointment", data={"code": f"{code[:4]} {code[4:]}", "csrf_token": token}
    )
    assert found.status_code == 303
    assert found.headers["Location"].endswith(f"/appointment/{code}")
    bad = client.post("/appointment", data={"code": "12ab", "csrf_token": token})
    assert bad.status_code == 400


def test_portal_pages_in_every_language(client: FlaskClient, bookable: date) -> None:
    for lang, word in (("sk", "Rezerv"), ("cs", "Rezerv"), ("uk", "Запис"), ("en", "Book")):
        page = client.get(f"/book?lang={lang}").get_data(as_text=True)
        assert word in page, lang


# -- admin -------------------------------------------------------------------------


def test_admin_sets_rules_and_sees_the_day(admin: FlaskClient, app: Flask) -> None:
    token = csrf_token(admin, "/admin/booking/waste")
    answer = admin.post(
        "/admin/booking/waste",
        data={
            "enabled": "y",
            "slot_min": "20",
            "seats": "2",
            "seats_by_hour": "Mon-Fri 12-13 0",
            "horizon_days": "10",
            "cancel_before_min": "120",
            "hold_min": "5",
            "csrf_token": token,
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    rules = book_of(app).rules("waste")
    assert rules.enabled
    assert rules.slot_min == 20
    assert rules.seats_by_hour[(0, 12)] == 0
    admin.set_cookie("lang", "en")  # the English wording
    bad = admin.post(
        "/admin/booking/waste",
        data={
            "slot_min": "20",
            "seats": "2",
            "seats_by_hour": "Mon 12",
            "horizon_days": "10",
            "cancel_before_min": "0",
            "hold_min": "5",
            "csrf_token": token,
        },
    )
    assert bad.status_code == 200
    assert "is not like" in bad.get_data(as_text=True)


def test_admin_books_for_a_phone_caller(admin: FlaskClient, app: Flask, bookable: date) -> None:
    url = f"/admin/appointments?service=taxes&date={bookable.isoformat()}"
    page = admin.get(url).get_data(as_text=True)
    starts = re.findall(r'<option value="([^"]+T[^"]+)"', page)
    token = csrf_token(admin, url)
    answer = admin.post(url, data={"slot": starts[2], "name": "Ján Telefón", "csrf_token": token})
    assert answer.status_code == 302
    day = admin.get(url).get_data(as_text=True)
    assert "Ján Telefón" in day
    [booked] = book_of(app).day_bookings("taxes", bookable)
    assert booked.name == "Ján Telefón"


def test_clerks_may_not_see_the_bookings(client: FlaskClient) -> None:
    assert client.get("/admin/appointments").status_code == 302  # to sign in


def test_portal_replays_change_nothing_and_holds_are_limited(
    client: FlaskClient, app: Flask, bookable: date
) -> None:
    code = hold_on_page(client, bookable)
    token = csrf_token(client, f"/appointment/{code}")
    form = {"name": "Anna", "csrf_token": token}
    assert client.post(f"/appointment/{code}/confirm", data=form).status_code == 303
    replayed = client.post(f"/appointment/{code}/confirm", data=form | {"name": "Mallory"})
    assert replayed.status_code == 303
    found = book_of(app).find(code)
    assert found is not None
    assert found.name == "Anna"  # a replayed confirmation renames nothing
    # One address holds at most bookings_per_address (4): three more holds, then 409.
    for index in range(1, 4):
        hold_on_page(client, bookable, index)
    starts = first_slot(client, bookable, 10)["starts_at"]
    token = csrf_token(client, f"/book/taxes?date={bookable.isoformat()}")
    refused = client.post("/book/taxes", data={"slot": starts, "csrf_token": token})
    assert refused.status_code == 409
    assert "koľko môže mať jedna osoba" in refused.get_data(as_text=True)  # sk, the default


def test_admin_cancels_whatever_the_deadline(admin: FlaskClient, app: Flask) -> None:
    book = book_of(app)
    book.save_rules(RULES)
    today = book.queue.today()
    slot = book.slots("taxes", today + timedelta(days=1))[0]
    booked = book.book("taxes", slot.starts_at, Contact("A"), client=None, admin=True)
    url = f"/admin/appointments?service=taxes&date={(today + timedelta(days=1)).isoformat()}"
    token = csrf_token(admin, url)
    answer = admin.post(f"/admin/appointments/{booked.code}/cancel", data={"csrf_token": token})
    assert answer.status_code == 302
    found = book.find(booked.code)
    assert found is not None
    assert found.state is AppointmentState.CANCELLED
    assert admin.post(f"/admin/appointments/{booked.code}/cancel").status_code == 400  # no CSRF

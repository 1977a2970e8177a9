"""Closures on the web: the admin's page, the API, the portal; and the cut-off's answers."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta

import pytest
from flask.testing import FlaskClient
from web_helpers import csrf_token, sign_in_clerk

from hub.calendar import Closure
from hub.model import OpeningHours
from hub.service import QueueService

API = "/api/v1"
PAGE = "/admin/closures"


def form(client: FlaskClient, **fields: object) -> dict[str, object]:
    return {"csrf_token": csrf_token(client, PAGE), **fields}


@pytest.fixture
def today(web_queue: QueueService) -> date:
    return web_queue.today()


# -- the admin's page ----------------------------------------------------------------


def test_the_admin_adds_lists_and_removes_closures(
    admin: FlaskClient, web_queue: QueueService, today: date
) -> None:
    admin.set_cookie("lang", "en")  # the English wording
    tomorrow = today + timedelta(days=1)
    answer = admin.post(
        PAGE,
        data=form(
            admin,
            day=tomorrow.isoformat(),
            start="10:00",
            end="12:30",
            reason="Školenie zamestnancov",
            services=["taxes", "waste"],
        ),
    )
    assert answer.status_code == 302
    (closure,) = web_queue.closures()
    assert closure == Closure(
        tomorrow,
        time(10),
        time(12, 30),
        "Školenie zamestnancov",
        ("taxes", "waste"),
        id=closure.id,
    )
    page = admin.get(PAGE).get_data(as_text=True)
    assert "Školenie zamestnancov" in page
    assert "10:00–12:30" in page
    assert "Miestne dane, Komunálny odpad" in page
    # A whole day for the whole office: no times, no services.
    assert admin.post(PAGE, data=form(admin, day=today.isoformat())).status_code == 302
    assert "the whole office" in admin.get(PAGE).get_data(as_text=True)
    removed = admin.post(
        f"{PAGE}/{closure.id}/remove", data={"csrf_token": csrf_token(admin, PAGE)}
    )
    assert removed.status_code == 302
    assert [c.day for c in web_queue.closures()] == [today]


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"day": "2026-13-45"}, "Give the day as YYYY-MM-DD."),
        ({"day": "zajtra"}, "Give the day as YYYY-MM-DD."),
        ({"day": ""}, "Give the day as YYYY-MM-DD."),
        ({"start": "12:00", "end": "11:00"}, "The closure must end after it starts."),
        ({"start": "25:00"}, None),
        ({"end": "noon"}, None),
        ({"reason": "x" * 201}, None),
        ({"services": ["nope"]}, None),
        ({"day": "2000-01-01"}, "from today up to 732 days ahead"),
        ({"day": "9999-12-31"}, "from today up to 732 days ahead"),
    ],
)
def test_a_bad_closure_gets_a_clear_400(
    admin: FlaskClient,
    web_queue: QueueService,
    today: date,
    fields: dict[str, object],
    said: str | None,
) -> None:
    """``said``: the page's own words; ``None``: WTForms' (in the admin's language)."""
    admin.set_cookie("lang", "en")  # the English wording
    data = form(admin, **{"day": today.isoformat(), **fields})
    answer = admin.post(PAGE, data=data)
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert '<p class="error" role="alert">' in page
    if said is not None:
        assert said in page
    assert web_queue.closures() == []


def test_hostile_requests_to_the_closures_page(
    admin: FlaskClient, client: FlaskClient, web_queue: QueueService, today: date
) -> None:
    # Without the CSRF token nothing is closed.
    assert admin.post(PAGE, data={"day": today.isoformat()}).status_code == 400
    # A body over the limit is refused before a form sees it.
    huge = form(admin, day=today.isoformat(), reason="x" * 100_000)
    assert admin.post(PAGE, data=huge).status_code == 413
    token = csrf_token(admin, PAGE)
    for closure_id in ("f" * 32, "../../etc", "x" * 500):
        answer = admin.post(f"{PAGE}/{closure_id}/remove", data={"csrf_token": token})
        assert answer.status_code == 404
    assert admin.post(f"{PAGE}/{'f' * 32}/remove").status_code == 400
    assert web_queue.closures() == []


def test_only_admins_manage_closures(client: FlaskClient, web_queue: QueueService) -> None:
    assert client.get(PAGE).status_code == 302  # to the sign-in page
    sign_in_clerk(client, web_queue.store)
    assert client.get(PAGE).status_code == 403


# -- the API and the portal ----------------------------------------------------------


def test_a_closed_service_says_when_it_opens_everywhere(
    client: FlaskClient, web_queue: QueueService, today: date
) -> None:
    closure = web_queue.add_closure(Closure(today, reason="Sťahovanie", services=("taxes",)))
    listed = client.get(f"{API}/closures").get_json()
    assert listed == [
        {
            "id": closure.id,
            "day": today.isoformat(),
            "start": None,
            "end": None,
            "reason": "Sťahovanie",
            "services": ["taxes"],
        }
    ]
    services = {s["code"]: s for s in client.get(f"{API}/services").get_json()}
    taxes = services["taxes"]
    midnight = datetime.combine(today + timedelta(days=1), time.min, tzinfo=web_queue.timezone)
    assert (taxes["open"], taxes["cut_off"]) == (False, False)
    assert taxes["closed_for"] == "Sťahovanie"
    assert datetime.fromisoformat(taxes["opens_at"]) == midnight
    assert services["waste"]["open"]
    assert services["waste"]["opens_at"] is None
    refused = client.post(f"{API}/tickets", json={"service": "taxes"})
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "outside_hours"
    page = client.get("/?lang=en").get_data(as_text=True)
    assert "Closed now" in page
    assert "Sťahovanie" in page
    day = midnight.strftime("%b ") + str(midnight.day)
    assert f"Opens {midnight:%a}, {day} at 00:00" in page
    assert "Otvára" in client.get("/?lang=sk").get_data(as_text=True)
    lobby = client.get("/display/fragment?lang=en").get_data(as_text=True)
    assert f"closed · opens {midnight.day}/{midnight.month} at 00:00" in lobby


def test_the_cut_off_is_a_409_with_the_reason(
    client: FlaskClient, web_queue: QueueService, today: date
) -> None:
    ten = datetime.combine(today, time(10), tzinfo=web_queue.timezone)
    web_queue.clock = lambda: ten
    hours = OpeningHours({today.weekday(): ((time(8), time(10, 3)),)}, always=False)
    taxes = web_queue.service("taxes")
    assert taxes is not None
    web_queue.save_service(dataclasses.replace(taxes, hours=hours))
    refused = client.post(f"{API}/tickets", json={"service": "taxes"})
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert error["code"] == "cut_off"
    assert "10:03" in error["message"]
    services = {s["code"]: s for s in client.get(f"{API}/services").get_json()}
    assert (services["taxes"]["open"], services["taxes"]["cut_off"]) == (False, True)
    next_week = datetime.combine(today + timedelta(days=7), time(8), tzinfo=web_queue.timezone)
    assert datetime.fromisoformat(services["taxes"]["opens_at"]) == next_week
    page = client.get("/?lang=en").get_data(as_text=True)
    assert "No more tickets now: those waiting fill the time until closing." in page

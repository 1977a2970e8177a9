"""The city's web pages and API with Flask's test client, on a real PostgreSQL database."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from city_web_helpers import PASSWORD, city_app, queue, sign_in
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import cookie_copy, csrf_token

from city.services import CityServices
from city.store import CityStore
from sync_agent.city_protocol import HistoryBatch, HistoryEvent
from sync_agent.protocol import Topics

pytestmark = pytest.mark.postgres


@pytest.fixture
def city(city_store: CityStore, tmp_path: Path) -> tuple[Flask, CityServices]:
    return city_app(city_store, tmp_path)


@pytest.fixture
def client(city: tuple[Flask, CityServices]) -> FlaskClient:
    return city[0].test_client()


def text(client: FlaskClient, url: str, status: int = 200, **options: object) -> str:
    answer = client.get(url, **options)  # type: ignore[arg-type]
    assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
    return answer.get_data(as_text=True)


def order(page: str) -> list[str]:
    """The branches' sites in the order the page lists them."""
    return re.findall(r'data-site="([^"]+)"', page)


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- portal ----------------------------------------------------------------------------


def test_portal_lists_every_branch_with_its_queues_and_links(client: FlaskClient) -> None:
    client.set_cookie("lang", "en")
    page = text(client, "/")
    assert order(page) == ["south", "north", "west"]  # by name: Juh, Sever, Západ
    assert "Hlavná 1" in page
    assert "Južná 2" in page
    assert "taxes en" in page
    assert "Expected wait: about 20 min" in page  # north's taxes: 1200 s
    assert 'href="https://north.example/book"' in page
    assert 'href="https://north.example/remote"' in page
    assert 'href="https://north.example/eservice"' in page
    # West's hub is offline: its figures are marked as the last known.
    west = page[page.index('data-site="west"') :]
    assert "the figures are the last known" in west
    assert 'class="branch stale" data-site="west"' in page
    assert 'class="branch" data-site="north"' in page


def test_portal_speaks_the_citys_languages(client: FlaskClient) -> None:
    assert "taxes sk" in text(client, "/?lang=sk")
    assert "Shortest wait first" in text(client, "/?lang=en")
    ukrainian = text(client, "/?lang=uk")
    assert "Спершу найкоротше очікування" in ukrainian  # the city's catalog
    assert "Записатися на прийом" in ukrainian  # a text the hub's catalog translates


def test_a_service_puts_the_shortest_wait_first(client: FlaskClient) -> None:
    # taxes: south 5 min, north 20 min, west offline (stale) last.
    assert order(text(client, "/?service=taxes")) == ["south", "north", "west"]
    # waste: north 1 min; closed at south; west has none.
    assert order(text(client, "/?service=waste")) == ["north", "south", "west"]


def test_the_portal_follows_live_state(
    client: FlaskClient, city: tuple[Flask, CityServices]
) -> None:
    assert order(text(client, "/fragment?service=taxes"))[0] == "south"
    city[1].live.apply(Topics("south").queue("taxes"), queue("taxes", "A", 30, 3600))
    assert order(text(client, "/fragment?service=taxes"))[0] == "north"


def test_portal_is_cacheable_and_refreshes_by_itself(client: FlaskClient) -> None:
    answer = client.get("/")
    assert answer.headers["Cache-Control"].startswith("public, max-age=")
    assert "Accept-Language" in answer.headers["Vary"]
    page = answer.get_data(as_text=True)
    assert 'data-fragment="/fragment"' in page
    assert "city.js" in page
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
    chosen = client.get("/?lang=cs")  # sets the language cookie: never kept by a proxy
    assert chosen.headers["Cache-Control"] == "private, no-cache"
    assert client.get("/city-static/city.js").status_code == 200
    assert client.get("/static/hub/style.css").status_code == 200


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/?service=" + "x" * 65, 400),
        ("/?service=%00", 400),
        ("/?service=a%20b", 400),
        ("/?service=nosuch", 404),
        ("/fragment?service=../../etc", 400),
        ("/?lang=" + "x" * 5000, 200),
        ("/nosuch", 404),
    ],
)
def test_portal_refuses_hostile_queries(client: FlaskClient, url: str, status: int) -> None:
    text(client, url, status)


def test_a_huge_accept_language_costs_nothing(client: FlaskClient) -> None:
    text(client, "/", headers={"Accept-Language": "en;q=0.5," * 10_000})


# -- API -------------------------------------------------------------------------------


def test_api_lists_branches_with_their_queues(client: FlaskClient) -> None:
    answer = client.get("/api/v1/branches?lang=en")
    assert answer.status_code == 200
    found = {b["site"]: b for b in answer.get_json()}
    assert found["north"]["url"] == "https://north.example"
    assert found["north"]["online"] is True
    assert found["west"]["online"] is False
    assert found["north"]["waiting"] == 8
    taxes = next(s for s in found["north"]["services"] if s["code"] == "taxes")
    assert (taxes["name"], taxes["waiting"], taxes["estimated_wait_s"]) == ("taxes en", 7, 1200)


def test_api_refuses_bad_queries_with_json(client: FlaskClient) -> None:
    answer = client.get("/api/v1/branches?lang=xx")
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "invalid"
    answer = client.post("/api/v1/branches", data="[" * 30_000, content_type="application/json")
    assert answer.status_code == 405
    assert answer.get_json()["error"]["code"] == "method_not_allowed"
    assert client.get("/api/v1/nosuch").get_json()["error"]["code"] == "not_found"


def test_openapi_document_describes_branches_and_statistics(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    assert {"/api/v1/branches", "/api/v1/statistics", "/api/v1/statistics.csv"} <= set(paths)
    parameters = {p["name"] for p in paths["/api/v1/statistics"]["get"]["parameters"]}
    assert {"from", "to", "branch"} <= parameters


def add_history(store: CityStore) -> None:
    """One served ticket at north, one at south, on 2026-12-07."""
    for site in ("north", "south"):
        events = [
            HistoryEvent(
                seq=seq,
                at=f"2026-12-07T08:{minute:02d}:00Z",  # type: ignore[arg-type]
                action=action,
                actor="test",
                ticket_id="t1",
                counter_id="c1" if action != "issue" else None,
                service="taxes",
                to_state=state,
                number="A001",
                business_day="2026-12-07",  # type: ignore[arg-type]
            )
            for seq, (minute, action, state) in enumerate(
                [(0, "issue", "waiting"), (10, "call", "called"), (15, "done", "done")], start=1
            )
        ]
        store.store_batch(site, HistoryBatch(site=site, first_available=1, events=events))


STATS = "/api/v1/statistics?from=2026-12-07&to=2026-12-07"


def test_statistics_need_a_city_user(client: FlaskClient) -> None:
    answer = client.get(STATS)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get(STATS, headers=basic("admin", "wrong password!")).status_code == 401
    assert client.get(STATS, headers=basic("x" * 300)).status_code == 401
    assert client.get(STATS, headers={"Authorization": "Basic !!!"}).status_code == 401


def test_statistics_by_basic_auth_see_the_users_branches(
    client: FlaskClient, city_store: CityStore
) -> None:
    add_history(city_store)
    answer = client.get(STATS, headers=basic("admin"))
    assert answer.headers["Cache-Control"] == "no-store"
    every = answer.get_json()
    assert every["total"]["tickets"] == 2
    assert [g["key"] for g in every["per_branch"]] == ["north", "south"]
    assert every["total"]["mean_wait_s"] == 600.0
    assert every["total"]["mean_service_s"] == 300.0
    assert every["per_counter"] == []
    own = client.get(STATS, headers=basic("viewer")).get_json()
    assert [g["key"] for g in own["per_branch"]] == ["north"]
    one = client.get(f"{STATS}&branch=north", headers=basic("admin")).get_json()
    assert [g["key"] for g in one["per_counter"]] == ["c1"]
    # /stats is the same.
    assert client.get(STATS.replace("statistics", "stats"), headers=basic("admin")).get_json() == (
        every
    )


def test_statistics_csv_by_the_signed_in_session(
    client: FlaskClient, city_store: CityStore
) -> None:
    add_history(city_store)
    sign_in(client, "viewer")
    answer = client.get(STATS.replace("statistics", "statistics.csv"))
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/csv")
    lines = answer.get_data(as_text=True).splitlines()
    assert lines[0].startswith("branch,business_day,number")
    assert [line.split(",")[0] for line in lines[1:]] == ["north"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("branch=nosuch", 404, "unknown_branch"),
        ("branch=south", 403, "forbidden"),
        ("branch=" + "x" * 100, 422, "invalid"),
        ("from=2026-13-01", 422, "invalid"),
        ("from=-8.9e-41", 422, "invalid"),
        ("to=2026-02-30", 422, "invalid"),
        ("from=2020-01-01&to=2026-01-01", 400, "invalid"),
        ("from=2026-12-07&nosuch=1", 422, "invalid"),
    ],
)
def test_statistics_refuse_hostile_queries(
    client: FlaskClient, query: str, status: int, code: str
) -> None:
    sign_in(client, "viewer")
    for url in (f"/api/v1/statistics?{query}", f"/api/v1/statistics.csv?{query}"):
        answer = client.get(url)
        assert answer.status_code == status, (url, answer.get_data(as_text=True))
        assert answer.get_json()["error"]["code"] == code


# -- admin -----------------------------------------------------------------------------


def test_admin_pages_need_signing_in(client: FlaskClient) -> None:
    for url in ("/admin/", "/admin/devices", "/admin/statistics", "/admin/catalogue"):
        answer = client.get(url)
        assert answer.status_code == 302
        assert "/admin/login" in answer.headers["Location"]


def test_a_wrong_password_is_refused(client: FlaskClient) -> None:
    client.set_cookie("lang", "en")
    token = csrf_token(client, "/admin/login")
    for username in ("admin", "nobody"):
        answer = client.post(
            "/admin/login",
            data={"csrf_token": token, "username": username, "password": "wrong password!"},
        )
        assert answer.status_code == 401
        assert "Wrong user name or password" in answer.get_data(as_text=True)
    answer = client.post("/admin/login", data={"username": "admin", "password": PASSWORD})
    assert answer.status_code == 400  # no CSRF token: refused, not signed in
    assert client.get("/admin/").status_code == 302


def test_sign_in_is_rate_limited(city_store: CityStore, tmp_path: Path) -> None:
    app, _services = city_app(city_store, tmp_path)
    client = app.test_client()
    token = csrf_token(client, "/admin/login")
    form = {"csrf_token": token, "username": "admin", "password": "wrong password!"}
    statuses = [client.post("/admin/login", data=form).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429


def test_dashboard_shows_the_users_branches(client: FlaskClient) -> None:
    sign_in(client, "viewer")
    page = text(client, "/admin/")
    assert order(page) == ["north"]
    assert "Okienko 1" in page
    assert "A007" in page
    assert "paused" in page
    assert "Hub online" in page
    assert "History held to 0" in page
    assert 'data-fragment="/admin/dashboard/fragment"' in page
    assert client.get("/admin/").headers["Cache-Control"] == "no-store"


def test_city_admin_sees_every_branch(client: FlaskClient, city_store: CityStore) -> None:
    add_history(city_store)
    sign_in(client, "admin")
    page = text(client, "/admin/dashboard/fragment")
    assert sorted(order(page)) == ["north", "south", "west"]
    assert "History held to 3" in page
    west = page[page.index('data-site="west"') :]
    assert "Hub offline" in west


def test_devices_highlight_offline_and_low_paper(client: FlaskClient) -> None:
    sign_in(client, "viewer")
    page = text(client, "/admin/devices")
    kiosk = re.search(r'<tr class="([^"]*)" data-device="kiosk-1"', page)
    display = re.search(r'<tr class="([^"]*)" data-device="display-1"', page)
    hub = re.search(r'<tr class="([^"]*)" data-device="hub"', page)
    assert kiosk
    assert "paper-low" in kiosk.group(1)
    assert "attention" in kiosk.group(1)
    assert display
    assert "offline-device" in display.group(1)
    assert hub
    assert "attention" not in hub.group(1)
    # Those that need someone come first.
    assert page.index('data-device="display-1"') < page.index('data-device="hub"')
    assert page.index('data-device="kiosk-1"') < page.index('data-device="hub"')


def test_statistics_page_and_csv(client: FlaskClient, city_store: CityStore) -> None:
    add_history(city_store)
    sign_in(client, "admin")
    page = text(client, "/admin/statistics?from=2026-12-07&to=2026-12-07")
    assert "Per branch" in page
    assert "Sever" in page
    assert "Juh" in page
    assert 'data-key="total"' in page
    one = text(client, "/admin/statistics?from=2026-12-07&to=2026-12-07&branch=south")
    assert "Per counter" in one
    answer = client.get("/admin/statistics.csv?from=2026-12-07&to=2026-12-07&branch=south")
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert len(answer.get_data(as_text=True).splitlines()) == 2


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("branch=nosuch", 404),
        ("branch=south", 403),
        ("branch=a%20b", 400),
        ("from=2026-13-01", 400),
        ("from=yesterday", 400),
        ("to=2026-02-30", 400),
        ("from=2000-01-01", 400),
    ],
)
def test_admin_statistics_refuse_hostile_queries(
    client: FlaskClient, query: str, status: int
) -> None:
    sign_in(client, "viewer")
    text(client, f"/admin/statistics?{query}", status)
    text(client, f"/admin/statistics.csv?{query}", status)


def test_catalogue_is_edited_by_the_city_admin(client: FlaskClient, city_store: CityStore) -> None:
    sign_in(client, "admin")
    token = csrf_token(client, "/admin/catalogue")
    form = {
        "csrf_token": token,
        "code": "taxes",
        "prefix": "A",
        "name_sk": "Dane",
        "name_cs": "Daně",
        "name_uk": "Податки",
        "name_en": "Taxes",
        "hours": "Mon 08:00-12:00; Tue 08:00-12:00",
    }
    assert client.post("/admin/catalogue/services", data=form).status_code == 302
    catalogue = city_store.catalogue()
    assert catalogue is not None
    [service] = catalogue.services
    assert service.names == {"sk": "Dane", "cs": "Daně", "uk": "Податки", "en": "Taxes"}
    assert service.hours["always"] is False
    page = text(client, "/admin/catalogue")
    assert "Податки" in page
    assert "08:00" in page
    bad = client.post("/admin/catalogue/services", data={**form, "hours": "Xyz 25:00"})
    assert bad.status_code == 400
    assert (
        client.post("/admin/catalogue/services", data={**form, "prefix": "a1"}).status_code == 400
    )
    assert client.post("/admin/catalogue/services/taxes/remove", data={}).status_code == 400
    removed = client.post("/admin/catalogue/services/taxes/remove", data={"csrf_token": token})
    assert removed.status_code == 302
    catalogue = city_store.catalogue()
    assert catalogue is not None
    assert catalogue.services == []
    gone = client.post("/admin/catalogue/services/taxes/remove", data={"csrf_token": token})
    assert gone.status_code == 404


def test_a_manager_chooses_only_for_their_branches(
    client: FlaskClient, city_store: CityStore
) -> None:
    sign_in(client, "manager")
    page = text(client, "/admin/catalogue")
    assert 'id="take-south"' in page
    assert 'id="take-north"' not in page
    token = csrf_token(client, "/admin/catalogue")
    answer = client.post(
        "/admin/catalogue/branches", data={"csrf_token": token, "site": ["south", "north"]}
    )
    assert answer.status_code == 302
    taking = {b.site: b.catalogue for b in city_store.branches()}
    assert taking == {"north": False, "south": True, "west": False}
    assert client.post("/admin/catalogue/services", data={"csrf_token": token}).status_code == 403


def test_a_viewer_has_no_catalogue_and_no_users(client: FlaskClient) -> None:
    sign_in(client, "viewer")
    assert client.get("/admin/catalogue").status_code == 403
    assert client.get("/admin/users").status_code == 403


def test_city_admin_adds_users_with_roles(client: FlaskClient, city_store: CityStore) -> None:
    sign_in(client, "admin")
    token = csrf_token(client, "/admin/users")
    form = {
        "csrf_token": token,
        "username": "eva",
        "password": "a long enough password",
        "role-north": "manager",
        "role-west": "viewer",
    }
    assert client.post("/admin/users", data=form).status_code == 302
    eva = city_store.user("eva")
    assert eva is not None
    assert dict(eva.roles) == {"north": "manager", "west": "viewer"}
    assert client.post("/admin/users", data={**form, "role-north": "owner"}).status_code == 400
    assert client.post("/admin/users", data={**form, "password": "short"}).status_code == 400
    assert client.post("/admin/users", data={**form, "username": "a b"}).status_code == 400
    assert client.post("/admin/users/admin/remove", data={"csrf_token": token}).status_code == 409
    assert client.post("/admin/users/eva/remove", data={"csrf_token": token}).status_code == 302
    assert city_store.user("eva") is None
    assert client.post("/admin/users/eva/remove", data={"csrf_token": token}).status_code == 404


def test_a_removed_user_is_signed_out(client: FlaskClient, city_store: CityStore) -> None:
    sign_in(client, "viewer")
    assert client.get("/admin/").status_code == 200
    city_store.remove_user("viewer")
    assert client.get("/admin/").status_code == 302


def other_browser(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser with ``client``'s session cookie (kept, or stolen)."""
    return cookie_copy(app, client, "poradovnik_city_session")


def test_a_new_password_ends_the_users_sessions(
    city: tuple[Flask, CityServices], city_store: CityStore
) -> None:
    app = city[0]
    viewer = app.test_client()
    sign_in(viewer, "viewer")
    kept = other_browser(app, viewer)
    assert kept.get("/admin/").status_code == 200
    admin = app.test_client()
    sign_in(admin, "admin")
    form = {
        "username": "viewer",
        "password": "a brand new password",
        "role-north": "viewer",
        "csrf_token": csrf_token(admin, "/admin/users"),
    }
    assert admin.post("/admin/users", data=form).status_code == 302
    assert viewer.get("/admin/").status_code == 302
    assert kept.get("/admin/").status_code == 302
    # The admin who changes their own password stays signed in; the old cookie does not.
    old = other_browser(app, admin)
    form = {
        **form,
        "username": "admin",
        "city_admin": "y",
        "csrf_token": csrf_token(admin, "/admin/users"),
    }
    assert admin.post("/admin/users", data=form).status_code == 302
    assert admin.get("/admin/").status_code == 200
    assert old.get("/admin/").status_code == 302
    # A password set elsewhere (the command line) ends them too.
    sign_in(viewer, "manager")
    city_store.add_user("manager", "yet another password", roles={"south": "manager"})
    assert viewer.get("/admin/").status_code == 302


def test_a_cookie_kept_past_sign_out_no_longer_works(city: tuple[Flask, CityServices]) -> None:
    app = city[0]
    client = app.test_client()
    sign_in(client, "viewer")
    kept = other_browser(app, client)
    assert kept.get("/admin/").status_code == 200
    client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    answer = kept.get("/admin/")
    assert answer.status_code == 302
    assert "/admin/login" in answer.headers["Location"]


def test_dashboard_shows_how_late_the_newest_row_came(city_url: str, tmp_path: Path) -> None:
    stored_at = datetime(2026, 12, 7, 8, 20, tzinfo=UTC)  # the newest row is of 08:15
    with CityStore(city_url, clock=lambda: stored_at) as store:
        store.upgrade()
        app, _services = city_app(store, tmp_path)
        add_history(store)
        client = app.test_client()
        sign_in(client, "viewer")
        page = text(client, "/admin/")
    assert "History held to 3" in page
    assert "lag 5:00" in page

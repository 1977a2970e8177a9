"""The web side through Flask's test client: security, sign-in, admin pages and the portal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import ADMIN_PASSWORD, csrf_token, sign_in_clerk

from hub.eservice import EServices
from hub.service import QueueService
from hub.users import Users
from sync_agent.protocol import EServiceUpdate

PAGES = ["/", "/queue/fragment", "/eservice", "/admin/login", "/healthz", "/branding.css"]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_security_headers(client: FlaskClient, url: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 200
    csp = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_pages_have_no_inline_scripts_or_styles(client: FlaskClient, admin: FlaskClient) -> None:
    for url in ["/", "/eservice", "/admin/", "/admin/services", "/admin/statistics"]:
        page = client.get(url).get_data(as_text=True)
        assert "<script>" not in page
        assert "<script " not in page.replace('<script src="', "")
        assert "style=" not in page
        assert " on" + "click=" not in page


def test_the_queue_page_shows_each_service_without_javascript(
    client: FlaskClient, web_queue: QueueService
) -> None:
    web_queue.issue("taxes")
    web_queue.issue("taxes")
    page = client.get("/?lang=en").get_data(as_text=True)
    assert "Local taxes" in page
    assert '<strong class="count">2</strong>' in page
    assert "<noscript>" in page


def test_language_comes_from_the_query_then_the_cookie_then_the_browser(
    client: FlaskClient,
) -> None:
    assert 'lang="uk"' in client.get("/", headers={"Accept-Language": "uk"}).get_data(as_text=True)
    chosen = client.get("/?lang=cs")
    assert "lang=cs" in chosen.headers["Set-Cookie"]
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="cs">' in page
    assert "Místní daně" in page


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("sk", "Stav mojej žiadosti"),
        ("cs", "Stav mé žádosti"),
        ("uk", "Стан моєї заяви"),
        ("en", "Status of my application"),
    ],
)
def test_the_portal_speaks_four_languages(client: FlaskClient, lang: str, text: str) -> None:
    assert text in client.get(f"/?lang={lang}").get_data(as_text=True)


def test_a_page_is_rendered_again_when_the_queue_changes(
    client: FlaskClient, web_queue: QueueService
) -> None:
    before = client.get("/queue/fragment?lang=en").get_data(as_text=True)
    assert client.get("/queue/fragment?lang=en").get_data(as_text=True) == before
    web_queue.issue("waste")
    after = client.get("/queue/fragment?lang=en").get_data(as_text=True)
    assert after != before
    assert '<strong class="count">1</strong>' in after


def test_my_ticket_shows_position_then_the_counter_that_calls_it(
    client: FlaskClient, web_queue: QueueService
) -> None:
    web_queue.issue("taxes")
    mine = web_queue.issue("taxes").ticket
    page = client.get(f"/t/{mine.id}?lang=en").get_data(as_text=True)
    assert mine.number in page
    assert "1 person before you" in page
    web_queue.counter_action("1", "resume")
    web_queue.counter_action("1", "next")
    web_queue.counter_action("1", "done")
    web_queue.counter_action("1", "next")
    called = client.get(f"/t/{mine.id}/fragment?lang=en").get_data(as_text=True)
    assert 'data-state="called"' in called
    counter = web_queue.engine.counters["1"].name
    assert f"Please go to {counter}." in called


@pytest.mark.parametrize("ticket_id", ["nope", "0" * 32, "../../etc/passwd"])
def test_an_unknown_ticket_is_a_404_page(client: FlaskClient, ticket_id: str) -> None:
    answer = client.get(f"/t/{ticket_id}")
    assert answer.status_code == 404
    assert "text/html" in answer.content_type


# -- e-service lookups ------------------------------------------------------------


def _application(queue: QueueService) -> None:
    services = EServices(queue.store)
    base = {"system": "imesto", "reference": "MS-2026-0042"}
    services.apply(
        EServiceUpdate(
            msg_id="m1",
            status="received",
            at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
            department="Školský úrad",
            pin="731904",
            **base,
        )
    )
    services.apply(
        EServiceUpdate(
            msg_id="m2",
            status="in_progress",
            at=datetime(2026, 3, 3, 9, 30, tzinfo=UTC),
            waiting_position=7,
            clerk="Ing. Mrkvičková",
            **base,
        )
    )


def _lookup(client: FlaskClient, reference: str, pin: str) -> tuple[int, str]:
    token = csrf_token(client, "/eservice")
    answer = client.post(
        "/eservice?lang=en", data={"reference": reference, "pin": pin, "csrf_token": token}
    )
    return answer.status_code, answer.get_data(as_text=True)


def test_a_citizen_sees_the_timeline_with_reference_and_pin(
    client: FlaskClient, web_queue: QueueService
) -> None:
    _application(web_queue)
    status, page = _lookup(client, " ms-2026-0042 ", "731904")
    assert status == 200
    assert "In progress" in page
    assert "Received" in page
    assert "Školský úrad" in page
    assert "waiting list: 7" in page
    assert "Mrkvičková" not in page  # the clerk's name is not the citizen's business


def test_a_wrong_reference_and_a_wrong_pin_look_the_same(
    client: FlaskClient, web_queue: QueueService
) -> None:
    _application(web_queue)
    wrong_pin = _lookup(client, "MS-2026-0042", "000000")
    wrong_reference = _lookup(client, "MS-2026-9999", "731904")
    assert wrong_pin[0] == wrong_reference[0] == 404

    def page(html: str) -> list[str]:  # the same page but the token and the echoed input
        return [line for line in html.splitlines() if "csrf" not in line and "value=" not in line]

    assert page(wrong_pin[1]) == page(wrong_reference[1])


def test_lookups_are_rate_limited(client: FlaskClient, web_queue: QueueService) -> None:
    _application(web_queue)
    statuses = [_lookup(client, "MS-2026-0042", "000000")[0] for _ in range(10)]
    assert statuses[:5] == [404] * 5
    assert 429 in statuses
    # Even the right PIN is refused while limited.
    assert _lookup(client, "MS-2026-0042", "731904")[0] == 429


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient) -> None:
    answer = client.post("/eservice", data={"reference": "X", "pin": "1234"})
    assert answer.status_code == 400


# -- sign-in and users -------------------------------------------------------------


def test_admin_pages_need_a_signed_in_user(client: FlaskClient) -> None:
    for url in ["/admin/", "/admin/services", "/admin/users", "/admin/statistics.csv"]:
        answer = client.get(url)
        assert answer.status_code == 302
        assert "/admin/login" in answer.headers["Location"]


def test_a_wrong_password_is_refused_with_one_message(
    client: FlaskClient, web_queue: QueueService
) -> None:
    Users(web_queue.store).add("jana", ADMIN_PASSWORD, "clerk")
    client.set_cookie("lang", "en")
    for name, password in [("jana", "wrong password!"), ("nobody", ADMIN_PASSWORD)]:
        token = csrf_token(client, "/admin/login")
        answer = client.post(
            "/admin/login", data={"username": name, "password": password, "csrf_token": token}
        )
        assert answer.status_code == 401
        assert "Wrong user name or password." in answer.get_data(as_text=True)


def test_the_sign_in_page_and_the_navigation_speak_the_chosen_language(
    client: FlaskClient, web_queue: QueueService
) -> None:
    page = client.get("/admin/login").get_data(as_text=True)  # sk, the default
    assert "<h1>Prihlásiť sa</h1>" in page
    assert "Používateľské meno" in page
    wrong = client.post(
        "/admin/login?lang=cs",
        data={"username": "x", "password": "y", "csrf_token": csrf_token(client, "/admin/login")},
    )
    assert "Nesprávné uživatelské jméno nebo heslo." in wrong.get_data(as_text=True)
    Users(web_queue.store).add("olena", ADMIN_PASSWORD, "admin")
    token = csrf_token(client, "/admin/login")
    client.post(
        "/admin/login", data={"username": "olena", "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    nav = client.get("/admin/?lang=uk").get_data(as_text=True)
    assert ">Користувачі</a>" in nav
    assert ">Журнал змін</a>" in nav
    assert 'hreflang="en"' in nav
    english = client.get("/admin/?lang=en").get_data(as_text=True)
    assert ">Users</a>" in english
    assert "<h1>Dashboard</h1>" in english
    assert "<th>Counter</th><th>State</th>" in english
    # The dashboard itself too, with the services' names in that language.
    czech = client.get("/admin/dashboard/fragment?lang=cs").get_data(as_text=True)
    assert "Čeká 0 · otevřené přepážky: 0 z 5" in czech
    assert "<th>Přepážka</th><th>Stav</th>" in czech
    assert "A Místní daně" in czech
    assert "A Local taxes" in english


def test_the_session_cookie_is_http_only_and_same_site(
    app: Flask, client: FlaskClient, web_queue: QueueService
) -> None:
    Users(web_queue.store).add("admin", ADMIN_PASSWORD, "admin")
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        "/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if "poradovnik_session" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert app.config["SESSION_COOKIE_SECURE"] is False  # the tests' plain HTTP


def test_passwords_are_stored_as_argon2_hashes(web_queue: QueueService) -> None:
    Users(web_queue.store).add("jana", ADMIN_PASSWORD, "clerk")
    with web_queue.store.db.connect() as conn:
        (stored,) = conn.exec_driver_sql("SELECT password_hash FROM users").one()
    assert stored.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in stored


def test_a_clerk_sees_the_dashboard_but_not_the_set_up(
    client: FlaskClient, web_queue: QueueService
) -> None:
    sign_in_clerk(client, web_queue.store)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/statistics").status_code == 200
    assert client.get("/admin/services").status_code == 403


def test_the_first_admin_is_created_on_the_command_line(
    runner: Callable[..., Result], client: FlaskClient
) -> None:
    made = runner("user", "add", "starosta", "--role", "admin", input="dlhe heslo 123\n" * 2)
    assert made.exit_code == 0, made.output
    assert "starosta (admin)" in made.output
    assert "starosta\tadmin" in runner("user", "list").output
    short = runner("user", "add", "x", "--password", "short")
    assert short.exit_code == 1
    assert "at least 10 characters" in short.output
    last = runner("user", "remove", "starosta")
    assert last.exit_code == 1
    assert "only active admin" in last.output
    token = csrf_token(client, "/admin/login")
    signed_in = client.post(
        "/admin/login",
        data={"username": "starosta", "password": "dlhe heslo 123", "csrf_token": token},
    )
    assert signed_in.status_code == 302


def test_sign_out_is_a_post_with_the_csrf_token(admin: FlaskClient) -> None:
    assert admin.post("/admin/logout").status_code == 400
    token = csrf_token(admin, "/admin/")
    assert admin.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert admin.get("/admin/").status_code == 302


# -- admin pages -------------------------------------------------------------------

ADMIN_PAGES = [
    "/admin/",
    "/admin/dashboard/fragment",
    "/admin/services",
    "/admin/services/new",
    "/admin/services/taxes",
    "/admin/counters",
    "/admin/counters/new",
    "/admin/counters/1",
    "/admin/devices",
    "/admin/users",
    "/admin/tokens",
    "/admin/branding",
    "/admin/statistics",
    "/admin/statistics.csv",
]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_every_admin_page_renders(admin: FlaskClient, url: str) -> None:
    assert admin.get(url).status_code == 200


def test_an_admin_changes_a_service_and_the_queue_has_it(
    admin: FlaskClient, web_queue: QueueService
) -> None:
    form = {
        "code": "taxes",
        "prefix": "A",
        "name_sk": "Dane a poplatky",
        "name_cs": "Daně",
        "name_uk": "",
        "name_en": "Taxes and fees",
        "hours": "Mon 08:00-12:00 13:00-15:00; Wed 08:00-17:00",
        "daily_limit": "120",
        "service_time_min": "6",
        "open": "y",
        "csrf_token": csrf_token(admin, "/admin/services/taxes"),
    }
    answer = admin.post("/admin/services/taxes", data=form)
    assert answer.status_code == 302
    service = web_queue.engine.services["taxes"]
    assert service.names["sk"] == "Dane a poplatky"
    assert service.daily_limit == 120
    assert service.default_service_time_s == 360
    assert service.hours.describe() == "Mon 08:00-12:00 13:00-15:00; Wed 08:00-17:00"
    assert web_queue.store.services()[0].names["en"] == "Taxes and fees"


def test_bad_opening_hours_are_explained_and_nothing_changes(
    admin: FlaskClient, web_queue: QueueService
) -> None:
    admin.set_cookie("lang", "en")  # the English wording
    before = web_queue.engine.services["taxes"]
    form = {
        "prefix": "A",
        "name_sk": "Dane",
        "hours": "Mon 12:00-08:00",
        "service_time_min": "6",
        "csrf_token": csrf_token(admin, "/admin/services/taxes"),
    }
    answer = admin.post("/admin/services/taxes", data=form)
    assert answer.status_code == 200
    assert "12:00-08:00 ends before it starts." in answer.get_data(as_text=True)
    assert web_queue.engine.services["taxes"] == before


def test_an_admin_adds_a_counter(admin: FlaskClient, web_queue: QueueService) -> None:
    form = {
        "id": "9",
        "name": "Okienko 9",
        "services": "waste, taxes",
        "csrf_token": csrf_token(admin, "/admin/counters/new"),
    }
    assert admin.post("/admin/counters/new", data=form).status_code == 302
    assert web_queue.engine.counters["9"].services == ("waste", "taxes")
    form["services"] = "nope"
    form["csrf_token"] = csrf_token(admin, "/admin/counters/9")
    refused = admin.post("/admin/counters/9", data=form)
    assert refused.status_code == 200
    assert web_queue.engine.counters["9"].services == ("waste", "taxes")


def test_an_admin_adds_a_clerk(admin: FlaskClient, web_queue: QueueService) -> None:
    form = {
        "username": "peter",
        "role": "clerk",
        "password": "peter's long password",
        "active": "y",
        "csrf_token": csrf_token(admin, "/admin/users"),
    }
    assert admin.post("/admin/users", data=form).status_code == 302
    assert Users(web_queue.store).authenticate("peter", "peter's long password") is not None


def test_branding_changes_the_portal(admin: FlaskClient, client: FlaskClient) -> None:
    form = {
        "office_name": "Mesto Trnava",
        "accent_color": "#1d4d2b",
        "languages": "sk, en",
        "footer": "Hlavná 1, Trnava",
        "csrf_token": csrf_token(admin, "/admin/branding"),
    }
    assert admin.post("/admin/branding", data=form).status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Mesto Trnava" in page
    assert "Hlavná 1, Trnava" in page
    assert "?lang=uk" not in page
    assert "#1d4d2b" in client.get("/branding.css").get_data(as_text=True)
    form["accent_color"] = "#ffff00"  # white text on yellow fails WCAG AA
    form["csrf_token"] = csrf_token(admin, "/admin/branding")
    admin.set_cookie("lang", "en")  # the English wording
    assert "too light" in admin.post("/admin/branding", data=form).get_data(as_text=True)


def test_statistics_and_csv_come_from_the_history(
    admin: FlaskClient, web_queue: QueueService
) -> None:
    admin.set_cookie("lang", "en")  # the English wording
    for _ in range(3):
        web_queue.issue("taxes")
    web_queue.counter_action("1", "resume")
    web_queue.counter_action("1", "next")
    web_queue.counter_action("1", "done")
    web_queue.counter_action("1", "next")
    web_queue.counter_action("1", "recall")
    web_queue.counter_action("1", "recall")
    web_queue.counter_action("1", "recall")  # a fourth call: no-show
    page = admin.get("/admin/statistics").get_data(as_text=True)
    assert "3 tickets" in page
    assert "no-shows 50 %" in page
    csv = admin.get("/admin/statistics.csv").get_data(as_text=True).splitlines()
    assert csv[0].startswith("business_day,number,service,counter,state")
    assert len(csv) == 4
    assert sorted(line.split(",")[4] for line in csv[1:]) == ["done", "no_show", "waiting"]
    assert admin.get("/admin/statistics?from=2026-13-01").status_code == 400


def test_lookups_on_the_page_and_the_api_share_one_budget(
    client: FlaskClient, web_queue: QueueService
) -> None:
    _application(web_queue)
    for _ in range(5):
        _lookup(client, "MS-2026-0042", "000000")
    answer = client.post("/api/v1/eservice/lookup", json={"reference": "X", "pin": "1234"})
    assert answer.status_code == 429
    assert answer.get_json()["error"]["code"] == "too_many_requests"

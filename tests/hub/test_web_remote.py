"""Remote tickets on the portal: the page, the my-ticket page and every abuse limit."""

from __future__ import annotations

import dataclasses
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import csrf_token

from common.settings import Settings, WebSettings
from hub.app import web_app
from hub.model import OpeningHours, RemoteRules
from hub.service import QueueService
from hub.web.remote import COOKIE
from sync_agent.protocol import parse_checkin_qr

RULES = RemoteRules(enabled=True, daily_quota=3, stop_before_close_s=0, max_passes=1)


@pytest.fixture(autouse=True)
def remote_taxes(web_queue: QueueService) -> None:
    """Taxes take remote tickets round the clock (so the tests run at any hour)."""
    taxes = web_queue.service("taxes")
    assert taxes is not None
    web_queue.save_service(dataclasses.replace(taxes, hours=OpeningHours(), remote=RULES))


def take(client: FlaskClient, service: str = "taxes", **environ: str) -> tuple[int, str]:
    """Press the service's button on /remote: the status and the page it leads to."""
    token = csrf_token(client, "/remote")
    answer = client.post(
        "/remote",
        data={"service": service, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "192.0.2.1", **environ},
    )
    return answer.status_code, answer.headers.get("Location", answer.get_data(as_text=True))


def test_a_remote_ticket_opens_its_page_with_code_qr_and_latest_time(
    client: FlaskClient, web_queue: QueueService
) -> None:
    listing = client.get("/remote")
    assert listing.headers["Cache-Control"] == "no-store"
    page = listing.get_data(as_text=True)
    assert 'value="taxes"' in page
    assert 'value="waste"' not in page  # no remote tickets there
    status, location = take(client)
    assert status == 303
    ticket_id = location.rsplit("/", 1)[-1]
    ticket = web_queue.live_ticket(ticket_id)
    assert ticket is not None
    assert ticket.remote
    assert ticket.priority is None
    assert ticket.remote_code is not None
    mine = client.get(f"/t/{ticket_id}", headers={"Accept-Language": "en"})
    text = mine.get_data(as_text=True)
    assert mine.status_code == 200
    assert "Remote ticket" in text
    assert ticket.remote_code in text
    assert "<svg" in text
    assert "check in by" in text
    # The QR code holds what the kiosk's scanner takes.
    assert parse_checkin_qr(f"poradovnik:ticket:{ticket.remote_code}") == ticket.remote_code
    web_queue.check_in(ticket.remote_code, actor="kiosk:k1")
    text = client.get(f"/t/{ticket_id}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "You are checked in." in text
    assert ticket.remote_code not in text


@pytest.mark.parametrize("lang", ["sk", "cs", "uk", "en"])
def test_the_remote_page_in_every_language(client: FlaskClient, lang: str) -> None:
    page = client.get("/remote", headers={"Accept-Language": lang}).get_data(as_text=True)
    assert f'lang="{lang}"' in page
    if lang != "en":
        assert "Take a ticket remotely" not in page


def test_one_browser_takes_its_tickets_then_429(client: FlaskClient) -> None:
    assert take(client)[0] == 303
    assert take(client)[0] == 303
    status, page = take(client)
    assert status == 429
    assert "remote tickets for today" in page or "dnes" in page
    # Another browser on another address is still served.
    assert take(client.application.test_client(), REMOTE_ADDR="192.0.2.2")[0] == 303


def test_a_tampered_cookie_is_400_and_dropped(client: FlaskClient) -> None:
    assert take(client)[0] == 303
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    value = cookie.value
    forged = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    client.set_cookie(COOKIE, forged)
    status, _ = take(client)
    assert status == 400
    assert client.get_cookie(COOKIE) is None
    client.set_cookie(COOKIE, "x" * 3000)
    assert take(client)[0] == 400


def test_a_deleted_cookie_still_meets_the_address_limit(client: FlaskClient) -> None:
    # remote_limit "4/hour;10/day" per address: the browser drops its cookie each time.
    token = csrf_token(client, "/remote")
    answers = []
    for _ in range(5):
        client.delete_cookie(COOKIE)
        answer = client.post(
            "/remote",
            data={"service": "taxes", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "192.0.2.1"},
        )
        answers.append(answer.status_code)
    assert answers[:3] == [303] * 3
    assert answers[3] == 409  # the service's quota of 3
    assert answers[4] == 429  # the address's budget of 4


def test_the_quota_is_409_and_the_page_says_so(web_queue: QueueService, app: Flask) -> None:
    # Four citizens open the page; the fourth presses after the quota of 3 is gone.
    browsers = [app.test_client() for _ in range(4)]
    tokens = [csrf_token(b, "/remote") for b in browsers]
    answers = [
        b.post(
            "/remote",
            data={"service": "taxes", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"192.0.2.{10 + n}"},
            headers={"Accept-Language": "en"},
        )
        for n, (b, token) in enumerate(zip(browsers, tokens, strict=True))
    ]
    assert [a.status_code for a in answers] == [303, 303, 303, 409]
    assert "no more remote tickets today" in answers[3].get_data(as_text=True)
    assert web_queue.read(lambda e: e.remote_issued_today("taxes")) == 3
    page = browsers[0].get("/remote", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Not available now" in page


def test_bad_requests_are_4xx(client: FlaskClient) -> None:
    assert take(client, "nosuch")[0] == 404
    assert take(client, "waste")[0] == 409  # no remote tickets there
    assert take(client, "x" * 100)[0] == 400
    no_token = client.post("/remote", data={"service": "taxes"})
    assert no_token.status_code == 400


def test_behind_the_proxy_each_client_address_has_its_budget(
    web_settings: Settings, web_queue: QueueService
) -> None:
    web = WebSettings.model_validate(
        {
            **web_settings.web.model_dump(),
            "proxy_hops": 1,
            "public_url": "https://poradovnik.example",
            "remote_limit": "1/hour",
        }
    )
    app = web_app(web_settings.model_copy(update={"web": web}), web_queue, config={"TESTING": True})

    def via_proxy(client_address: str) -> int:
        browser = app.test_client()
        base = "https://poradovnik.example"
        page = browser.get("/remote", base_url=base).get_data(as_text=True)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert match is not None
        answer = browser.post(
            "/remote",
            data={"service": "taxes", "csrf_token": match.group(1)},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
            headers={"X-Forwarded-For": client_address, "Referer": f"{base}/remote"},
            base_url=base,
        )
        return answer.status_code

    assert via_proxy("198.51.100.1") == 303
    assert via_proxy("198.51.100.1") == 429
    assert via_proxy("198.51.100.2") == 303  # the proxy's address is not the budget's key


def test_the_ticket_page_shows_nothing_remote_for_a_walk_in(
    client: FlaskClient, web_queue: QueueService
) -> None:
    issued = web_queue.issue("taxes")
    text = client.get(f"/t/{issued.ticket.id}").get_data(as_text=True)
    assert re.search(r"poradovnik:ticket|check in by", text) is None

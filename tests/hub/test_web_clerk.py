"""The clerks' web panel through Flask's test client: sign-in, CSRF, every action, refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from appointment_helpers import insert_appointment, make_appointment, open_for_remote
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import ADMIN_PASSWORD, csrf_token

from common.counter_settings import CounterSettings
from common.settings import Settings
from hub.app import web_app
from hub.model import CounterState, TicketState
from hub.service import QueueService
from hub.users import Users

CLERK = "jana"


def sign_in(client: FlaskClient, queue: QueueService, username: str = CLERK) -> None:
    Users(queue.store).add(username, ADMIN_PASSWORD, "clerk")
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        "/admin/login",
        data={"username": username, "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 302


@pytest.fixture
def unguarded(web_settings: Settings, web_queue: QueueService) -> Flask:
    """The web app without the second-Next window, so two Nexts in a row go through."""
    settings = web_settings.model_copy(update={"counter": CounterSettings(next_guard_s=0)})
    return web_app(settings, web_queue, config={"TESTING": True})


@pytest.fixture
def clerk(unguarded: Flask, web_queue: QueueService) -> FlaskClient:
    """A clerk signed in, at counter 1 (taxes and waste)."""
    client = unguarded.test_client()
    sign_in(client, web_queue)
    token = csrf_token(client, "/clerk/counter")
    answer = client.post("/clerk/counter", data={"counter": "1", "csrf_token": token})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/clerk/"
    client.get("/clerk/?lang=en")  # the language cookie: messages in English
    return client


def act(client: FlaskClient, action: str, **fields: str) -> str:
    """Press a button of the panel as the page shows it; return the page after it."""
    page = client.get("/clerk/").get_data(as_text=True)
    seen = re.search(r'name="seen" value="([^"]*)"', page)
    assert seen is not None
    data = {"counter": "1", "seen": seen.group(1), "csrf_token": csrf_token(client, "/clerk/")}
    answer = client.post("/clerk/act", data={**data, "action": action, **fields})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/clerk/"
    return client.get("/clerk/?lang=en").get_data(as_text=True)


def current(queue: QueueService) -> str | None:
    ticket_id = queue.engine.counters["1"].current
    return queue.engine.tickets[ticket_id].number if ticket_id else None


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/clerk/"),
        ("get", "/clerk/counter"),
        ("get", "/clerk/fragment/1"),
        ("post", "/clerk/act"),
        ("post", "/clerk/counter"),
    ],
)
def test_every_clerk_page_needs_sign_in(
    client: FlaskClient, web_queue: QueueService, method: str, url: str
) -> None:
    web_queue.issue("taxes")
    form = {"csrf_token": csrf_token(client, "/admin/login"), "counter": "1", "action": "next"}
    answer = client.get(url) if method == "get" else client.post(url, data=form)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=")
    assert current(web_queue) is None


def test_sign_in_leads_back_to_the_panel(client: FlaskClient, web_queue: QueueService) -> None:
    Users(web_queue.store).add(CLERK, ADMIN_PASSWORD, "clerk")
    login = client.get("/clerk/").headers["Location"]
    token = csrf_token(client, login)
    answer = client.post(
        login, data={"username": CLERK, "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    assert answer.headers["Location"] == "/clerk/"
    assert client.get("/clerk/").headers["Location"] == "/clerk/counter"


def test_sign_in_never_leads_to_another_site(client: FlaskClient, web_queue: QueueService) -> None:
    Users(web_queue.store).add(CLERK, ADMIN_PASSWORD, "clerk")
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        "/admin/login?next=//evil.example/",
        data={"username": CLERK, "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert answer.headers["Location"] == "/admin/"


def test_a_clerk_chooses_a_counter_and_it_is_remembered(clerk: FlaskClient) -> None:
    page = clerk.get("/clerk/?lang=en").get_data(as_text=True)
    assert "<h1>Okienko 1</h1>" in page
    assert 'data-fragment="/clerk/fragment/1"' in page
    assert 'data-live="/live/queue"' in page
    assert "clerk.js" in page
    chooser = clerk.get("/clerk/counter?lang=en").get_data(as_text=True)
    assert 'aria-current="true">Okienko 1</button>' in chooser


def test_an_unknown_counter_cannot_be_chosen(clerk: FlaskClient) -> None:
    token = csrf_token(clerk, "/clerk/counter")
    page = clerk.post(
        "/clerk/counter?lang=en", data={"counter": "99", "csrf_token": token}
    ).get_data(as_text=True)
    assert "This counter no longer exists." in page
    assert clerk.get("/clerk/fragment/99").status_code == 404


def test_an_admin_may_use_the_panel_too(admin: FlaskClient) -> None:
    assert admin.get("/clerk/").headers["Location"] == "/clerk/counter"
    assert "Counter panel" in admin.get("/admin/?lang=en").get_data(as_text=True)


def test_actions_need_the_csrf_token(clerk: FlaskClient, web_queue: QueueService) -> None:
    web_queue.issue("taxes")
    answer = clerk.post("/clerk/act", data={"counter": "1", "seen": "", "action": "next"})
    assert answer.status_code == 400
    assert current(web_queue) is None


def test_an_unknown_action_is_refused(clerk: FlaskClient, web_queue: QueueService) -> None:
    token = csrf_token(clerk, "/clerk/")
    answer = clerk.post(
        "/clerk/act", data={"counter": "1", "seen": "", "action": "explode", "csrf_token": token}
    )
    assert answer.status_code == 400
    answer = clerk.post(
        "/clerk/act", data={"counter": "9", "seen": "", "action": "next", "csrf_token": token}
    )
    assert answer.status_code == 404


def test_next_calls_the_first_citizen_and_is_audited_as_the_clerk(
    clerk: FlaskClient, web_queue: QueueService
) -> None:
    first = web_queue.issue("taxes").ticket
    web_queue.issue("waste")
    page = act(clerk, "next")
    assert "Called A001." in page
    assert '<p class="number" data-current>A001</p>' in page
    assert "Called once" in page
    assert current(web_queue) == "A001"
    assert web_queue.engine.counters["1"].state is CounterState.OPEN
    events = web_queue.store.events(first.id)
    assert (events[-1].action.value, events[-1].actor) == ("call", f"web:{CLERK}")


def test_the_panel_shows_the_queues_and_the_wait(
    clerk: FlaskClient, web_queue: QueueService
) -> None:
    web_queue.issue("taxes")
    web_queue.issue("taxes")
    web_queue.issue("parking")
    page = clerk.get("/clerk/?lang=en").get_data(as_text=True)
    assert "2 citizens wait for this counter." in page
    assert '<td class="num" data-waiting="taxes">2</td>' in page
    assert '<td class="num" data-waiting="parking">1</td>' in page
    page = act(clerk, "next")
    assert "waited 0 min" in page
    assert '<td class="num" data-waiting="taxes">1</td>' in page


def test_recall_no_show_and_done(clerk: FlaskClient, web_queue: QueueService) -> None:
    for _ in range(3):
        web_queue.issue("taxes")
    act(clerk, "next")
    page = act(clerk, "recall")
    assert "A001 called again (2×)." in page
    assert "Called 2 times" in page
    page = act(clerk, "no_show")
    assert "A001 did not come." in page
    assert current(web_queue) is None
    act(clerk, "next")
    page = act(clerk, "done")
    assert "A002 is done." in page
    assert current(web_queue) is None
    act(clerk, "next")
    assert current(web_queue) == "A003"


def test_next_finishes_the_current_citizen_and_calls_the_next(
    clerk: FlaskClient, web_queue: QueueService
) -> None:
    first = web_queue.issue("taxes").ticket
    web_queue.issue("taxes")
    act(clerk, "next")
    page = act(clerk, "next")
    assert "Called A002." in page
    assert web_queue.store.ticket(first.id).state is TicketState.DONE  # type: ignore[union-attr]


def test_transfer_sends_the_ticket_to_the_chosen_service(
    clerk: FlaskClient, web_queue: QueueService
) -> None:
    moved = web_queue.issue("taxes").ticket
    page = act(clerk, "next")
    assert '<option value="parking">C Parking</option>' in page
    assert '<option value="taxes">' not in page  # not to its own service
    page = act(clerk, "transfer", service="parking")
    assert "A001 now waits for Parking." in page
    ticket = web_queue.engine.tickets[moved.id]
    assert (ticket.state, ticket.service) == (TicketState.WAITING, "parking")
    assert current(web_queue) is None


def test_park_and_call_back(clerk: FlaskClient, web_queue: QueueService) -> None:
    parked = web_queue.issue("taxes").ticket
    web_queue.issue("taxes")
    act(clerk, "next")
    page = act(clerk, "park")
    assert "A001 is set aside." in page
    assert "Call A001 back" in page
    assert web_queue.engine.tickets[parked.id].state is TicketState.PARKED
    page = act(clerk, "next", ticket_id=parked.id)
    assert "Called A001." in page
    assert current(web_queue) == "A001"
    assert "Call A001 back" not in page


def test_pause_and_resume(clerk: FlaskClient, web_queue: QueueService) -> None:
    page = act(clerk, "resume")
    assert "The counter is open." in page
    assert 'value="pause"' in page
    page = act(clerk, "pause")
    assert "The counter is paused." in page
    assert web_queue.engine.counters["1"].state is CounterState.PAUSED
    assert 'value="resume"' in page


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("recall", "There is no ticket at this counter."),
        ("done", "There is no ticket at this counter."),
        ("pause", "The counter is already paused."),
        ("transfer", "Choose the service to transfer the ticket to."),
    ],
)
def test_refusals_are_explained(
    clerk: FlaskClient, web_queue: QueueService, action: str, message: str
) -> None:
    page = act(clerk, action)
    assert f'<p class="error" role="alert">{message}</p>' in page


def test_a_transfer_needs_a_target(clerk: FlaskClient, web_queue: QueueService) -> None:
    web_queue.issue("taxes")
    act(clerk, "next")
    page = act(clerk, "transfer")
    assert "Choose the service to transfer the ticket to." in page
    assert current(web_queue) == "A001"


def test_next_with_nobody_waiting_says_so(clerk: FlaskClient) -> None:
    assert "Nobody is waiting for this counter&#39;s services." in act(clerk, "next")


def test_an_action_on_an_overtaken_page_is_refused(
    clerk: FlaskClient, web_queue: QueueService
) -> None:
    web_queue.issue("taxes")
    web_queue.issue("taxes")
    token = csrf_token(clerk, "/clerk/")  # the page shows no ticket
    web_queue.counter_action("1", "next", actor="counter:1")  # the button panel calls A001
    answer = clerk.post(
        "/clerk/act?lang=en",
        data={"counter": "1", "seen": "", "action": "next", "csrf_token": token},
        follow_redirects=True,
    )
    assert "The counter changed meanwhile" in answer.get_data(as_text=True)
    assert current(web_queue) == "A001"  # not finished unseen


def test_a_second_next_right_after_the_first_is_refused(
    client: FlaskClient, web_queue: QueueService
) -> None:
    sign_in(client, web_queue)
    token = csrf_token(client, "/clerk/counter?lang=en")
    client.post("/clerk/counter", data={"counter": "1", "csrf_token": token})
    web_queue.issue("taxes")
    web_queue.issue("taxes")
    act(client, "next")
    page = act(client, "next")
    assert "A001 was called just now." in page
    assert current(web_queue) == "A001"
    assert "A001 called again (2×)." in act(client, "recall")  # other actions go through


def test_the_fragment_follows_other_devices(clerk: FlaskClient, web_queue: QueueService) -> None:
    web_queue.issue("waste")
    assert "data-current" not in clerk.get("/clerk/fragment/1").get_data(as_text=True)
    web_queue.counter_action("1", "next", actor="counter:1")
    answer = clerk.get("/clerk/fragment/1")
    assert answer.headers["Cache-Control"] == "no-store"
    assert '<p class="number" data-current>B001</p>' in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    ("lang", "text"),
    [("sk", "Ďalší"), ("cs", "Další"), ("uk", "Наступний"), ("en", "Next")],
)
def test_the_panel_speaks_four_languages(clerk: FlaskClient, lang: str, text: str) -> None:
    page = clerk.get(f"/clerk/?lang={lang}").get_data(as_text=True)
    assert f'aria-keyshortcuts="N">{text}</button>' in page


def test_the_panel_has_no_inline_scripts_or_styles(clerk: FlaskClient) -> None:
    for url in ["/clerk/", "/clerk/counter", "/clerk/fragment/1"]:
        page = clerk.get(url).get_data(as_text=True)
        assert "<script>" not in page
        assert "<script " not in page.replace('<script src="', "")
        assert "style=" not in page


def test_a_checked_in_appointment_shows_its_slot_and_name(
    clerk: FlaskClient, web_queue: QueueService
) -> None:
    slot = datetime.now(UTC).replace(second=0, microsecond=0)
    booking = make_appointment("taxes", slot, name="<b>Ján</b> K.")
    insert_appointment(web_queue.store, booking)
    web_queue.issue("taxes")
    web_queue.check_in(booking.code)
    page = act(clerk, "next")
    assert current(web_queue) == "A002"  # a due appointment goes first
    local = slot.astimezone(web_queue.timezone)
    assert f"Appointment at {local:%H:%M} · &lt;b&gt;Ján&lt;/b&gt; K." in page
    assert "<b>Ján</b>" not in page
    page = act(clerk, "next")
    assert current(web_queue) == "A001"
    assert "data-appointment" not in page


def test_a_remote_ticket_is_marked_with_its_check_in(
    clerk: FlaskClient, web_queue: QueueService
) -> None:
    open_for_remote(web_queue)
    remote = web_queue.issue_remote("taxes").ticket
    assert remote.remote_code is not None
    checked = web_queue.check_in(remote.remote_code, actor="kiosk:k1").ticket
    assert checked.checked_in_at is not None
    page = act(clerk, "next")
    assert current(web_queue) == remote.number
    local = checked.checked_in_at.astimezone(web_queue.timezone)
    assert f"▲ Remote ticket · checked in at {local:%H:%M}" in page
    web_queue.issue("taxes")
    assert "data-remote" not in act(clerk, "next")

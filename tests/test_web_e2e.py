"""End to end in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from poradovnik.hub.eservice import EServices
from poradovnik.hub.service import QueueService
from poradovnik.hub.users import Users
from poradovnik.hub.web.server import WebServer
from poradovnik.sync_agent.protocol import EServiceUpdate

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 15_000  # an upper bound for waiting, never a pause

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, web_server: WebServer) -> Iterator[Page]:
    context = browser.new_context(base_url=f"http://127.0.0.1:{web_server.port}", locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A failed lookup is a 404 page, which the console reports; anything else is a fault.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "status of 404" not in msg.text
            else None
        ),
    )
    yield page
    context.close()
    assert errors == []  # no script errors, no CSP violations


def test_an_admin_signs_in_and_renames_a_service(page: Page, web_queue: QueueService) -> None:
    Users(web_queue.store).add("admin", "correct horse battery", "admin")
    page.goto("/admin/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("link", name="Services").click()
    page.get_by_role("link", name="Parkovanie").click()
    page.get_by_label("Name (en)").fill("Parking permits")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved service parking.")).to_be_visible()
    assert web_queue.engine.services["parking"].names["en"] == "Parking permits"
    page.goto("/?lang=en")
    expect(page.get_by_role("heading", name="Parking permits")).to_be_visible()


def test_a_citizen_looks_up_an_application(page: Page, web_queue: QueueService) -> None:
    EServices(web_queue.store).apply(
        EServiceUpdate(
            msg_id="e1",
            system="imesto",
            reference="MS-2026-0042",
            status="ready_for_pickup",
            at=datetime(2026, 3, 5, 10, 0, tzinfo=UTC),
            department="Stavebný úrad",
            pin="731904",
        )
    )
    page.goto("/eservice?lang=en")
    page.get_by_label("Reference").fill("MS-2026-0042")
    page.get_by_label("PIN").fill("123456")
    page.get_by_role("button", name="Show status").click()
    expect(page.get_by_role("alert")).to_have_text(
        "We found no application with this reference and PIN."
    )
    page.get_by_label("Reference").fill("MS-2026-0042")
    page.get_by_label("PIN").fill("731904")
    page.get_by_role("button", name="Show status").click()
    expect(page.locator(".status")).to_have_text("Status: Ready for pickup")
    expect(page.get_by_text("Stavebný úrad").first).to_be_visible()


def test_my_ticket_page_shows_the_call_as_it_happens(page: Page, web_queue: QueueService) -> None:
    web_queue.issue("taxes")
    mine = web_queue.issue("taxes").ticket
    page.goto(f"/t/{mine.id}?lang=en")
    expect(page.get_by_text("1 person before you")).to_be_visible()
    expect(page.locator("[data-live]")).to_have_attribute("data-stream", "open")
    web_queue.counter_action("1", "resume")
    web_queue.counter_action("1", "next")
    expect(page.get_by_text("0 people before you")).to_be_visible()
    web_queue.counter_action("1", "done")
    web_queue.counter_action("1", "next")
    expect(page.get_by_text("Please go to Okienko 1.")).to_be_visible()
    expect(page.locator("[data-state]")).to_have_attribute("data-state", "called")


def test_a_clerk_calls_with_the_keyboard_and_the_panel_follows_the_counter(
    page: Page, web_queue: QueueService
) -> None:
    Users(web_queue.store).add("jana", "correct horse battery", "clerk")
    first = web_queue.issue("taxes").ticket
    web_queue.issue("waste")
    page.goto("/clerk/?lang=en")
    page.get_by_label("User name").fill("jana")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Choose your counter")).to_be_visible()
    page.get_by_role("button", name="Okienko 1").click()
    expect(page.get_by_role("heading", name="Okienko 1")).to_be_visible()
    expect(page.locator("[data-live]")).to_have_attribute("data-stream", "open")
    page.keyboard.press("n")
    expect(page.locator("[data-current]")).to_have_text("A001")
    expect(page.get_by_role("status")).to_have_text("Called A001.")
    assert web_queue.engine.tickets[first.id].counter == "1"
    expect(page.locator("[data-live]")).to_have_attribute("data-stream", "open")
    # The counter's button panel (the same service path as its MQTT commands) acts:
    # the open page follows without a reload.
    web_queue.counter_action("1", "done", actor="counter:1")
    web_queue.counter_action("1", "next", actor="counter:1")
    expect(page.locator("[data-current]")).to_have_text("B001")
    expect(page.locator('[data-waiting="taxes"]')).to_have_text("0")
    page.keyboard.press("t")
    expect(page.get_by_label("Transfer to")).to_be_focused()
    page.get_by_label("Transfer to").select_option("parking")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("B001 now waits for Parking.")
    moved = [t for t in web_queue.engine.tickets.values() if t.number == "B001"]
    assert [(t.service, t.state.value) for t in moved] == [("parking", "waiting")]

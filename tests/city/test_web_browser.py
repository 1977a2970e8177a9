"""The city portal in a real headless Chromium (Debian's), driven by Playwright, served as
``poradovnik city`` serves it (:func:`city.app.start_web`) on a free port."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from city_web_helpers import city_app, queue
from playwright.sync_api import Browser, Page, expect, sync_playwright

from city.app import start_web
from city.services import CityServices
from city.store import CityStore
from sync_agent.protocol import Topics

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 15_000  # an upper bound for waiting, never a pause
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"),
]


@pytest.fixture
def served(city_store: CityStore, tmp_path: Path) -> Iterator[tuple[str, CityServices]]:
    """The city's web app on a free port of 127.0.0.1: its base URL and its parts."""
    app, services = city_app(city_store, tmp_path)
    server = start_web(services.settings, app, port=0)
    yield f"http://127.0.0.1:{server.port}", services
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=HEADLESS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, served: tuple[str, CityServices]) -> Iterator[Page]:
    """A page on the city's server; on leaving, no script error or CSP violation happened."""
    context = browser.new_context(base_url=served[0], locale="en-US")
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield opened
    context.close()
    assert errors == []


def test_portal_in_a_browser_sorts_by_wait_and_refreshes(
    page: Page, served: tuple[str, CityServices]
) -> None:
    page.goto("/")
    branches = page.locator("li.branch")
    expect(branches).to_have_count(3)
    expect(page.locator('li.branch[data-site="west"]')).to_contain_text(
        "the figures are the last known"
    )
    # Choose a service: the shortest wait for it comes first.
    page.select_option("#service", "taxes")
    page.get_by_role("button", name="Shortest wait first").click()
    expect(page).to_have_url(f"{served[0]}/?service=taxes")
    expect(branches.first).to_have_attribute("data-site", "south")
    # South gets busy; the page fetches the fresh list when it is seen again.
    served[1].live.apply(Topics("south").queue("taxes"), queue("taxes", "A", 30, 3600))
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("[data-refreshed]")).to_have_count(1)
    expect(branches.first).to_have_attribute("data-site", "north")
    # A branch's link leads to its own portal.
    link = page.locator('li.branch[data-site="north"] a', has_text="Book an appointment")
    expect(link).to_have_attribute("href", "https://north.example/book")

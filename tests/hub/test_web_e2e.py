"""End to end in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import dataclasses
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from kiosk_helpers import REPLIES, WAIT_S, kiosk_config, scan, scanner_ready
from mail_helpers import Inbox, smtp_server
from office_helpers import OfficeBroker, RunningHub, hub_settings
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from process_helpers import Process, poradovnik_args

from hub.app import serve_web, start_notifier
from hub.appointments import AppointmentBook, BookingRules
from hub.eservice import EServices
from hub.feedback import Feedback
from hub.mail import Mailer
from hub.model import AppointmentState, OpeningHours, RemoteRules, TicketState
from hub.service import QueueService
from hub.signups import SignUps, SignUpSetup
from hub.siteconfig import SiteConfig
from hub.users import Users
from hub.web.server import WebServer
from kiosk.loopback import LoopbackPrinter
from sync_agent.protocol import EServiceUpdate, remote_qr

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 15_000  # an upper bound for waiting, never a pause
PROCESS_S = 60.0  # an upper bound for a process to start, never a pause

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"
)


HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=HEADLESS)
    yield browser
    browser.close()


@contextmanager
def watched_page(browser: Browser, port: int) -> Iterator[Page]:
    """A page of a new context on ``127.0.0.1:port``; on leaving, no script error happened."""
    context = browser.new_context(base_url=f"http://127.0.0.1:{port}", locale="en-US")
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


@pytest.fixture
def page(browser: Browser, web_server: WebServer) -> Iterator[Page]:
    with watched_page(browser, web_server.port) as page:
        yield page


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


def test_a_citizen_rates_the_visit_when_it_ends(page: Page, web_queue: QueueService) -> None:
    mine = web_queue.issue("taxes").ticket
    page.goto(f"/t/{mine.id}?lang=en")
    expect(page.locator("[data-live]")).to_have_attribute("data-stream", "open")
    web_queue.counter_action("1", "next", actor="web:jana")
    web_queue.counter_action("1", "done", actor="web:jana")
    rating = page.locator("[data-rate]")
    expect(rating).to_be_visible()
    rating.get_by_role("link", name="4", exact=True).click()
    expect(page.get_by_role("radio", name="4", exact=True)).to_be_checked()
    page.get_by_label("Comment (optional)").fill("Quick and kind.")
    page.get_by_role("button", name="Send rating").click()
    expect(page.get_by_text("Thank you for your rating.")).to_be_visible()
    day = web_queue.today()
    [stored] = Feedback(web_queue.store, window=timedelta(hours=1), clock=web_queue.clock).ratings(
        day, day
    )
    assert (stored.rating, stored.comment, stored.clerk) == (4, "Quick and kind.", "web:jana")


def called_at(queue: QueueService, counter: str, service: str) -> str:
    """Issue a ticket for ``service`` and call the next one at ``counter``: its number."""
    queue.issue(service)
    queue.counter_action(counter, "resume")
    change = queue.counter_action(counter, "next")
    return next(t.number for t in change.tickets if t.counter == counter)


def test_the_lobby_display_shows_and_chimes_each_call(page: Page, web_queue: QueueService) -> None:
    page.goto("/display?lang=en")
    expect(page.locator("#lobby")).to_have_attribute("data-stream", "open")
    expect(page.get_by_text("Please wait for your number")).to_be_visible()
    sound = page.get_by_role("button", name="Turn on the sound")
    sound.click()  # browsers allow sound after a gesture
    expect(page.locator("body")).to_have_attribute("data-sound", "on")
    expect(sound).to_be_hidden()
    number = called_at(web_queue, "3", "waste")
    expect(page.locator(".lobby-ticket")).to_have_text(number)
    expect(page.locator(".lobby-counter")).to_have_text("3")
    expect(page.locator(".lobby-call")).to_have_class(re.compile(r"\bfresh\b"))
    expect(page.locator("body")).to_have_attribute("data-chimes", "1")
    # A change that is no call refreshes the page without a chime.
    web_queue.issue("taxes")
    expect(page.locator(".lobby-service").first).to_contain_text("1 waiting")
    expect(page.locator("body")).to_have_attribute("data-chimes", "1")


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)])
def test_the_lobby_display_fits_a_tv(
    page: Page, web_queue: QueueService, size: tuple[int, int]
) -> None:
    width, height = size
    page.set_viewport_size({"width": width, "height": height})
    for counter, service in (("1", "waste"), ("2", "taxes"), ("3", "parking"), ("4", "info")):
        called_at(web_queue, counter, service)
    page.goto("/display?lang=sk")
    expect(page.locator(".lobby-ticket")).to_be_visible()
    boxes = {}
    for selector in (".lobby-ticket", ".lobby-counter", ".lobby-time", ".lobby-service >> nth=-1"):
        box = page.locator(selector).bounding_box()
        assert box is not None
        boxes[selector] = box
        assert box["x"] >= 0, selector
        assert box["y"] >= 0, selector
        assert box["x"] + box["width"] <= width, selector  # nothing cut off on the TV
        assert box["y"] + box["height"] <= height, selector
    assert boxes[".lobby-ticket"]["height"] > height / 6  # large type, read across the room


def test_a_tv_that_allows_autoplay_chimes_without_a_gesture(
    playwright: Playwright, web_server: WebServer, web_queue: QueueService
) -> None:
    autoplay = [*HEADLESS, "--autoplay-policy=no-user-gesture-required"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=autoplay)
    try:
        page = browser.new_page(base_url=f"http://127.0.0.1:{web_server.port}")
        page.set_default_timeout(WAIT_MS)
        page.goto("/display?lang=en")
        expect(page.locator("body")).to_have_attribute("data-sound", "on", timeout=WAIT_MS)
        expect(page.get_by_role("button", name="Turn on the sound")).to_be_hidden()
        expect(page.locator("#lobby")).to_have_attribute("data-stream", "open", timeout=WAIT_MS)
        number = called_at(web_queue, "5", "info")
        expect(page.locator(".lobby-ticket")).to_have_text(number, timeout=WAIT_MS)
        expect(page.locator("body")).to_have_attribute("data-chimes", "1", timeout=WAIT_MS)
    finally:
        browser.close()


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


def test_ticked_eservices_survive_a_live_update_and_are_recorded_on_done(
    page: Page, web_queue: QueueService
) -> None:
    signups = SignUps(web_queue.store)
    signups.save(SignUpSetup(desks=("taxes",), eservices=("Slovensko.sk", "iMesto")))
    Users(web_queue.store).add("jana", "correct horse battery", "clerk")
    web_queue.issue("taxes")
    page.goto("/clerk/?lang=en")
    page.get_by_label("User name").fill("jana")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Okienko 1").click()
    expect(page.locator("[data-live]")).to_have_attribute("data-stream", "open")
    page.keyboard.press("n")
    expect(page.locator("[data-current]")).to_have_text("A001")
    page.get_by_label("iMesto").check()
    web_queue.issue("waste")  # the queue changes: the panel's live part is swapped in
    expect(page.locator('[data-waiting="waste"]')).to_have_text("1")
    expect(page.get_by_label("iMesto")).to_be_checked()
    expect(page.get_by_label("Slovensko.sk")).not_to_be_checked()
    page.get_by_role("button", name="Done", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("A001 is done.")
    day = web_queue.today()
    assert [(r.eservice, r.count) for r in signups.per_month(day, day)] == [("iMesto", 1)]


def test_a_citizen_books_gets_code_qr_and_calendar_then_cancels(
    page: Page, web_queue: QueueService, tmp_path: Path
) -> None:
    AppointmentBook(web_queue, per_address=4, per_email=2).save_rules(
        BookingRules("taxes", enabled=True, slot_min=30, horizon_days=7)
    )
    tomorrow = web_queue.today() + timedelta(days=1)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto("/book?lang=en")
    page.get_by_role("link", name="Local taxes").click()
    expect(page.get_by_role("heading", name="Book an appointment: Local taxes")).to_be_visible()
    page.goto(f"/book/taxes?date={tomorrow.isoformat()}")
    page.get_by_role("button", name="09:00").click()
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    expect(page.get_by_text("until the night after your appointment")).to_be_visible()
    page.get_by_label("Name or initials").fill("J. K.")
    page.get_by_label("E-mail (optional)").fill("jk@example.org")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("heading", name="My booking")).to_be_visible()
    code = page.locator(".code").inner_text().strip()
    assert re.fullmatch(r"\d{8}", code)
    expect(page.locator(".qr svg")).to_be_visible()
    page.screenshot(path=str(tmp_path / "booking.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Add to my calendar").click()
    ics = Path(download.value.path()).read_text()
    assert "BEGIN:VEVENT" in ics
    assert code in ics
    page.get_by_role("button", name="Cancel the booking").click()
    expect(page.get_by_text("This booking is cancelled.")).to_be_visible()
    found = web_queue.store.appointment_by_code(code)
    assert found is not None
    assert found.state is AppointmentState.CANCELLED


def test_an_admin_turns_on_remote_tickets_and_a_citizen_takes_one(
    page: Page, web_queue: QueueService
) -> None:
    taxes = web_queue.service("taxes")
    assert taxes is not None
    web_queue.save_service(dataclasses.replace(taxes, hours=OpeningHours()))
    Users(web_queue.store).add("admin", "correct horse battery", "admin")
    page.goto("/admin/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.goto("/admin/services/taxes")
    page.get_by_label("Remote tickets (taken on the portal)").check()
    page.get_by_label("Remote tickets stop (min before closing)").fill("0")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved service taxes.")).to_be_visible()
    assert web_queue.engine.services["taxes"].remote.enabled
    # A citizen on the phone: the queue page leads to the remote tickets.
    page.goto("/?lang=en")
    page.get_by_role("link", name="Take a ticket remotely").click()
    page.get_by_role("button", name=taxes.name("en")).click()
    expect(page.get_by_text("Remote ticket", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"check in by \d\d:\d\d at the latest"))).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    ticket_id = page.url.rsplit("/", 1)[-1]
    ticket = web_queue.live_ticket(ticket_id)
    assert ticket is not None
    assert ticket.remote_code is not None
    expect(page.get_by_text(ticket.remote_code, exact=False)).to_be_visible()
    # The kiosk checks it in: the open page follows.
    expect(page.locator("[data-live]")).to_have_attribute("data-stream", "open")
    web_queue.check_in(ticket.remote_code, actor="kiosk:k1")
    expect(page.get_by_text("You are checked in.")).to_be_visible()


@pytest.fixture
def loopback() -> Iterator[LoopbackPrinter]:
    with LoopbackPrinter(REPLIES["ok"]) as printer:
        yield printer


@pytest.fixture
def office_web(hub: RunningHub, broker: OfficeBroker, tmp_path: Path) -> Iterator[OfficeWeb]:
    """The hub's web side on the running hub (its bridge), with e-mail notices to a local
    SMTP server; ``taxes`` takes remote tickets whose holders must check in.

    E-mail rather than web push: a push from headless Chromium needs the browser maker's
    push service, which a test cannot reach (the push channel has its own tests).
    """
    taxes = hub.queue.service("taxes")
    assert taxes is not None
    hub.queue.save_service(dataclasses.replace(taxes, remote=RemoteRules(enabled=True)))
    with smtp_server() as inbox:
        settings = hub_settings(broker, tmp_path / "hub").model_copy(
            update={"mail": inbox.settings()}
        )
        mailer = Mailer(settings.mail).start()
        site = SiteConfig(hub.queue.store, settings)
        notices = start_notifier(settings, hub.queue, mailer, site)
        assert notices is not None
        server = serve_web(
            settings,
            hub.queue,
            bridge=hub.bridge,
            mailer=mailer,
            notices=notices,
            site=site,
            port=0,
        )
        yield OfficeWeb(server, inbox)
        server.stop()
        notices.stop()
        mailer.stop()


@dataclasses.dataclass(frozen=True)
class OfficeWeb:
    """The served web side of :func:`office_web` and the inbox its e-mail goes to."""

    server: WebServer
    inbox: Inbox


def next_mail(inbox: Inbox, subject: str) -> EmailMessage:
    """The next e-mail whose subject is ``subject`` (others before it are passed over)."""
    while True:
        mail = inbox.next()  # fails after its timeout
        if mail["Subject"] == subject:
            return mail


def test_a_remote_ticket_is_checked_in_at_a_real_kiosk_called_and_notified(
    browser: Browser,
    hub: RunningHub,
    broker: OfficeBroker,
    office_web: OfficeWeb,
    loopback: LoopbackPrinter,
    processes: Callable[..., Process],
    tmp_path: Path,
) -> None:
    with watched_page(browser, office_web.server.port) as page:
        # From a phone: a remote ticket of Local taxes, then its my-ticket page.
        page.goto("/remote?lang=en")
        page.get_by_role("button", name="Local taxes").click()
        expect(page).to_have_url(re.compile(r"/t/[0-9a-f]{32}$"))
        ticket_id = page.url.rsplit("/", 1)[1]
        mine = hub.queue.live_ticket(ticket_id)
        assert mine is not None
        assert mine.remote_code is not None
        shown = page.get_by_text(re.compile(r"type the code \d{6}\.")).inner_text()
        code = re.search(r"code (\d{6})\.", shown)
        assert code is not None, shown
        assert code[1] == mine.remote_code
        expect(page.locator(".qr svg")).to_be_visible()

        # Notices by e-mail; none ahead, so the "your turn is near" one comes at once.
        page.get_by_role("link", name="Notify me by push, e-mail or SMS").click()
        page.get_by_label("E-mail").fill("jana@example.org")
        page.get_by_role("button", name="Notify me", exact=True).click()
        expect(page.get_by_role("status").first).to_have_text("Notices on: e-mail")
        near = next_mail(office_web.inbox, f"{mine.number}: your turn is near")
        assert near["X-Envelope-To"] == "jana@example.org"
        page.get_by_role("link", name="Back to my ticket").click()
        expect(page.locator("[data-live]")).to_have_attribute("data-stream", "open")

        # Not callable before its holder checks in: the call passes over it.
        hub.queue.counter_action("2", "resume")
        assert hub.queue.counter_action("2", "next").subject is None
        held = hub.queue.live_ticket(ticket_id)
        assert held is not None
        assert (held.state, held.passes) == (TicketState.WAITING, 1)

        # In the office: the page's QR code scanned at a real kiosk.
        checked_in = threading.Event()
        hub.queue.subscribe(
            lambda change: (
                checked_in.set()
                if any(t.id == ticket_id and t.checked_in_at for t in change.tickets)
                else None
            )
        )
        ready = scanner_ready(hub.bridge, "k1")
        fifo = tmp_path / "scanner"
        config = kiosk_config(tmp_path / "kiosk.toml", broker, loopback, fifo)
        kiosk = processes(
            poradovnik_args("--config", str(config), "kiosk"),
            name="kiosk",
            env={"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
            cwd=tmp_path,
        )
        assert ready.wait(PROCESS_S), (
            f"the hub did not hear of the kiosk's scanner: {kiosk.describe()}"
        )
        scan(fifo, remote_qr(code[1]))  # what the page's QR code holds
        assert checked_in.wait(PROCESS_S), f"the kiosk did not check it in: {kiosk.describe()}"

        # Called at counter 2: the page shows it live, and the e-mail says where to go.
        called = hub.queue.counter_action("2", "next").subject
        assert called is not None
        assert called.id == ticket_id
        expect(page.get_by_text("Please go to Okienko 2.")).to_be_visible()
        expect(page.locator("[data-state]")).to_have_attribute("data-state", "called")
        call = next_mail(office_web.inbox, f"{mine.number}: your turn, go to Okienko 2")
        assert "Okienko 2" in call.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert kiosk.stop(timeout=WAIT_S) == 0, kiosk.describe()
    assert "Traceback" not in kiosk.output()

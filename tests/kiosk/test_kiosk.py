"""The kiosk role end to end: taps on a headless pygame screen, the real broker and hub,
a loopback network printer; offline issuing, printer faults, languages, speech."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pygame
import pytest
from i18n_helpers import catalog_ids
from kiosk_helpers import (
    CUT,
    REPLIES,
    WAIT_S,
    Office,
    foreign_link,
    hub_back,
    hub_gone,
    open_kiosk,
    wait_until,
)
from office_helpers import OfficeBroker, RunningHub

from common.errors import PoradovnikError
from common.speech import Speaker
from hub.calendar import Closure
from hub.model import OpeningHours
from kiosk.app import KioskApp
from kiosk.catalog import LANGUAGES, Catalog, spoken_number
from kiosk.dispenser import BLOCK_RETRY
from kiosk.escpos_text import decode
from kiosk.loopback import LoopbackPrinter
from kiosk.ui import Screen
from sync_agent.link import DeviceLink
from sync_agent.protocol import QueueState

pytestmark = pytest.mark.usefixtures("headless_pygame")


def text_at(screenshot: pygame.Surface, screen: Screen, text: str) -> bool:
    """Whether ``text`` is drawn in the saved screenshot where the screen drew it."""
    rect = next(r for t, r in screen.drawn if t == text)
    drawn = screenshot.subsurface(rect)
    ink = [(x, y) for x in range(rect.width) for y in range(rect.height)]
    background = screenshot.get_at((rect.left - 1, rect.top))
    differs = sum(1 for x, y in ink if drawn.get_at((x, y)) != background)
    return differs > len(ink) // 20


def screenshot(office: Office, path: Path) -> pygame.Surface:
    office.app.screen.save(path)
    return pygame.image.load(str(path))


def test_a_tap_prints_the_ticket_and_shows_the_number(
    office: Office, hub: RunningHub, tmp_path: Path
) -> None:
    office.tap("service", "taxes")
    office.settle()
    outcome = office.app.outcome
    assert office.app.state == "outcome"
    assert outcome is not None
    assert outcome.ticket is not None
    number = outcome.ticket.number
    assert number == "A001"  # the offline block (A996-A999) lies at the top
    assert outcome.printed
    # The printer got the ticket: number, name, QR to the portal's page, cut.
    assert office.printer.wait_for(CUT, WAIT_S)
    printed = decode(office.printer.take(), "TM-T20II")
    assert number in printed.texts
    assert "Miestne dane" in printed.texts
    assert printed.qr_codes == [f"https://poradovnik.example/t/{outcome.ticket.ticket_id}"]
    stored = hub.queue.store.ticket(outcome.ticket.ticket_id)
    assert stored is not None
    assert stored.number == number
    # The screen shows the number: in the saved screenshot, drawn in the number's colour.
    shot = screenshot(office, tmp_path / "confirm.png")
    rect = next(r for t, r in office.app.screen.drawn if t == number)
    colours = {tuple(shot.get_at((x, rect.centery)))[:3] for x in range(rect.left, rect.right)}
    assert (255, 214, 0) in colours
    assert text_at(shot, office.app.screen, number)
    # A tap right after the confirmation appeared is the second of a double tap: ignored.
    office.tap("back")
    office.app.step()
    assert office.app.state == "outcome"
    # Done returns to the start screen; so does the timeout.
    office.later(1)
    office.tap("back")
    office.app.step()
    assert office.app.state == "start"
    office.later(1)
    office.tap("service", "taxes")
    office.settle()
    assert office.app.state == "outcome"
    office.later(31)
    office.app.step()
    assert office.app.state == "start"


def test_a_double_tap_gives_one_ticket(office: Office, hub: RunningHub) -> None:
    office.tap("service", "waste")
    office.tap("service", "waste", touch=True)
    office.tap("service", "waste")
    office.settle()
    office.app.step()
    assert office.app.issued == 1
    assert hub.queue.engine.issued_today("waste") == 1
    assert office.printer.wait_for(CUT, WAIT_S)
    assert office.printer.take().count(CUT) == 1


def test_simulated_citizens_tap_a_service(office: Office, hub: RunningHub) -> None:
    app = KioskApp(
        office.kiosk,
        office.app.screen,
        office.app.catalogs,
        languages=LANGUAGES,
        simulate_citizens_s=1.0,
        clock=lambda: office.now[0],
    )
    app.step()
    assert app.issued == 0  # nobody has come yet
    office.later(1000)  # far beyond any citizen's pause
    app.step()
    app.step(wait_s=WAIT_S)
    assert app.issued == 1
    assert app.state == "outcome"
    assert app.outcome is not None
    assert app.outcome.ticket is not None
    assert sum(hub.queue.engine.issued_today(code) for code in hub.queue.engine.services) == 1
    assert office.printer.wait_for(CUT, WAIT_S)


def test_a_touch_also_issues(office: Office, hub: RunningHub) -> None:
    office.tap("service", "parking", touch=True)
    office.settle()
    assert hub.queue.engine.issued_today("parking") == 1


def test_the_language_changes_what_is_drawn(office: Office, tmp_path: Path) -> None:
    screen = office.app.screen
    slovak = screenshot(office, tmp_path / "sk.png")
    assert text_at(slovak, screen, "Miestne dane")
    assert "Vyberte si službu" in [t for t, _ in screen.drawn]
    office.tap("lang", "uk")
    office.app.step()
    ukrainian = screenshot(office, tmp_path / "uk.png")
    drawn = [t for t, _ in screen.drawn]
    assert "Місцеві податки" in drawn
    assert "Оберіть послугу" in drawn
    assert "Miestne dane" not in drawn
    assert text_at(ukrainian, screen, "Місцеві податки")
    assert pygame.image.tobytes(slovak, "RGB") != pygame.image.tobytes(ukrainian, "RGB")
    # A ticket taken now is printed in Ukrainian.
    office.tap("service", "taxes")
    office.settle()
    assert office.printer.wait_for(CUT, WAIT_S)
    data = office.printer.take()
    assert "Місцеві податки".encode("cp1125") in data


def test_a_portrait_screen_lays_out_one_column(
    hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path
) -> None:
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        office = open_kiosk(device("kiosk-k1", start=False), loopback, tmp_path, (1080, 1920))
        try:
            services = [b for b in office.app.screen.buttons if b.kind == "service"]
            assert len({b.rect.left for b in services}) == 1
            assert all(b.rect.height >= 80 for b in services)
            office.tap("service", "info")
            office.settle()
            assert office.app.outcome is not None
            assert office.app.outcome.ticket is not None
        finally:
            office.kiosk.stop()


def test_offline_issuing_and_delivery(
    office: Office, hub: RunningHub, start_hub: Callable[[], RunningHub]
) -> None:
    kiosk = office.kiosk
    assert kiosk.refresh_blocks()
    day = kiosk._today()
    assert kiosk.book.remaining("taxes", day) == 4
    assert hub.queue.issue("taxes").ticket.number == "A001"  # the block is A996-A999
    hub_gone(office, hub)  # the broker stays
    office.app.step()
    office.tap("service", "taxes")
    office.settle()
    outcome = office.app.outcome
    assert outcome is not None
    assert outcome.ticket is not None
    assert outcome.ticket.offline
    assert outcome.ticket.number == "A996"
    assert office.printer.wait_for(CUT, WAIT_S)
    assert "vydané bez spojenia" in decode(office.printer.take(), "TM-T20II").texts
    assert kiosk.book.remaining("taxes", day) == 3
    # The hub comes back: the ticket is delivered, placed by its issue time.
    again = hub_back(office, start_hub)
    stored = again.queue.store.ticket(outcome.ticket.ticket_id)
    assert stored is not None
    assert (stored.number, stored.origin, stored.state.value) == ("A996", "k1", "waiting")
    waiting = sorted(again.queue.engine._waiting["taxes"].values(), key=lambda t: t.arrived_at)
    assert [t.number for t in waiting] == ["A001", "A996"]
    assert again.queue.issue("taxes").ticket.number == "A002"


def test_a_kiosk_holding_enough_blocks_keeps_them_and_asks_later(
    hub: RunningHub,
    device: Callable[..., DeviceLink],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [datetime.now(UTC)]
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        office = open_kiosk(
            device("kiosk-k1", start=False), loopback, tmp_path, clock=lambda: now[0]
        )
        kiosk = office.kiosk
        try:
            day = kiosk._today()
            # Numbers issued offline that have not reached the hub yet: the kiosk's
            # first block (A996-A999) still counts as unused there.
            for _ in range(2):
                assert kiosk.book.take("taxes", day) is not None
            assert kiosk.refresh_blocks()
            assert kiosk.book.remaining("taxes", day) == 6  # a second block: A992-A995
            for _ in range(4):
                assert kiosk.book.take("taxes", day) is not None
            with caplog.at_level(logging.INFO, logger="kiosk.dispenser"):
                assert kiosk.refresh_blocks()  # refused: two unused blocks are the cap
                assert kiosk.refresh_blocks()  # not asked again so soon
                refusals = [r for r in caplog.records if "no new block of taxes" in r.message]
                assert len(refusals) == 1
                assert refusals[0].levelno == logging.INFO
                assert kiosk.book.remaining("taxes", day) == 2  # kept, still issued from
                now[0] += BLOCK_RETRY + timedelta(seconds=1)
                assert kiosk.refresh_blocks()  # a minute later it asks again
            assert len([r for r in caplog.records if "no new block of taxes" in r.message]) == 2
            assert kiosk.book.take("taxes", day) is not None
        finally:
            kiosk.stop()


def test_a_kiosk_on_another_devices_account_says_so(
    hub: RunningHub, broker: OfficeBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # [device] id "k9" with the account of k1: the broker refuses all the kiosk sends.
    link = foreign_link(broker, tmp_path)
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        office = open_kiosk(link, loopback, tmp_path, blocks=False)
        try:
            wait_until(office.kiosk, lambda: link.problem is not None)
            office.app.draw()
            drawn = " ".join(t for t, _ in office.app.screen.drawn)
            assert Catalog.load("sk").text("banner.account") in drawn
            with caplog.at_level(logging.ERROR, logger="kiosk.dispenser"):
                office.tap("service", "taxes")
                office.settle()
            assert office.app.outcome is not None
            assert office.app.outcome.refused == "unavailable"
            (logged,) = [
                r.getMessage()
                for r in caplog.records
                if r.name == "kiosk.dispenser" and r.levelno >= logging.ERROR
            ]
            assert "'kiosk-k1'" in logged
            assert "'k9'" in logged
            assert "hub is silent" not in logged
        finally:
            office.kiosk.stop()


def test_paper_out_shows_the_number_and_tells_the_hub(
    hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path
) -> None:
    heard = threading.Event()
    hub.bridge.on_device(
        lambda view: (
            view.health is not None
            and view.health.parts["printer"].state == "paper_out"
            and heard.set()
        )
    )
    with LoopbackPrinter(REPLIES["paper_out"]) as loopback:
        office = open_kiosk(device("kiosk-k1", start=False), loopback, tmp_path)
        try:
            assert heard.wait(WAIT_S)
            office.app.draw()
            drawn = [t for t, _ in office.app.screen.drawn]
            assert Catalog.load("sk").text("banner.printer_show") in " ".join(drawn)
            office.tap("service", "info")
            office.settle()
            outcome = office.app.outcome
            assert outcome is not None
            assert outcome.ticket is not None
            assert not outcome.printed
            assert outcome.ticket.number in [t for t, _ in office.app.screen.drawn]
            assert CUT not in loopback.take()  # nothing was sent to a printer without paper
        finally:
            office.kiosk.stop()


def test_stop_issuing_when_the_printer_cannot_print(
    hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path
) -> None:
    with LoopbackPrinter(REPLIES["cover_open"]) as loopback:
        office = open_kiosk(
            device("kiosk-k1", start=False), loopback, tmp_path, stop_on_printer_fault=True
        )
        try:
            outcome = office.kiosk.issue("taxes", "en")
            assert outcome.ticket is None
            assert outcome.refused == "printer"
            assert hub.queue.engine.issued_today("taxes") == 0
            office.app.step()
            assert all(b.kind != "service" for b in office.app.screen.buttons)
        finally:
            office.kiosk.stop()


def test_a_closed_service_is_refused_and_shown_closed(office: Office, hub: RunningHub) -> None:
    closed = dataclasses.replace(hub.queue.engine.services["parking"], open=False)
    hub.queue.save_service(closed)
    wait_until(
        office.kiosk,
        lambda: not next(q for q in office.kiosk.services() if q.service == "parking").open,
    )
    office.app.draw()
    assert ("off", "parking") in [(b.kind, b.value) for b in office.app.screen.buttons]
    assert any(t.startswith("Zatvorené") for t, _ in office.app.screen.drawn)
    outcome = office.kiosk.issue("parking", "sk")
    assert outcome.refused == "service_closed"


# -- catalogs and speech --------------------------------------------------------------


def test_every_language_has_every_text() -> None:
    catalogs = Catalog.load_all()
    keys = {lang: catalog_ids("kiosk", lang) for lang in catalogs}
    assert keys["sk"] == keys["cs"] == keys["uk"] == keys["en"]
    for catalog in catalogs.values():
        for code in (
            "service_closed",
            "outside_hours",
            "cut_off",
            "daily_limit",
            "printer",
            "unavailable",
        ):
            assert catalog.has(f"refused.{code}")
    assert (
        catalogs["uk"].hours("Mon 08:00-15:00; Fri 08:00-12:00") == "Пн 08:00-15:00; Пт 08:00-12:00"
    )


def test_spoken_numbers() -> None:
    assert spoken_number("A042") == "A 42"
    assert spoken_number("B100") == "B 100"


@pytest.mark.parametrize("lang", ["sk", "uk"])
def test_espeak_speaks_the_confirmation(tmp_path: Path, lang: str) -> None:
    wav = tmp_path / f"{lang}.wav"
    text = Catalog.load(lang).text("speech.confirm", number="A 42", service="X", ahead=3)
    process = Speaker(lang).speak(text, wav=wav)
    assert process is not None, "espeak-ng is not installed"
    assert process.wait(timeout=WAIT_S) == 0
    data = wav.read_bytes()
    assert data[:4] == b"RIFF"
    assert len(data) > 10_000  # a few seconds of speech, not an empty file


def test_no_screen_without_fonts(tmp_path: Path) -> None:
    with pytest.raises(PoradovnikError, match="fonts-dejavu-core"):
        Screen(pygame.display.set_mode((800, 480)), font_dir=tmp_path, office="x")
    assert os.environ["SDL_VIDEODRIVER"] == "dummy"


def test_a_closure_and_the_cut_off_are_explained_with_the_next_opening(
    office: Office, hub: RunningHub
) -> None:
    queue = hub.queue
    today = queue.today()

    def parking() -> QueueState:
        return next(q for q in office.kiosk.services() if q.service == "parking")

    # The admin closes parking for today: an "always" service opens again at midnight.
    closure = queue.add_closure(Closure(today, reason="Inventúra", services=("parking",)))
    wait_until(office.kiosk, lambda: parking().opens_at is not None)
    office.app.draw()
    assert ("off", "parking") in [(b.kind, b.value) for b in office.app.screen.buttons]
    texts = office.app.catalogs["sk"]
    opening = texts.opening(parking().opens_at, parking().at)  # type: ignore[arg-type]
    assert opening.startswith("Otvára ")
    assert f"{texts.text('start.closed')} · {opening}" in [t for t, _ in office.app.screen.drawn]
    outcome = office.kiosk.issue("parking", "sk")
    assert outcome.refused == "outside_hours"
    queue.remove_closure(closure.id)

    # Parking now opens today only, and those waiting would fill the time to midnight.
    queue.engine.policy = dataclasses.replace(queue.engine.policy, cut_off_margin_s=86_400)
    hours = OpeningHours({today.weekday(): ((time.min, time.max),)}, always=False)
    queue.save_service(dataclasses.replace(queue.engine.services["parking"], hours=hours))
    wait_until(office.kiosk, lambda: parking().cut_off)
    assert parking().opens_at == datetime.combine(
        today + timedelta(days=7), time.min, tzinfo=queue.timezone
    )
    office.app.lang = "en"
    office.app.draw()
    english = office.app.catalogs["en"]
    assert any(t.startswith("No more tickets now · Opens ") for t, _ in office.app.screen.drawn)
    outcome = office.kiosk.issue("parking", "en")
    assert outcome.refused == "cut_off"
    office.app.outcome = outcome
    office.app.state = "outcome"
    office.app.draw()
    said = " ".join(t for t, _ in office.app.screen.drawn)
    assert "people already waiting" in said
    assert english.opening(parking().opens_at, parking().at) in said  # type: ignore[arg-type]

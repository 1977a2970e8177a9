"""Checking in a booked appointment at the kiosk, end to end: its QR code scanned (the
simulated scanner's FIFO) or its code typed on the keypad, the request over the real
broker to the hub, the appointment's ticket on the loopback printer, and every refusal
in the citizen's language.

The hub answers check-ins from :class:`Bookings`, put in place of its check-in handler:
these tests are about the kiosk's side of ``kiosk/<id>/checkin``; the hub's own rules
for bookings are tested with the hub."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from kiosk_helpers import (
    CUT,
    REPLIES,
    TZ,
    WAIT_S,
    Office,
    foreign_link,
    hub_gone,
    make_printer,
    network,
    open_kiosk,
)
from kiosk_helpers import wait_until as wait_for_kiosk
from office_helpers import OfficeBroker, RunningHub

from hub.bridge import HANDLERS, HubBridge
from kiosk.app import KEYPAD_IDLE_S
from kiosk.catalog import Catalog
from kiosk.escpos_text import decode
from kiosk.loopback import LoopbackPrinter
from kiosk.printer import PrintedTicket
from kiosk.scanner import SimulatedScanner
from lobby.content import APPOINTMENT_MARK
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

pytestmark = pytest.mark.usefixtures("headless_pygame")

SLOT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)  # 10:30 in Bratislava
"""The booked slot of every booking here."""


@dataclass
class Bookings:
    """The hub's answers to check-ins: by code, a service to issue a ticket of, or an error
    (with the booked service, for ``too_late``); any other code is ``unknown_booking``."""

    tickets: dict[str, str] = field(default_factory=dict)
    errors: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    asked: list[p.CheckInRequest] = field(default_factory=list)

    def handle(self, bridge: HubBridge, request: p.CheckInRequest, kiosk: str) -> bytes:
        self.asked.append(request)
        service = self.tickets.get(request.code)
        if service is not None:
            issued = bridge.queue.issue(service, lang=request.lang, actor=f"kiosk:{kiosk}")
            ticket = issued.ticket
            return p.TicketReply(
                msg_id=request.msg_id,
                ticket_id=ticket.id,
                number=ticket.number,
                service=service,
                people_ahead=issued.estimate.people_ahead,
                estimated_wait_s=issued.estimate.estimated_wait_s,
                issued_at=ticket.issued_at,
                appointment_at=SLOT,
            ).encode()
        code, booked = self.errors.get(request.code, ("unknown_booking", None))
        error = p.ErrorBody(code=code, message=f"booking {request.code}: {code}", service=booked)
        return p.ErrorReply(msg_id=request.msg_id, error=error).encode()


@pytest.fixture
def bookings(hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> Bookings:
    desk = Bookings()
    monkeypatch.setitem(HANDLERS, "kiosk_checkin", desk.handle)
    return desk


@pytest.fixture
def office(bookings: Bookings, office: Office) -> Office:
    """The kiosk of the kiosk tests' ``office``, opened once the booking desk answers."""
    return office


def drawn(office: Office) -> str:
    return " ".join(text for text, _ in office.app.screen.drawn)


def buttons(office: Office) -> list[tuple[str, str]]:
    return [(b.kind, b.value) for b in office.app.screen.buttons]


def test_a_scanned_booking_prints_its_appointment_ticket(
    office: Office, hub: RunningHub, bookings: Bookings, tmp_path: Path
) -> None:
    bookings.tickets["12345678"] = "taxes"
    healthy = threading.Event()
    hub.bridge.on_device(
        lambda view: (
            view.health is not None
            and "scanner" in view.health.parts
            and view.health.parts["scanner"].state == "ok"
            and "printer" in view.health.parts
            and healthy.set()
        )
    )
    scanner = SimulatedScanner(tmp_path / "scanner")
    heard = threading.Event()

    def scanned(text: str) -> None:
        office.app.scanned(text)
        heard.set()

    scanner.start(scanned, office.kiosk.scanner_health)
    try:
        assert healthy.wait(WAIT_S), "the hub did not hear of the scanner"
        with (tmp_path / "scanner").open("w") as fifo:
            fifo.write(p.booking_qr("12345678") + "\n")
        assert heard.wait(WAIT_S)
    finally:
        scanner.stop()
    office.settle()
    (request,) = bookings.asked
    assert (request.code, request.lang) == ("12345678", "sk")
    outcome = office.app.outcome
    assert outcome is not None
    assert outcome.ticket is not None
    assert outcome.printed
    ticket = outcome.ticket
    assert ticket.appointment_at == SLOT.astimezone(ZoneInfo(TZ))
    stored = hub.queue.store.ticket(ticket.ticket_id)
    assert stored is not None
    assert stored.number == ticket.number
    # The ticket: the number with the mark beside it, and the slot's time in Slovak,
    # both printed as text (the mark is in every code page).
    assert office.printer.wait_for(CUT, WAIT_S)
    printed = decode(office.printer.take(), "TM-T20II")
    assert f"{ticket.number} {APPOINTMENT_MARK}" in printed.texts
    assert f"{APPOINTMENT_MARK} Objednaný termín: 10:30" in printed.texts
    assert printed.images == []
    # The confirmation shows the same: the mark small, at the number's top right.
    shown = dict(office.app.screen.drawn)
    assert f"{APPOINTMENT_MARK} Objednaný termín: 10:30" in shown
    number, mark = shown[ticket.number], shown[APPOINTMENT_MARK]
    assert number.left < mark.left
    assert mark.height < number.height
    assert number.top <= mark.centery <= number.centery


def test_the_keypad_takes_a_code_with_corrections(office: Office, bookings: Bookings) -> None:
    bookings.tickets["12345678"] = "parking"
    office.tap("lang", "en")
    office.app.step()
    assert "I have an appointment" in drawn(office)
    office.tap("appointment")
    office.app.step()
    assert office.app.state == "keypad"
    office.later(1)  # past the double-tap guard
    for key in "1234567":
        office.tap("key", key)
    office.app.step()
    assert office.app.code == "1234567"
    assert ("off", "ok") in buttons(office)  # seven digits cannot be confirmed
    assert "1 2 3 4 5 6 7 _" in drawn(office)
    for key in ("9", "del", "8", "0"):  # a wrong digit corrected; a ninth is not taken
        office.tap("key", key)
    office.app.step()
    assert office.app.code == "12345678"
    assert "Enter your 8-digit booking code or 6-digit ticket code" in drawn(office)
    office.tap("key", "ok")
    office.settle()
    assert [r.code for r in bookings.asked] == ["12345678"]
    assert bookings.asked[0].lang == "en"
    outcome = office.app.outcome
    assert outcome is not None
    assert outcome.ticket is not None
    assert "Appointment: 10:30" in drawn(office)
    assert office.printer.wait_for(CUT, WAIT_S)
    assert (
        f"{APPOINTMENT_MARK} Appointment: 10:30" in decode(office.printer.take(), "TM-T20II").texts
    )


def test_the_keypad_takes_a_remote_tickets_six_digits(office: Office, bookings: Bookings) -> None:
    bookings.tickets["123456"] = "taxes"
    office.tap("appointment")
    office.app.step()
    office.later(1)  # past the double-tap guard
    for key in "12345":
        office.tap("key", key)
    office.app.step()
    assert ("off", "ok") in buttons(office)  # five digits are no code
    office.tap("key", "6")
    office.app.step()
    assert ("key", "ok") in buttons(office)
    office.tap("key", "ok")
    office.settle()
    assert [r.code for r in bookings.asked] == ["123456"]


def test_a_scanned_remote_ticket_is_checked_in(office: Office, bookings: Bookings) -> None:
    bookings.tickets["654321"] = "taxes"
    office.later(1)
    office.app.scanned(p.remote_qr("654321"))
    office.settle()
    assert [r.code for r in bookings.asked] == ["654321"]
    assert office.app.outcome is not None
    assert office.app.outcome.ticket is not None


def test_the_keypad_cancels_and_gives_up_on_a_citizen_who_left(
    office: Office, bookings: Bookings
) -> None:
    office.tap("appointment")
    office.app.step()
    office.later(1)
    office.tap("key", "4")
    office.tap("key", "cancel")
    office.app.step()
    assert office.app.state == "start"
    office.later(1)
    office.tap("appointment")
    office.app.step()
    assert office.app.code == ""  # a new citizen starts afresh
    office.later(KEYPAD_IDLE_S + 1)
    office.app.step()
    assert office.app.state == "start"
    assert bookings.asked == []


@pytest.mark.parametrize(
    ("code", "lang"),
    [
        ("unknown_booking", "sk"),
        ("too_early", "cs"),
        ("checked_in", "uk"),
        ("cancelled", "en"),
        ("too_late", "uk"),
    ],
)
def test_a_refusal_is_told_in_the_citizens_language(
    office: Office, bookings: Bookings, code: str, lang: str
) -> None:
    bookings.errors["11112222"] = (code, None)
    office.tap("lang", lang)
    office.app.step()
    office.app.scanned(p.booking_qr("11112222"))
    office.settle()
    outcome = office.app.outcome
    assert outcome is not None
    assert outcome.refused == code
    assert outcome.walk_in is None  # no service named: no walk-in offered
    texts = Catalog.load(lang)
    assert texts.text("checkin.title") in drawn(office)
    assert texts.text(f"refused.{code}") in drawn(office)
    assert CUT not in office.printer.take()


def test_a_late_citizen_is_offered_a_walk_in_ticket_of_the_service(
    office: Office, hub: RunningHub, bookings: Bookings
) -> None:
    bookings.errors["22223333"] = ("too_late", "waste")
    office.tap("lang", "en")
    office.app.step()
    office.app.scanned("22223333")  # a bare code, as some bookings print it
    office.settle()
    outcome = office.app.outcome
    assert outcome is not None
    assert (outcome.refused, outcome.walk_in) == ("too_late", "waste")
    name = office.kiosk.service_name("waste", "en")
    assert f"Take a ticket: {name}" in drawn(office)
    office.later(1)
    office.tap("walk_in", "waste")
    office.settle()
    ticket = office.app.outcome.ticket if office.app.outcome else None
    assert ticket is not None
    assert ticket.appointment_at is None  # an ordinary ticket, without the mark
    assert hub.queue.engine.issued_today("waste") == 1
    assert office.printer.wait_for(CUT, WAIT_S)
    assert ticket.number in decode(office.printer.take(), "TM-T20II").texts


def test_a_late_citizen_of_a_closed_service_is_not_offered_its_ticket(
    office: Office, hub: RunningHub, bookings: Bookings
) -> None:
    closed = dataclasses.replace(hub.queue.engine.services["waste"], open=False)
    hub.queue.save_service(closed)
    wait_for_kiosk(
        office.kiosk,
        lambda: not next(q for q in office.kiosk.services() if q.service == "waste").open,
    )
    bookings.errors["22223333"] = ("too_late", "waste")
    outcome = office.kiosk.check_in("22223333", "sk")
    assert (outcome.refused, outcome.walk_in) == ("too_late", None)


def test_no_check_in_while_the_hub_does_not_answer(
    office: Office, hub: RunningHub, bookings: Bookings
) -> None:
    kiosk = office.kiosk
    day = kiosk._today()
    left = kiosk.book.remaining("taxes", day)
    hub_gone(office, hub)
    office.app.step()
    office.tap("lang", "cs")
    office.app.step()
    office.app.scanned(p.booking_qr("12345678"))
    office.settle()
    outcome = office.app.outcome
    assert outcome is not None
    assert outcome.refused == "checkin_offline"
    assert Catalog.load("cs").text("refused.checkin_offline") in drawn(office)
    assert kiosk.book.remaining("taxes", day) == left  # no offline number was taken
    assert CUT not in office.printer.take()


def test_a_foreign_or_hostile_scan_never_reaches_the_hub(
    office: Office, bookings: Bookings
) -> None:
    for text in ("https://example.com/12345678", "9" * 100_000, "poradovnik:appointment:1"):
        office.later(1)
        office.app.scanned(text)
        office.app.step()
        assert office.app.outcome is not None
        assert office.app.outcome.refused == "not_a_booking"
        assert Catalog.load("sk").text("refused.not_a_booking") in drawn(office)
    # A scanner gone wild fills no memory: scans beyond a few waiting are dropped.
    for _ in range(100):
        office.app.scanned("x")
    assert office.app._scans.qsize() <= 4
    assert bookings.asked == []


def test_a_kiosk_cannot_check_in_under_another_kiosks_id(
    hub: RunningHub, bookings: Bookings, broker: OfficeBroker, tmp_path: Path
) -> None:
    # [device] id "k9" with the account of k1: the broker refuses the check-in unread.
    link = foreign_link(broker, tmp_path)
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        office = open_kiosk(link, loopback, tmp_path, blocks=False)
        try:
            outcome = office.kiosk.check_in("12345678", "sk")
            assert outcome.refused == "checkin_offline"
            assert bookings.asked == []
            assert link.problem is not None
            assert "'k9'" in link.problem
        finally:
            office.kiosk.stop()


def test_the_hubs_own_handler_knows_no_such_booking(
    hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path
) -> None:
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        office = open_kiosk(device("kiosk-k1", start=False), loopback, tmp_path)
        try:
            outcome = office.kiosk.check_in("00000000", "sk")
            assert outcome.refused == "unknown_booking"
            assert outcome.ticket is None
        finally:
            office.kiosk.stop()


@pytest.mark.parametrize(("profile", "lang"), [("TM-T20II", "uk"), ("TM-T88III", "en")])
def test_the_mark_prints_as_text_in_every_profile(profile: str, lang: str) -> None:
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        printer = make_printer(network(loopback, profile), profile)
        ticket = PrintedTicket(
            ticket_id="t1",
            number="B007",
            service_name="Parkovanie",
            issued_at=datetime(2026, 12, 7, 10, 20, tzinfo=ZoneInfo(TZ)),
            people_ahead=2,
            estimated_wait_s=600,
            lang=lang,
            appointment_at=SLOT.astimezone(ZoneInfo(TZ)),
        )
        printed = decode(printer.render(ticket), profile)
        line = Catalog.load(lang).text("ticket.appointment", time="10:30")
        assert f"B007 {APPOINTMENT_MARK}" in printed.texts
        assert f"{APPOINTMENT_MARK} {line}" in printed.texts


def test_a_kiosk_without_check_in_shows_no_button_and_ignores_scans(
    office: Office, bookings: Bookings
) -> None:
    office.app.appointments = False
    office.app.draw()
    assert ("appointment", "") not in buttons(office)
    office.app.scanned(p.booking_qr("12345678"))
    office.app.step()
    assert office.app.state == "start"
    assert bookings.asked == []


def test_the_start_screen_says_to_scan_when_a_scanner_is_there(office: Office) -> None:
    office.app.scanner = True
    office.app.draw()
    assert Catalog.load("sk").text("start.scan") in drawn(office)
    button = next(b for b in office.app.screen.buttons if b.kind == "appointment")
    assert button.rect.height >= 70  # a finger's target on the 7" screen, as the languages

"""Priority at the kiosk end to end: "I need priority", a reason with its pictogram, a
service that allows it; the hub's ticket has the reason, the printed ticket and the
confirmation only a discreet mark. Headless pygame, the real broker and hub, a loopback
printer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pygame
import pytest
from kiosk_helpers import CUT, REPLIES, WAIT_S, Office, hub_back, hub_gone, open_kiosk, wait_until
from office_helpers import RunningHub

from hub.model import Priority
from kiosk.app import KEYPAD_IDLE_S, KioskApp
from kiosk.catalog import LANGUAGES
from kiosk.escpos_text import decode
from kiosk.loopback import LoopbackPrinter
from kiosk.pictograms import REASONS
from lobby.content import PRIORITY_MARK
from sync_agent.link import DeviceLink

pytestmark = pytest.mark.usefixtures("headless_pygame")


def kinds(office: Office) -> list[tuple[str, str]]:
    return [(b.kind, b.value) for b in office.app.screen.buttons]


def forbid_priority(hub: RunningHub, office: Office, service: str) -> None:
    """The admin switches priority tickets of ``service`` off; the kiosk hears of it."""
    changed = dataclasses.replace(hub.queue.engine.services[service], priority_allowed=False)
    hub.queue.save_service(changed)
    wait_until(
        office.kiosk,
        lambda: (
            not next(q for q in office.kiosk.services() if q.service == service).priority_allowed
        ),
    )
    office.app.draw()


def test_a_citizen_takes_a_priority_ticket(office: Office, hub: RunningHub) -> None:
    app = office.app
    assert ("priority", "") in kinds(office)
    assert "Potrebujem prednosť" in [t for t, _ in app.screen.drawn]
    office.tap("priority")
    app.step()
    assert app.state == "priority"
    assert [v for k, v in kinds(office) if k == "reason"] == list(REASONS)
    drawn_text = " ".join(t for t, _ in app.screen.drawn)
    for words in ("Zdravotné postihnutie", "Tehotenstvo", "Vyšší vek", "S malým dieťaťom"):
        assert words in drawn_text
    # Each reason's button carries its pictogram: white strokes left of its words.
    surface = app.screen.surface
    for button in app.screen.buttons:
        if button.kind == "reason":
            icon = pygame.Rect(
                button.rect.left, button.rect.top, button.rect.height, button.rect.height
            )
            white = sum(
                1
                for x in range(icon.left + 10, icon.right - 10, 2)
                for y in range(icon.top + 10, icon.bottom - 10, 2)
                if tuple(surface.get_at((x, y)))[:3] == (255, 255, 255)
            )
            assert white > 40, f"no pictogram on {button.value}"

    office.later(1)
    office.tap("reason", "pregnancy")
    app.step()
    assert app.state == "priority_service"
    assert {v for k, v in kinds(office) if k == "service"} == {"taxes", "waste", "parking", "info"}
    office.later(1)
    office.tap("service", "taxes")
    office.settle()
    outcome = app.outcome
    assert outcome is not None
    assert outcome.ticket is not None
    assert outcome.ticket.priority
    stored = hub.queue.store.ticket(outcome.ticket.ticket_id)
    assert stored is not None
    assert stored.priority is Priority.PREGNANCY
    # The confirmation and the ticket mark it, without the reason.
    drawn = [t for t, _ in app.screen.drawn]
    assert f"{PRIORITY_MARK} Prednostný lístok" in drawn
    assert PRIORITY_MARK in drawn  # beside the number
    assert not any("Tehotenstvo" in t for t in drawn)
    assert office.printer.wait_for(CUT, WAIT_S)
    printed = decode(office.printer.take(), "TM-T20II").texts
    assert f"{outcome.ticket.number} {PRIORITY_MARK}" in printed
    assert not any("Tehot" in line for line in printed)
    # A ticket without priority has no mark.
    office.later(1)
    office.tap("back")
    office.app.step()
    office.later(1)
    office.tap("service", "taxes")
    office.settle()
    assert office.printer.wait_for(CUT, WAIT_S)
    printed = decode(office.printer.take(), "TM-T20II").texts
    assert "A002" in printed
    assert not any(PRIORITY_MARK in line for line in printed)


def test_only_services_that_allow_priority_are_offered(office: Office, hub: RunningHub) -> None:
    forbid_priority(hub, office, "parking")
    office.tap("priority")
    office.app.step()
    office.later(1)
    office.tap("reason", "age")
    office.app.step()
    assert {v for k, v in kinds(office) if k == "service"} == {"taxes", "waste", "info"}
    # Back goes to the start screen.
    office.later(1)
    office.tap("back")
    office.app.step()
    assert office.app.state == "start"
    # With no service allowing it, the start screen offers no priority.
    for code in ("taxes", "waste", "info"):
        forbid_priority(hub, office, code)
    assert ("priority", "") not in kinds(office)
    # A priority request for such a service is refused with a clear text.
    outcome = office.kiosk.issue("taxes", "en", "age")
    assert outcome.refused == "priority_not_offered"


def test_a_citizen_who_walks_away_is_back_at_the_start(office: Office) -> None:
    office.tap("priority")
    office.app.step()
    office.later(1)
    office.tap("reason", "with_child")
    office.app.step()
    assert office.app.state == "priority_service"
    office.later(KEYPAD_IDLE_S + 1)
    office.app.step()
    assert office.app.state == "start"


def test_a_kiosk_set_without_priority_offers_none(office: Office) -> None:
    app = KioskApp(
        office.kiosk,
        office.app.screen,
        office.app.catalogs,
        languages=LANGUAGES,
        priority=False,
    )
    app.draw()
    assert all(b.kind != "priority" for b in app.screen.buttons)
    assert ("appointment", "") in [(b.kind, b.value) for b in app.screen.buttons]


@pytest.mark.parametrize("size", [(800, 480), (1080, 1920)])
def test_every_screen_has_room_for_priority(
    hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path, size: tuple[int, int]
) -> None:
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        office = open_kiosk(device("kiosk-k1", start=False), loopback, tmp_path, size)
        try:
            buttons = office.app.screen.buttons
            entry = next(b.rect for b in buttons if b.kind == "priority")
            others = [b.rect for b in buttons if b.kind != "priority"]
            assert entry.collidelist(others) == -1  # overlaps nothing
            assert min(b.rect.height for b in buttons) >= 60 * min(size) / 480
            office.tap("priority")
            office.app.step()
            reasons = [b.rect for b in office.app.screen.buttons if b.kind == "reason"]
            assert len(reasons) == 4
            assert all(r.height >= 80 * min(size) / 480 for r in reasons)
        finally:
            office.kiosk.stop()


def test_a_priority_ticket_issued_offline_keeps_its_priority(
    office: Office, hub: RunningHub, start_hub: Callable[[], RunningHub]
) -> None:
    kiosk = office.kiosk
    hub_gone(office, hub)  # the broker stays
    outcome = kiosk.issue("taxes", "sk", "disability")
    assert outcome.ticket is not None
    assert outcome.ticket.offline
    assert outcome.ticket.priority
    again = hub_back(office, start_hub)
    stored = again.queue.store.ticket(outcome.ticket.ticket_id)
    assert stored is not None
    assert stored.priority is Priority.DISABILITY

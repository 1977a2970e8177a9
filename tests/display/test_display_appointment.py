"""An appointment's call on the lobby's call screen: the content model keeps the
``appointment`` of the hub's call, and the screen draws the number with its mark, small,
at its top right, in the current call and in the last calls."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pygame
import pytest
from display_helpers import ink

from display.screen import CallScreen, Fonts
from lobby.catalog import LANGUAGES, catalog
from lobby.content import Lobby, Scene
from sync_agent.protocol import Call

FONTS = Path("/usr/share/fonts/truetype/dejavu")


def call(ticket: str, *, appointment: bool) -> Call:
    return Call(
        ticket=ticket,
        ticket_id=ticket,
        counter="2",
        counter_name="Okienko 2",
        service="taxes",
        called_at=datetime.now(UTC),
        recall=False,
        calls=1,
        appointment=appointment,
    )


@pytest.fixture
def screen(headless: None) -> Iterator[CallScreen]:
    pygame.display.init()
    pygame.font.init()
    surface = pygame.display.set_mode((1280, 720))
    catalogs = {lang: catalog(lang) for lang in LANGUAGES}
    yield CallScreen(surface, fonts=Fonts(FONTS), catalogs=catalogs, office="Mestský úrad")
    pygame.quit()


def scene_of(*calls: Call) -> Scene:
    """The scene once ``calls`` were made in turn, the last one current and no longer new."""
    lobby = Lobby(min_show_s=0.0, highlight_s=1.0)
    for n, made in enumerate(calls):
        lobby.call(made)
        lobby.advance(float(n))
    return lobby.scene(100.0)


def test_the_content_model_keeps_the_appointment() -> None:
    scene = scene_of(call("A001", appointment=True), call("A002", appointment=False))
    assert scene.current is not None
    assert not scene.current.appointment
    assert [(c.ticket, c.appointment) for c in scene.history] == [("A001", True)]


def ticket_ink(screen: CallScreen, scene: Scene, box: pygame.Rect) -> pygame.Rect:
    screen.invalidate()
    screen.draw(scene, datetime(2026, 12, 7, 10, 30), 0.0)
    return ink(screen.surface, box, screen.theme.panel)


def test_the_call_screen_marks_an_appointment(screen: CallScreen) -> None:
    main = screen.boxes["ticket"]
    plain = ticket_ink(screen, scene_of(call("A042", appointment=False)), main)
    booked = ticket_ink(screen, scene_of(call("A042", appointment=True)), main)
    # The number, a little smaller to leave room, and the mark beside it at the top.
    assert booked.right > booked.left + plain.width * 0.8
    mark_area = pygame.Rect(booked.right - 2, booked.top, 2, booked.height)
    marked = ink(screen.surface, mark_area, screen.theme.panel)
    assert marked.bottom < booked.top + booked.height * 0.6  # the mark stays in the top part
    assert marked.height < booked.height / 2
    # In the last calls too: the two screens differ only beside the previous call's number.
    history = screen.boxes["history"]
    shots = []
    for appointment in (False, True):
        scene = scene_of(call("B007", appointment=appointment), call("A042", appointment=False))
        ticket_ink(screen, scene, screen.boxes["ticket"])
        shots.append(screen.surface.copy())
    differ = [
        (x, y)
        for x in range(history.left, history.right)
        for y in range(history.top, history.bottom)
        if shots[0].get_at((x, y)) != shots[1].get_at((x, y))
    ]
    assert differ, "the previous appointment's call is not marked"
    row_h = history.height // (screen.history + 1)
    first_row = pygame.Rect(history.left, history.top + row_h, history.width, row_h)
    assert all(first_row.collidepoint(point) for point in differ)
    assert max(y for _, y in differ) < first_row.centery + row_h // 8  # the row's upper part


def test_only_an_appointment_is_marked(screen: CallScreen) -> None:
    # The mark is drawn from the call, not kept from an earlier one.
    first = ticket_ink(screen, scene_of(call("A042", appointment=True)), screen.boxes["ticket"])
    again = ticket_ink(screen, scene_of(call("A042", appointment=False)), screen.boxes["ticket"])
    assert first != again

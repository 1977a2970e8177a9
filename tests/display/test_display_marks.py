"""A marked call on the lobby's call screen: the content model keeps the hub's
``appointment`` (■), ``priority`` (») and ``remote`` (▲) of the call, and the screen draws
the number with its mark, small, at its top right, in the current call and in the last
calls."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pygame
import pytest
from display_helpers import ink
from lobby_helpers import lobby_call, scene_of

from display.screen import CallScreen, Fonts
from lobby.catalog import LANGUAGES, catalog
from lobby.content import APPOINTMENT_MARK, PRIORITY_MARK, REMOTE_MARK, Scene

FONTS = Path("/usr/share/fonts/truetype/dejavu")

MARKS = pytest.mark.parametrize(
    ("kind", "mark"),
    [("appointment", APPOINTMENT_MARK), ("priority", PRIORITY_MARK), ("remote", REMOTE_MARK)],
)


@pytest.fixture
def screen(headless: None) -> Iterator[CallScreen]:
    pygame.display.init()
    pygame.font.init()
    surface = pygame.display.set_mode((1280, 720))
    catalogs = {lang: catalog(lang) for lang in LANGUAGES}
    yield CallScreen(surface, fonts=Fonts(FONTS), catalogs=catalogs, office="Mestský úrad")
    pygame.quit()


def ticket_ink(screen: CallScreen, scene: Scene, box: pygame.Rect) -> pygame.Rect:
    screen.invalidate()
    screen.draw(scene, datetime(2026, 12, 7, 10, 30), 0.0)
    return ink(screen.surface, box, screen.theme.panel)


@MARKS
def test_the_content_model_keeps_the_mark(kind: str, mark: str) -> None:
    scene = scene_of(lobby_call("A001", **{kind: True}), lobby_call("A002"))
    assert scene.current is not None
    assert not getattr(scene.current, kind)
    assert (scene.current.mark, scene.current.marks) == ("", ())
    [old] = scene.history
    assert (old.ticket, getattr(old, kind)) == ("A001", True)
    assert (old.mark, old.marks) == (mark, ((kind, mark),))


def test_the_content_model_keeps_an_appointments_mark_beside_a_remote_one() -> None:
    scene = scene_of(lobby_call("A001", remote=True), lobby_call("A002", appointment=True))
    assert scene.current is not None
    assert scene.current.marks == (("appointment", APPOINTMENT_MARK),)
    [old] = scene.history
    assert (old.mark, old.marks) == (REMOTE_MARK, (("remote", REMOTE_MARK),))


@MARKS
def test_the_call_screen_marks_the_call(screen: CallScreen, kind: str, mark: str) -> None:
    main = screen.boxes["ticket"]
    plain = ticket_ink(screen, scene_of(lobby_call("A042")), main)
    marked = ticket_ink(screen, scene_of(lobby_call("A042", **{kind: True})), main)
    assert marked != plain
    # The number, a little smaller to leave room, and the mark beside it at the top.
    assert marked.right > marked.left + plain.width * 0.8
    mark_area = pygame.Rect(marked.right - 2, marked.top, 2, marked.height)
    drawn = ink(screen.surface, mark_area, screen.theme.panel)
    assert drawn.bottom < marked.top + marked.height * 0.6  # the mark stays in the top part
    assert drawn.height < marked.height / 2  # small, beside the number
    # In the last calls too: the two screens differ only beside the previous call's number.
    history = screen.boxes["history"]
    shots = []
    for flag in (False, True):
        scene = scene_of(lobby_call("B007", **{kind: flag}), lobby_call("A042"))
        ticket_ink(screen, scene, screen.boxes["ticket"])
        shots.append(screen.surface.copy())
    differ = [
        (x, y)
        for x in range(history.left, history.right)
        for y in range(history.top, history.bottom)
        if shots[0].get_at((x, y)) != shots[1].get_at((x, y))
    ]
    assert differ, f"the previous {kind} call is not marked with {mark}"
    row_h = history.height // (screen.history + 1)
    first_row = pygame.Rect(history.left, history.top + row_h, history.width, row_h)
    assert all(first_row.collidepoint(point) for point in differ)
    assert max(y for _, y in differ) < first_row.centery + row_h // 8  # the row's upper part


@MARKS
def test_only_a_marked_call_is_marked(screen: CallScreen, kind: str, mark: str) -> None:
    # The mark is drawn from the call, not kept from an earlier one.
    box = screen.boxes["ticket"]
    first = ticket_ink(screen, scene_of(lobby_call("A042", **{kind: True})), box)
    again = ticket_ink(screen, scene_of(lobby_call("A042")), box)
    assert first != again, mark

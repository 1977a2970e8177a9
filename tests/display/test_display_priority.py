"""A priority ticket's call on the lobby's call screen: the content model keeps only that
the ticket has priority, and the screen draws a small mark beside its number."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pygame
import pytest
from display_helpers import ink

from display.screen import CallScreen, Fonts
from lobby.catalog import LANGUAGES, catalog
from lobby.content import PRIORITY_MARK, Lobby, Scene
from sync_agent.protocol import Call

FONTS = Path("/usr/share/fonts/truetype/dejavu")


def call(ticket: str, *, priority: bool) -> Call:
    return Call(
        ticket=ticket,
        ticket_id=ticket,
        counter="2",
        counter_name="Okienko 2",
        service="taxes",
        called_at=datetime.now(UTC),
        recall=False,
        calls=1,
        priority=priority,
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
    lobby = Lobby(min_show_s=0.0, highlight_s=1.0)
    for n, made in enumerate(calls):
        lobby.call(made)
        lobby.advance(float(n))
    return lobby.scene(100.0)


def test_the_content_model_keeps_the_priority() -> None:
    scene = scene_of(call("A001", priority=True), call("A002", priority=False))
    assert scene.current is not None
    assert scene.current.mark == ""
    assert [(c.ticket, c.mark) for c in scene.history] == [("A001", PRIORITY_MARK)]


def test_the_call_screen_marks_a_priority_ticket_small(screen: CallScreen) -> None:
    box = screen.boxes["ticket"]

    def drawn(scene: Scene) -> pygame.Rect:
        screen.invalidate()
        screen.draw(scene, datetime(2026, 12, 7, 10, 30), 0.0)
        return ink(screen.surface, box, screen.theme.panel)

    plain = drawn(scene_of(call("A042", priority=False)))
    marked = drawn(scene_of(call("A042", priority=True)))
    assert marked != plain
    mark_area = pygame.Rect(marked.right - 2, marked.top, 2, marked.height)
    mark = ink(screen.surface, mark_area, screen.theme.panel)
    assert mark.height < marked.height / 2  # small, beside the number
    assert mark.bottom < marked.top + marked.height * 0.6

"""The pairing screen of the kiosk and the lobby display: the code a new device shows."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from common.sdl import pygame
from common.settings import load_settings
from display import app as display_app
from kiosk import app as kiosk_app
from kiosk.catalog import LANGUAGES, Catalog
from lobby.catalog import catalog
from sync_agent.pairing_screen import PairingFonts, PairingTexts, draw_pairing
from sync_agent.provisioning import DevicePairing, PairingState

pytestmark = pytest.mark.usefixtures("headless_pygame")

FONTS = Path("/usr/share/fonts/truetype/dejavu")


def inked(surface: pygame.Surface, rect: pygame.Rect) -> bool:
    """Whether something other than the background is drawn in ``rect``."""
    background = surface.get_at((0, 0))
    return any(
        surface.get_at((x, y)) != background
        for x in range(rect.left, rect.right, 2)
        for y in range(rect.top, rect.bottom, 2)
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_code_and_the_state_are_drawn_in_every_language(lang: str) -> None:
    kiosk_texts = Catalog.load(lang)
    display_texts = catalog(lang)
    for state in PairingState:  # both roles have every text
        assert kiosk_texts.has(f"pairing.{state.value}")
        assert display_texts.label(f"pairing_{state.value}")
    states = {state: kiosk_texts.text(f"pairing.{state.value}") for state in PairingState}
    texts = PairingTexts(kiosk_texts.text("pairing.title"), states)
    surface = pygame.Surface((800, 480))
    placed = draw_pairing(
        surface, PairingFonts(FONTS, 480), texts, PairingState.NO_BROKER, "483127"
    )
    assert [text for text, _ in placed] == [texts.title, "483 127", states[PairingState.NO_BROKER]]
    for _, rect in placed:
        assert surface.get_rect().contains(rect)  # nothing cut off at 800×480
        assert inked(surface, rect)


class OneFrame(threading.Event):
    """A stop event that the screen's first wait sets: exactly one frame is drawn."""

    def wait(self, timeout: float | None = None) -> bool:
        self.set()
        return True


@pytest.mark.parametrize(
    ("module", "section"),
    [
        (kiosk_app, "[kiosk]\nfullscreen = false\nwidth = 800\nheight = 480\n"),
        (display_app, '[display]\nvideo_driver = "dummy"\nfullscreen = false\n'),
    ],
)
def test_a_role_shows_its_code_on_its_screen(tmp_path: Path, module: object, section: str) -> None:
    role = "kiosk" if module is kiosk_app else "display"
    path = tmp_path / "device.toml"
    path.write_text(f'role = "{role}"\n[data]\ndir = "{tmp_path}"\n{section}')
    settings = load_settings(path, env={})
    pairing = DevicePairing(settings, path)
    module.show_pairing(settings, pairing, OneFrame())  # type: ignore[attr-defined]
    screen = pygame.display.get_surface()
    assert screen is not None  # the role's own screen was opened
    width, height = screen.get_size()
    code_band = pygame.Rect(width // 4, height * 2 // 5, width // 2, height // 5)
    assert inked(screen, code_band)  # the code, in large type across the middle


def test_nothing_is_drawn_once_the_pairing_is_done(tmp_path: Path) -> None:
    path = tmp_path / "device.toml"
    path.write_text(f'role = "kiosk"\n[data]\ndir = "{tmp_path}"\n[kiosk]\nfullscreen = false\n')
    settings = load_settings(path, env={})
    pairing = DevicePairing(settings, path)
    pairing.done.set()
    kiosk_app.show_pairing(settings, pairing, OneFrame())
    screen = pygame.display.get_surface()
    assert screen is not None
    assert not inked(screen, screen.get_rect())

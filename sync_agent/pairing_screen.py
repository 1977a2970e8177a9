"""The screen a kiosk or a lobby display shows until it is paired with the hub.

A new device has no broker account yet; ``poradovnik kiosk|display`` then pair it
first (:mod:`sync_agent.provisioning`) and call the role's
``show_pairing``, which opens the role's screen and hands it to :func:`show_pairing_code`
with the texts from the role's own catalog. The code is what the admin types on the
hub's Devices page. Only the screen roles import this module (it needs pygame).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.sdl import pygame
from sync_agent.provisioning import DevicePairing, PairingState, format_code

__all__ = ["PairingFonts", "PairingTexts", "draw_pairing", "show_pairing_code"]

BACKGROUND = (16, 24, 40)
FOREGROUND = (255, 255, 255)
MUTED = (190, 200, 215)

REDRAW_S = 0.25
"""How often the screen looks at the pairing's state (and the window's events)."""


@dataclass(frozen=True)
class PairingTexts:
    """What the pairing screen says, in the device's language."""

    title: str
    """Above the code: what to do with it."""
    states: Mapping[PairingState, str]
    """Under the code: where the pairing stands."""


def show_pairing_code(
    surface: pygame.Surface,
    pairing: DevicePairing,
    texts: PairingTexts,
    stop: threading.Event,
    *,
    font_dir: Path,
) -> None:
    """Show the pairing code on ``surface`` until the pairing is done or ``stop`` is set.

    Closing the window sets ``stop``. ``font_dir`` holds the DejaVu fonts.
    """
    fonts = PairingFonts(font_dir, surface.get_height())
    shown: tuple[PairingState, str] | None = None
    while not (pairing.done.is_set() or stop.is_set()):
        if pygame.event.peek(pygame.QUIT):
            stop.set()
            break
        pygame.event.pump()
        now = (pairing.state, pairing.code)
        if now != shown:
            shown = now
            draw_pairing(surface, fonts, texts, *now)
            pygame.display.flip()
        stop.wait(REDRAW_S)


class PairingFonts:
    """The pairing screen's two fonts, sized for a screen ``height`` pixels high."""

    def __init__(self, font_dir: Path, height: int) -> None:
        self.regular = pygame.font.Font(str(font_dir / "DejaVuSans.ttf"), max(16, height // 18))
        self.big = pygame.font.Font(str(font_dir / "DejaVuSans-Bold.ttf"), max(32, height // 4))


def draw_pairing(
    surface: pygame.Surface,
    fonts: PairingFonts,
    texts: PairingTexts,
    state: PairingState,
    code: str,
) -> list[tuple[str, pygame.Rect]]:
    """Draw the title, the code (spaced) and the state; return each text and its place."""
    width, height = surface.get_size()
    surface.fill(BACKGROUND)
    lines = (
        (fonts.regular, texts.title, FOREGROUND, 0.25),
        (fonts.big, format_code(code), FOREGROUND, 0.5),
        (fonts.regular, texts.states.get(state, str(state)), MUTED, 0.8),
    )
    placed = []
    for font, text, colour, at in lines:
        drawn = font.render(text, True, colour)
        rect = drawn.get_rect(center=(width // 2, round(height * at)))
        surface.blit(drawn, rect)
        placed.append((text, rect))
    return placed

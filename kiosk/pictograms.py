"""The pictograms of the reasons for priority, drawn with pygame's primitives.

Each reason the kiosk offers (:data:`REASONS`) has a pictogram in the style of the public
signs citizens know from buses and offices: a person in a wheelchair (the international
symbol of access), a pregnant woman, an older person with a walking stick, and an adult
holding a child's hand. They are drawn as thick strokes and discs in one colour, scaled to
any square, so they stay sharp on every screen and follow the screen's colours.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

from common.sdl import pygame

__all__ = ["REASONS", "draw"]

Color = tuple[int, int, int]
Point = tuple[float, float]

REASONS: tuple[str, ...] = ("disability", "pregnancy", "age", "with_child")
"""The reasons for priority a citizen chooses at the kiosk, in button order (the protocol's
``other`` stays with the clerks)."""


class _Pen:
    """Draws on ``box`` in coordinates from 0 to 1, strokes ``width`` (a share of the box)."""

    def __init__(self, surface: pygame.Surface, box: pygame.Rect, color: Color) -> None:
        self.surface = surface
        self.box = box
        self.color = color
        self.size = min(box.width, box.height)

    def at(self, point: Point) -> tuple[int, int]:
        """Where ``point`` of the unit square falls on the screen."""
        left = self.box.centerx - self.size / 2
        top = self.box.centery - self.size / 2
        return round(left + point[0] * self.size), round(top + point[1] * self.size)

    def disc(self, centre: Point, radius: float) -> None:
        """A filled circle."""
        pygame.draw.circle(
            self.surface, self.color, self.at(centre), max(1, round(radius * self.size))
        )

    def stroke(self, *points: Point, width: float = 0.07) -> None:
        """A thick line through ``points``, with round joints and ends."""
        px = max(2, round(width * self.size))
        spots = [self.at(point) for point in points]
        for a, b in itertools.pairwise(spots):
            pygame.draw.line(self.surface, self.color, a, b, px)
        for spot in spots:
            pygame.draw.circle(self.surface, self.color, spot, px // 2)

    def arc(self, centre: Point, radius: float, start: float, stop: float, width: float) -> None:
        """An arc of a circle from ``start`` to ``stop`` degrees (counter-clockwise, 0 = east)."""
        steps = max(8, round(abs(stop - start) / 6))
        points = [
            (
                centre[0] + radius * math.cos(math.radians(start + (stop - start) * n / steps)),
                centre[1] - radius * math.sin(math.radians(start + (stop - start) * n / steps)),
            )
            for n in range(steps + 1)
        ]
        self.stroke(*points, width=width)


def _disability(pen: _Pen) -> None:
    """The international symbol of access: a person in a wheelchair, facing right."""
    pen.disc((0.42, 0.13), 0.085)
    pen.stroke((0.40, 0.28), (0.40, 0.56), (0.66, 0.56), (0.76, 0.84), (0.86, 0.84), width=0.09)
    pen.stroke((0.40, 0.38), (0.60, 0.38), width=0.07)
    pen.arc((0.40, 0.68), 0.24, 110, 380, width=0.07)


def _pregnancy(pen: _Pen) -> None:
    """A pregnant woman in profile, facing right."""
    pen.disc((0.48, 0.13), 0.085)
    pen.stroke((0.46, 0.28), (0.44, 0.62), width=0.12)
    pen.disc((0.53, 0.49), 0.12)
    pen.stroke((0.44, 0.62), (0.40, 0.92), width=0.08)
    pen.stroke((0.50, 0.62), (0.54, 0.92), width=0.08)
    pen.stroke((0.46, 0.34), (0.58, 0.46), width=0.06)


def _age(pen: _Pen) -> None:
    """An older person, a little bent, with a walking stick, facing right."""
    pen.disc((0.46, 0.14), 0.085)
    pen.stroke((0.42, 0.28), (0.40, 0.58), width=0.11)
    pen.stroke((0.40, 0.58), (0.32, 0.92), width=0.08)
    pen.stroke((0.40, 0.58), (0.50, 0.92), width=0.08)
    pen.stroke((0.43, 0.34), (0.62, 0.52), width=0.06)
    pen.stroke((0.64, 0.50), (0.66, 0.93), width=0.05)


def _with_child(pen: _Pen) -> None:
    """An adult holding a small child's hand."""
    pen.disc((0.34, 0.12), 0.08)
    pen.stroke((0.34, 0.26), (0.34, 0.58), width=0.11)
    pen.stroke((0.34, 0.58), (0.27, 0.92), width=0.08)
    pen.stroke((0.34, 0.58), (0.41, 0.92), width=0.08)
    pen.stroke((0.34, 0.32), (0.52, 0.56), (0.62, 0.60), width=0.06)
    pen.disc((0.70, 0.45), 0.06)
    pen.stroke((0.70, 0.56), (0.70, 0.76), width=0.09)
    pen.stroke((0.70, 0.76), (0.65, 0.93), width=0.06)
    pen.stroke((0.70, 0.76), (0.75, 0.93), width=0.06)


_DRAWINGS: dict[str, Callable[[_Pen], None]] = {
    "disability": _disability,
    "pregnancy": _pregnancy,
    "age": _age,
    "with_child": _with_child,
}


def draw(surface: pygame.Surface, reason: str, box: pygame.Rect, color: Color) -> None:
    """Draw the pictogram of ``reason`` (one of :data:`REASONS`) centred in ``box``."""
    _DRAWINGS[reason](_Pen(surface, box, color))

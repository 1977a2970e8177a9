"""The kiosk's touch screen, drawn with pygame: start, keypad, busy and confirmation screens.

Laid out from the screen's size, for the Raspberry Pi's 7" touch screen (800×480,
two columns of services) and a portrait screen (1080×1920, one column), scaling
to others. Following EN 301 549 for self-service terminals: large touch targets
(at least 80 px, ~15 mm, on the 7" screen), light text on dark ground with high
contrast, a printer fault both in words and in colour, and optional speech.
Every text comes from the message catalogs.

The accessibility button, at the bottom left of every screen, switches the screen
to its accessible mode, a property of the theme and the layout rather than of any one
screen: :data:`ACCESSIBLE` (high contrast, and text no smaller than
:attr:`Screen.large_px`, whose capital H subtends 0.7° at the viewing distance on this
screen's pixels, EN 301 549 5.1.4) and every control within the reach zone, the screen's
lower part (see :meth:`Screen.reach_zone`). Each screen is then a list of :class:`Row`
of large buttons (:class:`Control`) and texts (:class:`Line`), paged where it does not
fit, never shrunk. What each screen says aloud (:meth:`Screen.announcement`) and what
each button says under the finger (:meth:`Screen.label`) come from the texts it drew,
so a new screen gets all of it by drawing through :meth:`Screen.text` or its list.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from common.i18n import service_name
from common.sdl import pygame
from kiosk import pictograms
from kiosk.catalog import Catalog, spoken_number, wait_minutes
from kiosk.dispenser import Outcome
from kiosk.fonts import font_path
from kiosk.printer import PrintedTicket, wait_text
from lobby.content import APPOINTMENT_MARK, PRIORITY_MARK
from sync_agent.protocol import QueueState

__all__ = [
    "ACCESSIBLE",
    "STANDARD",
    "Button",
    "Control",
    "Line",
    "Row",
    "Screen",
    "Theme",
    "capital_size",
    "required_cap_mm",
]

Color = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Theme:
    """The colours and text sizes of a mode of the screen.

    Every pair of a text colour and the ground it is drawn on has a contrast of at
    least 4.5:1 (WCAG relative luminance; tests check the rendered pixels).
    """

    background: Color
    button: Color
    edge: Color
    disabled: Color
    text: Color
    dim_text: Color
    number: Color
    selected: Color
    fault: Color
    ok: Color
    priority: Color
    """The ground of the priority's buttons (its pictograms and words in :attr:`text`)."""
    focus: Color
    """The ring around the button a finger explored (the accessible mode)."""
    text_scale: float
    """Every text's size is multiplied by this."""
    min_size: float
    """Texts too wide for their place shrink no smaller than this (units); they wrap."""
    edge_width: float
    """A button's edge, in units."""


STANDARD = Theme(
    background=(12, 24, 52),
    button=(24, 78, 160),
    edge=(255, 255, 255),
    disabled=(58, 62, 70),
    text=(255, 255, 255),
    dim_text=(214, 218, 226),
    number=(255, 214, 0),
    selected=(255, 214, 0),
    fault=(176, 0, 32),
    ok=(0, 110, 60),
    priority=(92, 44, 140),
    focus=(255, 214, 0),
    text_scale=1.0,
    min_size=6.0,
    edge_width=2.0,
)
"""Light text on a dark blue ground."""

ACCESSIBLE = Theme(
    background=(0, 0, 0),
    button=(0, 0, 0),
    edge=(255, 255, 255),
    disabled=(64, 64, 64),
    text=(255, 255, 255),
    dim_text=(255, 255, 255),
    number=(255, 255, 0),
    selected=(255, 255, 0),
    fault=(170, 0, 0),
    ok=(0, 100, 0),
    priority=(80, 0, 120),
    focus=(255, 255, 0),
    text_scale=1.5,
    min_size=17.0,
    edge_width=4.0,
)
"""High contrast: white and yellow on black, thick edges, larger text (the accessible mode)."""

ACCESS_SIZE = 76
"""The accessibility button's height (units); the screens are laid out beside it."""

ACCESS_MARK = "\u267f"
"""The accessibility button's pictogram (the wheelchair symbol)."""

_GAP = 10

_OVERHANG = 1.25
"""A text's line may be this much taller than its box (the font's room above capitals
and below the baseline is mostly empty); a taller one shrinks."""

VIEWING_ANGLE_DEG = 0.7
"""The least angle a capital letter subtends at the viewing distance (EN 301 549 5.1.4)."""

REFERENCE_PIXEL_MM = 85.92 / 480
"""How tall a pixel of the reference screen is: the Raspberry Pi 7" Touch Display's active
area is 154.08 × 85.92 mm at 800×480."""

NOTE_ROOM = 56
"""The room (units) the confirmation keeps for its note above "Done"."""


CLOSED_CODES = frozenset({"service_closed", "outside_hours", "cut_off"})
"""Refusals after which the screen says when the service opens next."""


def required_cap_mm(distance_mm: float) -> float:
    """How tall a capital letter must be to subtend :data:`VIEWING_ANGLE_DEG` from afar.

    ``distance_mm`` is the viewing distance: 6.1 mm at 500 mm.
    """
    return 2 * distance_mm * math.tan(math.radians(VIEWING_ANGLE_DEG / 2))


def opening(state: QueueState, texts: Catalog) -> str:
    """When a closed service opens next; its hours when the hub does not say."""
    if state.opens_at is not None:
        return texts.opening(state.opens_at, state.at)
    return texts.text("start.hours", hours=texts.hours(state.hours))


def sentences(texts: Iterable[str]) -> str:
    """Texts as one thing to say: each ends as a sentence, the empty ones left out."""
    said = [t.strip() for t in texts if t.strip()]
    return " ".join(t if t[-1] in ".!?:…" else f"{t}." for t in said)


@dataclass(frozen=True, slots=True)
class Button:
    """A touch target: where it is and what it does.

    Kinds: ``service``, ``lang``, ``back``, ``appointment`` (the keypad), ``key`` (a key of
    the keypad: a digit, ``del``, ``ok`` or ``cancel``), ``walk_in`` (a service's ticket
    instead of a late appointment), ``priority`` ("I need priority"), ``reason`` (a reason
    for priority), ``off`` (a button that is off), ``page`` (``previous`` or ``next`` page of
    the accessible mode's list). ``access`` is the accessibility button.
    """

    rect: pygame.Rect
    kind: str
    value: str = ""
    spoken: str | None = None
    """What the button says under the finger; ``None``: the texts drawn on it."""


@dataclass(frozen=True, slots=True)
class Line:
    """A text of the accessible mode's list.

    ``size`` units as usual (times the theme's scale), never smaller than
    :attr:`Screen.large_px`.
    """

    text: str
    size: float
    bold: bool = False
    color: Color | None = None
    spoken: str | None = None
    """What it says aloud when not the text itself ("" for nothing)."""


@dataclass(frozen=True, slots=True)
class Control:
    """A button of the accessible mode's list: its :class:`Line` texts, stacked."""

    kind: str
    value: str
    lines: tuple[Line, ...]
    color: Color | None = None
    spoken: str | None = None
    icon: str | None = None
    """A pictogram (:mod:`kiosk.pictograms`) at the button's left."""


@dataclass(frozen=True, slots=True)
class Row:
    """A row of the accessible mode's list: texts, or controls side by side.

    As many controls as fit their words go on one row; the others go to the next rows.
    """

    lines: tuple[Line, ...] = ()
    controls: tuple[Control, ...] = ()
    ground: Color | None = None
    """The texts' ground, when not the screen's (a fault's banner)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where an accessible screen's list goes: its heading and its rows, by page."""

    heading: tuple[Line, ...]
    top: int
    """Where the heading begins."""
    height: int
    """How tall the heading is."""
    rows: list[Row]
    heights: list[int]
    pages: list[list[tuple[int, int]]]
    """Each page's rows: their index and their top."""


_PAGE = Line("", 17, bold=True)
"""How the page buttons' words are drawn: the size of a service's detail."""


def _kind_line(ticket: PrintedTicket, texts: Catalog) -> tuple[str, str] | None:
    """The confirmation's line for a booked appointment (its time) or a priority ticket.

    Its mark and its words: the words alone are said aloud.
    """
    if ticket.appointment_at is not None:
        at = f"{ticket.appointment_at:%H:%M}"
        return APPOINTMENT_MARK, texts.text("confirm.appointment", time=at)
    if ticket.priority:
        return PRIORITY_MARK, texts.text("confirm.priority")
    return None


@functools.cache
def capital_size(fonts: tuple[Path, ...], cap_px: int) -> int:
    """The smallest font size (px) whose capital H is ``cap_px`` tall in each of ``fonts``.

    Measured from the glyphs' metrics as rendered (hinted), not from a ratio guessed for
    the font; the fonts opened to measure are closed again.
    """
    px = cap_px
    while True:
        caps = []
        for path in fonts:
            ((_, _, bottom, top, _),) = pygame.font.Font(path, px).metrics("H")
            caps.append(top - bottom)
        if min(caps) >= cap_px:
            return px
        px += 1


def _wrap(text: str, font: pygame.font.Font, width: int) -> list[str]:
    """``text``'s words in lines no wider than ``width`` (a word wider stays on its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.size(f"{lines[-1]} {word}")[0] <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _refusal(outcome: Outcome, texts: Catalog, state: QueueState | None) -> str:
    """Why the hub refused, and when a closed service opens next (from its ``state``)."""
    why = texts.text(f"refused.{outcome.refused}")
    if outcome.refused in CLOSED_CODES and state is not None:
        why = f"{why} {opening(state, texts)}."
    return why


class Screen:
    """Draws the kiosk's screens on ``surface`` and tells which button a tap hit."""

    def __init__(
        self,
        surface: pygame.Surface,
        *,
        font_dir: Path,
        office: str,
        access: bool = True,
        reach_top: float | None = None,
        screen_height_mm: float | None = None,
        viewing_distance_mm: float = 500.0,
    ) -> None:
        self.surface = surface
        self.office = office
        self.regular = font_path(font_dir)
        self.bold = font_path(font_dir, bold=True)
        self.buttons: list[Button] = []
        self.drawn: list[tuple[str, pygame.Rect]] = []
        """Every text of the last screen and where it went (for tests and diagnosis)."""
        self.glyphs: list[pygame.Rect] = []
        """Where the glyphs of each text of :attr:`drawn` are (their ink, not their line)."""
        self.voiced: list[tuple[str, pygame.Rect]] = []
        """What each text of :attr:`drawn` says aloud ("" for nothing), and where it is."""
        self.access = access
        """Whether the accessibility button is on every screen."""
        self.accessible = False
        """The accessible mode: :data:`ACCESSIBLE` laid out within :meth:`reach_zone`."""
        self.access_labels = ("", "", "")
        """The accessibility button's name on a portrait screen, and what it says under the
        finger when the mode is off and when it is on (from the app's catalogs)."""
        width, height = surface.get_size()
        self.portrait = height > width
        self.reach_top = (0.3 if self.portrait else 0.2) if reach_top is None else reach_top
        """Where the reach zone begins, as a fraction of the screen's height."""
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        pixel_mm = REFERENCE_PIXEL_MM if screen_height_mm is None else screen_height_mm / height
        self.cap_mm = required_cap_mm(viewing_distance_mm)
        """How tall the accessible mode's capital letters are at least, in millimetres."""
        self.cap_px = math.ceil(self.cap_mm / pixel_mm)
        """The same in pixels of this screen."""
        self.large_px = capital_size((self.regular, self.bold), self.cap_px)
        """The accessible mode's smallest text (pixels): its capital H is :attr:`cap_px` tall."""
        self.page = 0
        """The page of the accessible mode's list shown (from 0); the app turns it."""
        self.pages = 1
        """How many pages the last screen drawn has."""
        self.further: list[str] = []
        """What the pages after the one shown say (their texts not on buttons)."""
        self.unit = 1.0
        self._layout()

    @property
    def theme(self) -> Theme:
        """The colours and text sizes of the current mode."""
        return ACCESSIBLE if self.accessible else STANDARD

    def reach_zone(self) -> pygame.Rect:
        """Where every control of the accessible mode lies: the screen below :attr:`reach_top`."""
        full = self.surface.get_rect()
        top = round(full.height * self.reach_top)
        return pygame.Rect(full.left, top, full.width, full.height - top)

    def _layout(self) -> pygame.Rect:
        """The zone of the current mode; sets :attr:`unit` so 480 units fit its content.

        The accessibility button takes a band along the bottom of a portrait screen and
        a column on the left of a landscape one; the screens get the rest.
        """
        zone = self.reach_zone() if self.accessible else self.surface.get_rect()
        reserved = 480 + ACCESS_SIZE + _GAP if self.access else 480
        if self.portrait:
            self.unit = min(zone.width / 480, zone.height / reserved)
        else:
            self.unit = min(zone.height / 480, zone.width / reserved)
        return zone

    # -- drawing helpers -------------------------------------------------------------

    def font(self, size: float, *, bold: bool = False) -> pygame.font.Font:
        """DejaVu Sans at ``size`` units (1 unit is 1 px on a 480 px tall screen)."""
        return self.font_px(max(8, round(size * self.unit)), bold=bold)

    def font_px(self, px: int, *, bold: bool = False) -> pygame.font.Font:
        """DejaVu Sans at ``px`` pixels."""
        key = (px, bold)
        font = self._fonts.get(key)
        if font is None:
            font = self._fonts[key] = pygame.font.Font(self.bold if bold else self.regular, px)
        return font

    def text(
        self,
        text: str,
        size: float,
        box: pygame.Rect,
        *,
        bold: bool = False,
        color: Color | None = None,
        align: str = "center",
        spoken: str | None = None,
    ) -> pygame.Rect:
        """Draw ``text`` in ``box``; return where it went.

        In the theme's text colour unless ``color``; shrunk until it fits, but not below
        the theme's smallest size, where it wraps. ``spoken`` is what it says aloud when
        not the text itself ("" for nothing).
        """
        theme = self.theme
        floor = self._floor()
        size = max(size * theme.text_scale, floor)
        font = self.font(size, bold=bold)
        while (
            font.size(text)[0] > box.width or font.get_height() > box.height * _OVERHANG
        ) and size * 0.9 >= floor:
            size *= 0.9
            font = self.font(size, bold=bold)
        if font.size(text)[0] > box.width and " " in text.strip():
            size /= theme.text_scale
            return self.wrapped(text, size, box, bold=bold, color=color, spoken=spoken)
        return self._render(text, font, box, color, align, spoken)

    def _floor(self) -> float:
        """The smallest text of the current mode (units): the accessible mode's is large."""
        if self.accessible:
            return max(self.theme.min_size, self.large_px / self.unit)
        return self.theme.min_size

    def _render(
        self,
        text: str,
        font: pygame.font.Font,
        box: pygame.Rect,
        color: Color | None,
        align: str,
        spoken: str | None,
    ) -> pygame.Rect:
        """Draw one line of ``text`` in ``font`` centred on ``box``; return where it went."""
        image = font.render(text, True, self.theme.text if color is None else color)
        rect = image.get_rect()
        rect.centery = box.centery
        if align == "left":
            rect.left = box.left
        else:
            rect.centerx = box.centerx
        self.surface.blit(image, rect)
        self.drawn.append((text, rect))
        self.glyphs.append(image.get_bounding_rect().move(rect.topleft))
        self.voiced.append((text if spoken is None else spoken, rect))
        return rect

    def wrapped(
        self,
        text: str,
        size: float,
        box: pygame.Rect,
        *,
        bold: bool = False,
        color: Color | None = None,
        spoken: str | None = None,
    ) -> pygame.Rect:
        """Draw ``text`` in ``box`` over as many centred lines as it needs; return where."""
        theme = self.theme
        while True:
            font = self.font(size * theme.text_scale, bold=bold)
            lines = _wrap(text, font, box.width)
            height = font.get_linesize()
            if height * len(lines) <= box.height or size * theme.text_scale * 0.9 < self._floor():
                break
            size *= 0.9
        top = box.centery - height * len(lines) / 2
        where = pygame.Rect(box.centerx, round(top), 0, 0)
        for n, line in enumerate(lines):
            row = pygame.Rect(box.left, round(top + n * height), box.width, height)
            where.union_ip(self.text(line, size, row, bold=bold, color=color, spoken=""))
        if lines:
            self.voiced[-1] = (text if spoken is None else spoken, where)
        return where

    def button(
        self,
        rect: pygame.Rect,
        kind: str,
        value: str,
        color: Color | None = None,
        *,
        spoken: str | None = None,
    ) -> None:
        """Draw a button's ground and edge, and remember it as a touch target.

        The ground is the theme's button colour unless ``color``; ``spoken``: see
        :attr:`Button.spoken`.
        """
        theme = self.theme
        radius = round(10 * self.unit)
        ground = theme.button if color is None else color
        pygame.draw.rect(self.surface, ground, rect, border_radius=radius)
        edge = max(2, round(theme.edge_width * self.unit))
        pygame.draw.rect(self.surface, theme.edge, rect, edge, radius)
        self.buttons.append(Button(rect, kind, value, spoken))

    def _begin(self) -> pygame.Rect:
        """Clear the screen for a new one: its ground, the accessibility button.

        Returns the area the screen lays itself out in (within the reach zone when
        accessible).
        """
        self.surface.fill(self.theme.background)
        self.buttons = []
        self.drawn = []
        self.glyphs = []
        self.voiced = []
        self.further = []
        self.pages = 1
        zone = self._layout()
        area = zone.inflate(-round(24 * self.unit), -round(16 * self.unit))
        if not self.access:
            return area
        size, gap = round(ACCESS_SIZE * self.unit), round(_GAP * self.unit)
        if self.portrait:
            rect = pygame.Rect(area.left, area.bottom - size, round(area.width * 0.45), size)
            area.height -= size + gap
        else:
            rect = pygame.Rect(area.left, area.bottom - size, size, size)
            area.width -= size + gap
            area.left += size + gap
        name, *spoken = self.access_labels
        self.button(rect, "access", "", spoken=spoken[self.accessible])
        mark = rect.copy()
        if self.portrait and name:  # wide enough for the name beside the mark
            mark.width = rect.height
            words = pygame.Rect(mark.right, rect.top, rect.right - mark.right - gap, rect.height)
            self.text(name, 22, words, bold=True, spoken="")
        self.text(ACCESS_MARK, 44, mark, bold=True, spoken="")
        return area

    def focus(self, kind: str, value: str) -> None:
        """Ring the button ``kind``/``value`` (the one a finger explored), if it is drawn."""
        for button in self.buttons:
            if (button.kind, button.value) == (kind, value):
                ring = button.rect.inflate(round(8 * self.unit), round(8 * self.unit))
                width = max(3, round(5 * self.unit))
                pygame.draw.rect(self.surface, self.theme.focus, ring, width, round(12 * self.unit))

    def label(self, button: Button) -> str:
        """What ``button`` says under the finger: its own words, or the texts on it."""
        if button.spoken is not None:
            return button.spoken
        return sentences(t for t, r in self.voiced if button.rect.collidepoint(r.center))

    def announcement(self, *, whole: bool = False) -> str:
        """What the screen says when it appears: its texts that are not on a button.

        ``whole``: with those of the pages after the one shown (a screen said as it
        appears, rather than a page turned to).
        """
        shown = [
            t
            for t, r in self.voiced
            if not any(b.rect.collidepoint(r.center) for b in self.buttons)
        ]
        return sentences(shown + self.further if whole else shown)

    def hit(self, pos: tuple[float, float]) -> Button | None:
        """The button at ``pos``, if any."""
        for button in self.buttons:
            if button.rect.collidepoint(pos):
                return button
        return None

    def save(self, path: Path) -> None:
        """Save what is on the screen as a PNG file."""
        pygame.image.save(self.surface, str(path))

    # -- the accessible mode's paged list ------------------------------------------------

    def _large(self, line: Line) -> pygame.font.Font:
        """The font of an accessible :class:`Line`: its usual size, at least the large one."""
        px = max(self.large_px, round(line.size * ACCESSIBLE.text_scale * self.unit))
        return self.font_px(px, bold=line.bold)

    def _lines_height(self, lines: Iterable[Line], width: int) -> int:
        """How tall ``lines`` are, each wrapped to ``width``."""
        height = 0
        for line in lines:
            font = self._large(line)
            height += len(_wrap(line.text, font, width)) * font.get_linesize()
        return height

    def _inset(self) -> int:
        return round(_GAP * self.unit)

    def _icon_side(self, control: Control) -> int:
        """How large ``control``'s pictogram is: a little taller than its first line."""
        if control.icon is None:
            return 0
        return round(self._large(control.lines[0]).get_linesize() * 1.2)

    def _inner_width(self, control: Control, width: int) -> int:
        """The width a control ``width`` wide leaves for its texts."""
        inner = width - 2 * self._inset()
        return inner - (self._icon_side(control) + self._inset()) if control.icon else inner

    def _fits(self, control: Control, width: int) -> bool:
        """Whether every word of ``control`` fits on a control ``width`` wide."""
        inner = self._inner_width(control, width)
        return all(
            self._large(line).size(word)[0] <= inner
            for line in control.lines
            for word in line.text.split()
        )

    def _split(self, row: Row, width: int) -> list[Row]:
        """``row`` as rows ``width`` wide: its controls side by side, as many as fit."""
        if not row.controls:
            return [row]
        count = len(row.controls)
        while count > 1:
            each = (width - self._inset() * (count - 1)) // count
            if all(self._fits(control, each) for control in row.controls):
                break
            count -= 1
        return [
            Row(controls=row.controls[n : n + count]) for n in range(0, len(row.controls), count)
        ]

    def _widths(self, row: Row, width: int) -> float:
        count = len(row.controls)
        return (width - self._inset() * (count - 1)) / count

    def _row_height(self, row: Row, width: int) -> int:
        """How tall ``row`` is, ``width`` wide."""
        inset = self._inset()
        if not row.controls:
            if row.ground is None:
                return self._lines_height(row.lines, width)
            return self._lines_height(row.lines, width - 2 * inset) + 2 * inset
        each = round(self._widths(row, width))
        return max(
            max(
                self._lines_height(c.lines, self._inner_width(c, each)),
                self._icon_side(c),
            )
            + 2 * inset
            for c in row.controls
        )

    def _draw_lines(self, lines: Iterable[Line], box: pygame.Rect) -> None:
        """Draw ``lines``, each wrapped to ``box``'s width, centred on it."""
        lines = tuple(lines)
        top = box.centery - self._lines_height(lines, box.width) / 2
        for line in lines:
            font = self._large(line)
            height = font.get_linesize()
            where: pygame.Rect | None = None
            for part in _wrap(line.text, font, box.width):
                row = pygame.Rect(box.left, round(top), box.width, height)
                drawn = self._render(part, font, row, line.color, "center", "")
                where = drawn if where is None else where.union(drawn)
                top += height
            if where is not None:
                self.voiced[-1] = (line.text if line.spoken is None else line.spoken, where)

    def _draw_row(self, row: Row, rect: pygame.Rect) -> None:
        inset = self._inset()
        if not row.controls:
            if row.ground is not None:
                pygame.draw.rect(self.surface, row.ground, rect, border_radius=round(8 * self.unit))
                rect = rect.inflate(-2 * inset, 0)
            self._draw_lines(row.lines, rect)
            return
        each = self._widths(row, rect.width)
        for n, control in enumerate(row.controls):
            where = pygame.Rect(round(rect.left + n * (each + inset)), rect.top, round(each), 0)
            where.height = rect.height
            self.button(where, control.kind, control.value, control.color, spoken=control.spoken)
            inner = where.inflate(-2 * inset, -2 * inset)
            if control.icon is not None:
                side = min(self._icon_side(control), inner.height)
                icon = pygame.Rect(inner.left, inner.centery - side // 2, side, side)
                pictograms.draw(self.surface, control.icon, icon, self.theme.text)
                inner.width -= side + inset
                inner.left = icon.right + inset
            self._draw_lines(control.lines, inner)

    def _place(
        self, rows: list[Row], spans: list[tuple[int, int]], top: int, reach: int, bottom: int
    ) -> list[list[tuple[int, int]]]:
        """The pages of ``rows``: each row's index and top, by page.

        From ``top`` down to ``bottom``; a row with controls no higher than ``reach``.
        ``spans`` are each row's height and that of the rows it keeps together with (a row
        of controls split in several: the languages), which go to a new page together
        where they fit on one.
        """
        gap = self._inset()
        pages: list[list[tuple[int, int]]] = [[]]
        y = top
        for n, (row, (height, span)) in enumerate(zip(rows, spans, strict=True)):
            start = max(y, reach) if row.controls else y
            whole = max(top, reach) + span <= bottom
            if pages[-1] and (start + height > bottom or (whole and start + span > bottom)):
                pages.append([])
                start = max(top, reach) if row.controls else top
            pages[-1].append((n, start))
            y = start + height + gap
        return pages

    def _plan(
        self, area: pygame.Rect, heading: tuple[Line, ...], rows: list[Row], room: int
    ) -> _Plan:
        """Where ``heading`` and ``rows`` go, their rows above ``room`` (see :meth:`_paged`)."""
        gap = self._inset()
        width = area.width
        top = self.surface.get_rect().top + gap
        height = self._lines_height(heading, width)
        if heading:  # just above the reach zone, where the list begins, if there is room
            top = max(top, area.top - height - gap)
        first = top + height + gap if heading else top
        groups = [self._split(row, width) for row in rows]
        parts = [part for group in groups for part in group]
        spans = []
        for group in groups:
            rest = [self._row_height(part, width) for part in group]
            for n, part_height in enumerate(rest):
                spans.append((part_height, sum(rest[n:]) + gap * (len(rest) - n - 1)))
        pages = self._place(parts, spans, first, area.top, room)
        if len(pages) > 1:
            nav = self._large(_PAGE).get_linesize() + 2 * gap
            pages = self._place(parts, spans, first, area.top, room - nav - gap)
        return _Plan(heading, top, height, parts, [h for h, _ in spans], pages)

    def _paged(
        self,
        area: pygame.Rect,
        texts: Catalog,
        rows: list[Row],
        *,
        heading: tuple[Line, ...] = (),
        fixed: tuple[Row, ...] = (),
        aside: tuple[Line, ...] = (),
    ) -> None:
        """Draw an accessible screen as a list, in pages.

        ``heading`` at the top of every page, then as many of ``rows`` as fit, ``fixed``
        (e.g. "Back") at the bottom of every page, and, when the rows take more than one
        page, "Previous", the page and "Next" under them. ``aside`` (the office's name, the
        keypad's instruction) is above the heading unless that takes more pages than
        having it as the last row.

        Every text is at least :attr:`large_px` (never shrunk: it wraps, and the rows page);
        texts may go above ``area`` (the reach zone), controls never do.
        """
        gap = self._inset()
        width = area.width
        lower = [part for row in fixed for part in self._split(row, width)]
        room = area.bottom - sum(self._row_height(row, width) + gap for row in lower)
        plan = self._plan(area, aside + heading, rows, room)
        if aside:
            other = self._plan(area, heading, [*rows, Row(aside)], room)
            plan = other if len(other.pages) < len(plan.pages) else plan
        if plan.heading:
            where = pygame.Rect(area.left, plan.top, width, plan.height)
            self._draw_lines(plan.heading, where)
        bottom = area.bottom
        self.pages = len(plan.pages)
        self.page = min(self.page, self.pages - 1)
        if self.pages > 1:
            nav = self._large(_PAGE).get_linesize() + 2 * gap
            bottom -= nav + gap
            self._nav(pygame.Rect(area.left, area.bottom - nav, width, nav), texts)
        for row in reversed(lower):
            height = self._row_height(row, width)
            bottom -= height
            self._draw_row(row, pygame.Rect(area.left, bottom, width, height))
            bottom -= gap
        rows, heights = plan.rows, plan.heights
        for n, start in plan.pages[self.page]:
            self._draw_row(rows[n], pygame.Rect(area.left, start, width, heights[n]))
        self.further = [
            line.text if line.spoken is None else line.spoken
            for page in plan.pages[self.page + 1 :]
            for n, _ in page
            for line in rows[n].lines
        ]

    def _nav(self, rect: pygame.Rect, texts: Catalog) -> None:
        """The "Previous" and "Next" buttons in ``rect``, the page between them ("2 / 3").

        The buttons show their words beside their arrows where both fit, else the arrows;
        it says its word under the finger. The page is said "Page 2 of 3"; the last page's
        "Next" leads to the first.
        """
        font = self._large(_PAGE)
        gap = self._inset()
        shown = f"{self.page + 1} / {self.pages}"
        said = texts.text("access.page", page=self.page + 1, pages=self.pages)
        each = (rect.width - font.size(shown)[0] - 4 * gap) // 2
        words = {way: texts.text(f"access.{way}") for way in ("previous", "next")}
        labels = {"previous": f"\u25c0 {words['previous']}", "next": f"{words['next']} \u25b6"}
        if any(font.size(label)[0] > each - 2 * gap for label in labels.values()):
            labels = {"previous": "\u25c0", "next": "\u25b6"}  # the same on both: arrows
        for way, left in (("previous", rect.left), ("next", rect.right - each)):
            button = pygame.Rect(left, rect.top, each, rect.height)
            self.button(button, "page", way, spoken=words[way])
            self._draw_lines((Line(labels[way], _PAGE.size, bold=True, spoken=""),), button)
        middle = pygame.Rect(rect.left + each, rect.top, rect.width - 2 * each, rect.height)
        self._draw_lines((Line(shown, _PAGE.size, bold=True, spoken=said),), middle)

    def _service_control(
        self, state: QueueState, texts: Catalog, can_issue: Callable[[QueueState], str | None]
    ) -> Control:
        """A service's button in the accessible mode's list: its name, waiting and wait."""
        why = can_issue(state)
        name = service_name(state.names, texts.lang, state.service)
        theme = self.theme
        return Control(
            "service" if why is None else "off",
            state.service,
            (
                Line(name, 26, bold=True, color=theme.text if why is None else theme.dim_text),
                Line(self._detail(state, texts, why), 17, color=theme.dim_text),
            ),
            theme.button if why is None else theme.disabled,
        )

    def _back_row(self, texts: Catalog, key: str, size: float = 24) -> Row:
        """The accessible mode's "Back" (``key`` says what it is called)."""
        words = (Line(texts.text(key), size, bold=True),)
        return Row(controls=(Control("back", "", words, self.theme.disabled),))

    # -- the screens -----------------------------------------------------------------

    def start(
        self,
        services: list[QueueState],
        texts: Catalog,
        languages: dict[str, str],
        *,
        can_issue: Callable[[QueueState], str | None],
        banner: str | None = None,
        offline: bool = False,
        appointments: bool = False,
        scanner: bool = False,
        priority: bool = False,
    ) -> None:
        """The start screen: the services as buttons, the languages, any fault banner.

        ``can_issue`` says why a service's button is off (a catalog key), or ``None``.
        ``languages`` maps each offered language to its own name. ``appointments`` adds
        the "I have an appointment" button (and, with a ``scanner``, a hint to scan);
        ``priority`` the "I need priority" button (beside it on a landscape screen).
        """
        area = self._begin()
        if self.accessible:
            self._accessible_start(
                area,
                services,
                texts,
                languages,
                can_issue,
                banner,
                offline=offline,
                appointments=appointments,
                scanner=scanner,
                priority=priority,
            )
            return
        unit = self.unit
        header = pygame.Rect(area.left, area.top, area.width, round(40 * unit))
        self.text(self.office, 18, header, bold=True, color=self.theme.dim_text, align="left")
        title = pygame.Rect(area.left, header.bottom, area.width, round(44 * unit))
        self.text(texts.text("start.title"), 30, title, bold=True)
        bar = pygame.Rect(area.left, area.bottom - round(70 * unit), area.width, round(70 * unit))
        self._languages(bar, languages, texts.lang)
        bottom = bar.top - round(10 * unit)
        if priority:
            row = pygame.Rect(area.left, bottom - round(70 * unit), area.width, round(70 * unit))
            if appointments and not self.portrait:
                row.width = round(area.width * 0.36)
                row.right = area.right
            else:
                bottom = row.top - round(10 * unit)
            self._priority_entry(row, texts)
        if appointments:
            row = pygame.Rect(area.left, bottom - round(70 * unit), area.width, round(70 * unit))
            if priority and not self.portrait:
                row.width = round(area.width * 0.64) - round(12 * unit)
            self._appointment_row(row, texts, scanner)
            bottom = row.top - round(10 * unit)
        if banner is not None:
            strip = pygame.Rect(area.left, bottom - round(56 * unit), area.width, round(56 * unit))
            pygame.draw.rect(self.surface, self.theme.fault, strip, border_radius=round(8 * unit))
            self.wrapped(banner, 17, strip.inflate(-round(16 * unit), 0))
            bottom = strip.top - round(10 * unit)
        if offline:
            mark = pygame.Rect(area.right - round(160 * unit), area.top, round(160 * unit), 30)
            self.text(texts.text("banner.offline"), 13, mark, color=self.theme.dim_text)
        grid = pygame.Rect(area.left, title.bottom + round(8 * unit), area.width, 0)
        grid.height = bottom - grid.top
        self._services(grid, services, texts, can_issue)

    def _appointment_row(self, row: pygame.Rect, texts: Catalog, scanner: bool) -> None:
        """The "I have an appointment" button; with a scanner, the hint to scan beside it."""
        rect = row.copy()
        if scanner and self.portrait:
            rect.height = round(row.height * 0.65)
        elif scanner:
            rect.width = round(row.width * 0.5)
        self.button(rect, "appointment", "", self.theme.ok)
        label = texts.text("start.appointment")
        self.text(label, 22, rect.inflate(-round(16 * self.unit), 0), bold=True)
        if scanner:
            gap = round(12 * self.unit)
            hint = (
                pygame.Rect(row.left, rect.bottom, row.width, row.bottom - rect.bottom)
                if self.portrait
                else pygame.Rect(
                    rect.right + gap, row.top, row.right - rect.right - gap, row.height
                )
            )
            self.wrapped(texts.text("start.scan"), 16, hint, color=self.theme.dim_text)

    def _language_controls(self, languages: dict[str, str], current: str) -> list[Control]:
        """The language buttons of the accessible mode's list (the chosen one in yellow)."""
        theme = self.theme
        controls = []
        for lang, name in languages.items():
            chosen = lang == current
            color = theme.background if chosen else theme.text
            words = (Line(name, 20, bold=chosen, color=color),)
            controls.append(
                Control("lang", lang, words, theme.selected if chosen else theme.button)
            )
        return controls

    def _languages(self, bar: pygame.Rect, languages: dict[str, str], current: str) -> None:
        gap = round(10 * self.unit)
        width = (bar.width - gap * (len(languages) - 1)) / max(1, len(languages))
        for n, (lang, name) in enumerate(languages.items()):
            rect = pygame.Rect(
                round(bar.left + n * (width + gap)), bar.top, round(width), bar.height
            )
            chosen = lang == current
            self.button(rect, "lang", lang, self.theme.selected if chosen else self.theme.button)
            self.text(
                name,
                20,
                rect.inflate(-gap, 0),
                bold=chosen,
                color=self.theme.background if chosen else self.theme.text,
            )

    def _services(
        self,
        grid: pygame.Rect,
        services: list[QueueState],
        texts: Catalog,
        can_issue: Callable[[QueueState], str | None],
    ) -> None:
        if not services:
            self.wrapped(texts.text("start.unavailable"), 24, grid)
            return
        columns = 1 if self.portrait or len(services) == 1 else 2
        rows = math.ceil(len(services) / columns)
        gap = round(12 * self.unit)
        width = (grid.width - gap * (columns - 1)) / columns
        height = min((grid.height - gap * (rows - 1)) / rows, 200 * self.unit)
        for n, state in enumerate(services):
            row, column = divmod(n, columns)
            rect = pygame.Rect(
                round(grid.left + column * (width + gap)),
                round(grid.top + row * (height + gap)),
                round(width),
                round(height),
            )
            why = can_issue(state)
            self.button(
                rect,
                "service" if why is None else "off",
                state.service,
                self.theme.button if why is None else self.theme.disabled,
            )
            inner = rect.inflate(-round(20 * self.unit), -round(10 * self.unit))
            # The name over the detail; side by side where two lines of the smallest
            # text do not fit (the accessible mode's large text on a short row).
            if inner.height >= 2.4 * self.font(self.theme.min_size).get_height():
                name_part = pygame.Rect(
                    inner.left, inner.top, inner.width, round(inner.height * 0.6)
                )
                detail_part = pygame.Rect(
                    inner.left, name_part.bottom, inner.width, inner.height - name_part.height
                )
                # A line may overhang its box (_OVERHANG): the boxes are that much
                # smaller than their parts, so the two lines never run into each other.
                name_box, detail_box = (
                    part.inflate(0, -round(part.height * (1 - 1 / _OVERHANG)))
                    for part in (name_part, detail_part)
                )
            else:
                name_box = pygame.Rect(inner.left, inner.top, inner.width // 2, inner.height)
                detail_box = pygame.Rect(
                    name_box.right, inner.top, inner.width - name_box.width, inner.height
                )
            name = service_name(state.names, texts.lang, state.service)
            self.text(
                name,
                26,
                name_box,
                bold=True,
                color=self.theme.text if why is None else self.theme.dim_text,
            )
            self.text(self._detail(state, texts, why), 17, detail_box, color=self.theme.dim_text)

    @staticmethod
    def _detail(state: QueueState, texts: Catalog, why: str | None) -> str:
        if why in ("start.closed", "start.cut_off"):
            return f"{texts.text(why)} · {opening(state, texts)}"
        if why is not None:
            return texts.text(why)
        waiting = texts.text("start.waiting", waiting=state.waiting)
        if state.estimated_wait_s:
            minutes = wait_minutes(state.estimated_wait_s)
            return f"{waiting} · {texts.text('start.wait', minutes=minutes)}"
        return waiting

    def _mark(self, number: pygame.Rect, mark: str) -> None:
        """A ticket's ``mark`` (appointment, priority), small, at the top right of ``number``."""
        size = number.height * 0.55 / self.unit
        box = pygame.Rect(number.right + round(6 * self.unit), number.top, number.height, 0)
        box.height = round(number.height * 0.6)
        self.text(mark, size, box, color=self.theme.number, align="left", spoken="")

    def _priority_entry(self, rect: pygame.Rect, texts: Catalog) -> None:
        """The "I need priority" button: the symbol of access and the words."""
        words = texts.text("priority.entry")
        self.button(rect, "priority", "", self.theme.priority, spoken=words)
        inner = rect.inflate(-round(16 * self.unit), -round(12 * self.unit))
        icon = pygame.Rect(inner.left, inner.top, inner.height, inner.height)
        pictograms.draw(self.surface, "disability", icon, self.theme.text)
        label = pygame.Rect(icon.right, inner.top, inner.right - icon.right, inner.height)
        self.text(words, 22, label, bold=True)

    def priority_reasons(self, texts: Catalog, reasons: tuple[str, ...]) -> None:
        """The reasons for priority, each a button with its pictogram and its words."""
        area = self._begin()
        if self.accessible:
            self._accessible_reasons(area, texts, reasons)
            return
        unit = self.unit
        gap = round(12 * unit)
        title = pygame.Rect(area.left, area.top, area.width, round(56 * unit))
        self.wrapped(texts.text("priority.title"), 26, title)
        back = self._back_button(area, texts, "priority.back")
        grid = pygame.Rect(area.left, title.bottom + gap, area.width, 0)
        grid.height = back.top - gap - grid.top
        columns = 1 if self.portrait else 2
        rows = math.ceil(len(reasons) / columns)
        width = (grid.width - gap * (columns - 1)) / columns
        height = (grid.height - gap * (rows - 1)) / rows
        for n, reason in enumerate(reasons):
            row, column = divmod(n, columns)
            rect = pygame.Rect(
                round(grid.left + column * (width + gap)),
                round(grid.top + row * (height + gap)),
                round(width),
                round(height),
            )
            words = texts.text(f"priority.{reason}")
            self.button(rect, "reason", reason, self.theme.priority, spoken=words)
            inner = rect.inflate(-round(16 * unit), -round(12 * unit))
            icon = pygame.Rect(inner.left, inner.top, inner.height, inner.height)
            pictograms.draw(self.surface, reason, icon, self.theme.text)
            label = pygame.Rect(icon.right + gap, inner.top, inner.right - icon.right - gap, 0)
            label.height = inner.height
            self.wrapped(words, 24, label)

    def priority_services(
        self,
        services: list[QueueState],
        texts: Catalog,
        *,
        can_issue: Callable[[QueueState], str | None],
    ) -> None:
        """The services a priority ticket can be taken for, as on the start screen."""
        area = self._begin()
        heading = texts.text("priority.services")
        if self.accessible:
            rows = [Row(controls=(self._service_control(s, texts, can_issue),)) for s in services]
            if not services:
                rows.append(Row((Line(texts.text("start.unavailable"), 24),)))
            lines = (Line(f"{PRIORITY_MARK} {heading}", 26, spoken=heading),)
            self._paged(
                area, texts, rows, heading=lines, fixed=(self._back_row(texts, "priority.back"),)
            )
            return
        unit = self.unit
        title = pygame.Rect(area.left, area.top, area.width, round(56 * unit))
        self.wrapped(f"{PRIORITY_MARK} {heading}", 26, title, spoken=heading)
        back = self._back_button(area, texts, "priority.back")
        grid = pygame.Rect(area.left, title.bottom + round(8 * unit), area.width, 0)
        grid.height = back.top - round(12 * unit) - grid.top
        self._services(grid, services, texts, can_issue)

    def _back_button(self, area: pygame.Rect, texts: Catalog, key: str) -> pygame.Rect:
        """A "back" button at the bottom centre of ``area``, saying ``key``; where it went."""
        back = pygame.Rect(0, 0, round(min(area.width, 320 * self.unit)), round(76 * self.unit))
        back.midbottom = area.midbottom
        self.button(back, "back", "", self.theme.disabled)
        self.text(texts.text(key), 24, back, bold=True)
        return back

    def busy(self, texts: Catalog, key: str = "busy.text") -> None:
        """The screen while the ticket is being issued and printed (``key``: what it says)."""
        area = self._begin()
        if self.accessible:
            self._paged(area, texts, [Row((Line(texts.text(key), 32),))])
            return
        self.wrapped(texts.text(key), 32, area)

    def keypad(self, texts: Catalog, code: str, lengths: tuple[int, ...]) -> None:
        """The on-screen keypad for a check-in code: digits, correct, confirm, cancel.

        ``code`` is what was typed so far; "confirm" is on once it has one of the
        ``lengths`` (a remote ticket's code, a booking's).
        Landscape: the code on the left, the keys on the right; portrait: the keys below.
        """
        area = self._begin()
        if self.accessible:
            self._accessible_keypad(area, texts, code, lengths)
            return
        unit = self.unit
        gap = round(10 * unit)
        if self.portrait:
            left = pygame.Rect(area.left, area.top, area.width, round(area.height * 0.3))
            keys = pygame.Rect(
                area.left, left.bottom + gap, area.width, area.bottom - left.bottom - gap
            )
        else:
            left = pygame.Rect(area.left, area.top, round(area.width * 0.42), area.height)
            keys = pygame.Rect(
                left.right + gap * 2, area.top, area.right - left.right - gap * 2, area.height
            )
        cancel = pygame.Rect(
            left.left, left.bottom - round(76 * unit), left.width, round(76 * unit)
        )
        title = pygame.Rect(left.left, left.top, left.width, round(left.height * 0.3))
        self.wrapped(texts.text("keypad.title"), 24, title)
        shown = " ".join(code[n] if n < len(code) else "_" for n in range(max(lengths)))
        field = pygame.Rect(left.left, title.bottom, left.width, cancel.top - title.bottom - gap)
        typed = " ".join(code)
        self.text(shown, 40, field, bold=True, color=self.theme.number, spoken=typed)
        self.button(cancel, "key", "cancel", self.theme.disabled)
        self.text(texts.text("keypad.cancel"), 24, cancel, bold=True)
        rows = [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"], ["del", "0", "ok"]]
        width = (keys.width - gap * 2) / 3
        height = (keys.height - gap * 3) / 4
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                rect = pygame.Rect(
                    round(keys.left + c * (width + gap)),
                    round(keys.top + r * (height + gap)),
                    round(width),
                    round(height),
                )
                if value == "ok":
                    ready = len(code) in lengths
                    self.button(
                        rect,
                        "key" if ready else "off",
                        value,
                        self.theme.ok if ready else self.theme.disabled,
                    )
                    self.text(texts.text("keypad.ok"), 22, rect.inflate(-gap, 0), bold=True)
                elif value == "del":
                    self.button(rect, "key", value)
                    self.text(texts.text("keypad.correct"), 22, rect.inflate(-gap, 0), bold=True)
                else:
                    self.button(rect, "key", value)
                    self.text(value, 40, rect, bold=True)

    def outcome(
        self,
        outcome: Outcome,
        texts: Catalog,
        service_name: str,
        state: QueueState | None = None,
    ) -> None:
        """The confirmation (number, service, people ahead, wait) or the refusal.

        ``state`` is the service's last queue state: a refusal because it is closed or
        cut off says when it opens next.
        """
        area = self._begin()
        if self.accessible:
            self._accessible_outcome(area, outcome, texts, service_name, state)
            return
        unit = self.unit
        back = pygame.Rect(0, 0, round(min(area.width, 320 * unit)), round(76 * unit))
        back.midbottom = area.midbottom
        ticket = outcome.ticket
        if ticket is None:
            title = pygame.Rect(area.left, area.top, area.width, round(70 * unit))
            heading = "checkin.title" if outcome.checkin else "refused.title"
            self.text(texts.text(heading), 30, title, bold=True)
            bottom = back.top
            if outcome.walk_in is not None:
                walk_in = back.copy()
                walk_in.width = round(min(area.width, 560 * unit))
                walk_in.midbottom = (area.centerx, back.top - round(12 * unit))
                self.button(walk_in, "walk_in", outcome.walk_in)
                label = texts.text("checkin.walk_in", service=service_name)
                self.text(label, 24, walk_in.inflate(-round(16 * unit), 0), bold=True)
                bottom = walk_in.top
            body = pygame.Rect(area.left, title.bottom, area.width, bottom - title.bottom)
            why = _refusal(outcome, texts, state)
            self.wrapped(why, 24, body)
        else:
            ahead = texts.text("confirm.ahead", ahead=ticket.people_ahead)
            wait = wait_text(texts, "confirm", ticket.people_ahead, ticket.estimated_wait_s)
            # Each row: its text, size, boldness, colour, height and what it says aloud.
            rows: list[tuple[str, float, bool, Color, float, str | None]] = [
                (texts.text("confirm.your_number"), 24, False, self.theme.dim_text, 40, None),
                (ticket.number, 110, True, self.theme.number, 130, spoken_number(ticket.number)),
                (service_name, 28, True, self.theme.text, 44, None),
                (ahead, 22, False, self.theme.text, 34, None),
                (wait, 22, False, self.theme.text, 34, None),
            ]
            kind = _kind_line(ticket, texts)
            if kind is not None:
                sign, words = kind
                rows.insert(3, (f"{sign} {words}", 22, True, self.theme.number, 34, words))
            # Larger on a portrait screen, as far as the rows leave room for the note.
            room = (back.top - area.top) / unit - NOTE_ROOM
            grow = min(1.4 if self.portrait else 1.0, room / sum(row[4] for row in rows))
            top = float(area.top)
            for text, size, bold, color, height, spoken in rows:
                box = pygame.Rect(area.left, round(top), area.width, round(height * grow * unit))
                where = self.text(text, size * grow, box, bold=bold, color=color, spoken=spoken)
                if text == ticket.number and ticket.mark:
                    self._mark(where, ticket.mark)
                top += height * grow * unit
            note = "confirm.take_ticket" if outcome.printed else "confirm.not_printed"
            strip = pygame.Rect(
                area.left, round(top + 6 * unit), area.width, back.top - round(top + 12 * unit)
            )
            if not outcome.printed:
                pygame.draw.rect(
                    self.surface, self.theme.fault, strip, border_radius=round(8 * unit)
                )
            self.wrapped(texts.text(note), 20, strip.inflate(-round(16 * unit), 0))
            if ticket.offline:
                mark = pygame.Rect(area.left, area.top, round(200 * unit), 24)
                self.text(
                    texts.text("confirm.offline"), 12, mark, color=self.theme.dim_text, align="left"
                )
        self.button(back, "back", "", self.theme.ok)
        self.text(texts.text("confirm.back"), 26, back, bold=True)

    def _accessible_outcome(
        self,
        area: pygame.Rect,
        outcome: Outcome,
        texts: Catalog,
        service_name: str,
        state: QueueState | None,
    ) -> None:
        """:meth:`outcome` as the accessible mode's list."""
        theme = self.theme
        done = (Line(texts.text("confirm.back"), 26, bold=True),)
        fixed = (Row(controls=(Control("back", "", done, theme.ok),)),)
        ticket = outcome.ticket
        if ticket is None:
            why = _refusal(outcome, texts, state)
            rows = [Row((Line(why, 24),))]
            if outcome.walk_in is not None:
                words = (Line(texts.text("checkin.walk_in", service=service_name), 24, bold=True),)
                rows.append(Row(controls=(Control("walk_in", outcome.walk_in, words),)))
            key = "checkin.title" if outcome.checkin else "refused.title"
            heading = (Line(texts.text(key), 30, bold=True),)
            self._paged(area, texts, rows, heading=heading, fixed=fixed)
            return
        number = f"{ticket.number} {ticket.mark}" if ticket.mark else ticket.number
        lines = [
            Line(texts.text("confirm.your_number"), 24, color=theme.dim_text),
            Line(number, 110, bold=True, color=theme.number, spoken=spoken_number(ticket.number)),
            Line(service_name, 28, bold=True),
        ]
        kind = _kind_line(ticket, texts)
        if kind is not None:
            sign, said = kind
            lines.append(Line(f"{sign} {said}", 22, bold=True, color=theme.number, spoken=said))
        wait = wait_text(texts, "confirm", ticket.people_ahead, ticket.estimated_wait_s)
        lines += [Line(texts.text("confirm.ahead", ahead=ticket.people_ahead), 22), Line(wait, 22)]
        rows = [Row((line,)) for line in lines]
        note = "confirm.take_ticket" if outcome.printed else "confirm.not_printed"
        rows.append(
            Row((Line(texts.text(note), 20),), ground=None if outcome.printed else theme.fault)
        )
        if ticket.offline:
            rows.append(Row((Line(texts.text("confirm.offline"), 12, color=theme.dim_text),)))
        self._paged(area, texts, rows, fixed=fixed)

    def _accessible_start(
        self,
        area: pygame.Rect,
        services: list[QueueState],
        texts: Catalog,
        languages: dict[str, str],
        can_issue: Callable[[QueueState], str | None],
        banner: str | None,
        *,
        offline: bool,
        appointments: bool,
        scanner: bool,
        priority: bool,
    ) -> None:
        """:meth:`start` as the accessible mode's list."""
        theme = self.theme
        rows = [Row(controls=(self._service_control(s, texts, can_issue),)) for s in services]
        if not services:
            rows.append(Row((Line(texts.text("start.unavailable"), 24),)))
        if banner is not None:
            rows.insert(0, Row((Line(banner, 17),), ground=theme.fault))
        if appointments:
            words = (Line(texts.text("start.appointment"), 22, bold=True),)
            rows.append(Row(controls=(Control("appointment", "", words, theme.ok),)))
            if scanner:
                rows.append(Row((Line(texts.text("start.scan"), 16, color=theme.dim_text),)))
        if priority:
            entry = texts.text("priority.entry")
            words = (Line(entry, 22, bold=True),)
            rows.append(
                Row(controls=(Control("priority", "", words, theme.priority, entry, "disability"),))
            )
        rows.append(Row(controls=tuple(self._language_controls(languages, texts.lang))))
        office = [Line(self.office, 18, bold=True, color=theme.dim_text)]
        if offline:
            office.append(Line(texts.text("banner.offline"), 13, color=theme.dim_text))
        title = (Line(texts.text("start.title"), 30, bold=True),)
        self._paged(area, texts, rows, heading=title, aside=tuple(office))

    def _accessible_reasons(
        self, area: pygame.Rect, texts: Catalog, reasons: tuple[str, ...]
    ) -> None:
        """:meth:`priority_reasons` as the accessible mode's list."""
        rows = []
        for reason in reasons:
            words = texts.text(f"priority.{reason}")
            control = Control(
                "reason", reason, (Line(words, 24),), self.theme.priority, words, reason
            )
            rows.append(Row(controls=(control,)))
        heading = (Line(texts.text("priority.title"), 26),)
        back = (self._back_row(texts, "priority.back"),)
        self._paged(area, texts, rows, heading=heading, fixed=back)

    def _accessible_keypad(
        self, area: pygame.Rect, texts: Catalog, code: str, lengths: tuple[int, ...]
    ) -> None:
        """:meth:`keypad` as the accessible mode's list: the digits in as few rows as fit."""
        theme = self.theme
        shown = " ".join(code[n] if n < len(code) else "_" for n in range(max(lengths)))
        ready = len(code) in lengths
        digits = tuple(Control("key", d, (Line(d, 40, bold=True),)) for d in "1234567890")
        correct = Control("key", "del", (Line(texts.text("keypad.correct"), 22, bold=True),))
        confirm = Control(
            "key" if ready else "off",
            "ok",
            (Line(texts.text("keypad.ok"), 22, bold=True),),
            theme.ok if ready else theme.disabled,
        )
        cancel = Control(
            "key", "cancel", (Line(texts.text("keypad.cancel"), 24, bold=True),), theme.disabled
        )
        heading = (Line(shown, 40, bold=True, color=theme.number, spoken=" ".join(code)),)
        rows = [Row(controls=digits), Row(controls=(correct, confirm))]
        self._paged(
            area,
            texts,
            rows,
            heading=heading,
            fixed=(Row(controls=(cancel,)),),
            aside=(Line(texts.text("keypad.title"), 24),),
        )

"""The kiosk's touch screen, drawn with pygame: start, keypad, busy and confirmation screens.

Laid out from the screen's size, for the Raspberry Pi's 7" touch screen (800×480,
two columns of services) and a portrait screen (1080×1920, one column), scaling
to others. Following EN 301 549 for self-service terminals: large touch targets
(at least 80 px, ~15 mm, on the 7" screen), light text on dark ground with high
contrast, a printer fault both in words and in colour, and optional speech.
Every text comes from the message catalogs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.i18n import service_name
from common.sdl import pygame
from kiosk import pictograms
from kiosk.catalog import Catalog, wait_minutes
from kiosk.dispenser import Outcome
from kiosk.fonts import font_path
from kiosk.printer import PrintedTicket, wait_text
from lobby.content import APPOINTMENT_MARK, PRIORITY_MARK
from sync_agent.protocol import QueueState

__all__ = ["Button", "Screen"]

Color = tuple[int, int, int]

BACKGROUND: Color = (12, 24, 52)
BUTTON: Color = (24, 78, 160)
BUTTON_EDGE: Color = (255, 255, 255)
DISABLED: Color = (58, 62, 70)
TEXT: Color = (255, 255, 255)
DIM_TEXT: Color = (214, 218, 226)
NUMBER: Color = (255, 214, 0)
SELECTED: Color = (255, 214, 0)
FAULT: Color = (176, 0, 32)
OK_GREEN: Color = (0, 110, 60)
PRIORITY: Color = (92, 44, 140)


CLOSED_CODES = frozenset({"service_closed", "outside_hours", "cut_off"})
"""Refusals after which the screen says when the service opens next."""


def opening(state: QueueState, texts: Catalog) -> str:
    """When a closed service opens next; its hours when the hub does not say."""
    if state.opens_at is not None:
        return texts.opening(state.opens_at, state.at)
    return texts.text("start.hours", hours=texts.hours(state.hours))


@dataclass(frozen=True, slots=True)
class Button:
    """A touch target: where it is and what it does.

    Kinds: ``service``, ``lang``, ``back``, ``appointment`` (the keypad), ``key`` (a key of
    the keypad: a digit, ``del``, ``ok`` or ``cancel``), ``walk_in`` (a service's ticket
    instead of a late appointment), ``priority`` ("I need priority"), ``reason`` (a reason
    for priority), ``off`` (a button that is off).
    """

    rect: pygame.Rect
    kind: str
    value: str = ""


def _kind_line(ticket: PrintedTicket, texts: Catalog) -> str | None:
    """The confirmation's line for a booked appointment (its time) or a priority ticket."""
    if ticket.appointment_at is not None:
        at = f"{ticket.appointment_at:%H:%M}"
        return f"{APPOINTMENT_MARK} {texts.text('confirm.appointment', time=at)}"
    if ticket.priority:
        return f"{PRIORITY_MARK} {texts.text('confirm.priority')}"
    return None


class Screen:
    """Draws the kiosk's screens on ``surface`` and tells which button a tap hit."""

    def __init__(self, surface: pygame.Surface, *, font_dir: Path, office: str) -> None:
        self.surface = surface
        self.office = office
        self.regular = font_path(font_dir)
        self.bold = font_path(font_dir, bold=True)
        self.buttons: list[Button] = []
        self.drawn: list[tuple[str, pygame.Rect]] = []
        """Every text of the last screen and where it went (for tests and diagnosis)."""
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        width, height = surface.get_size()
        self.unit = min(width, height) / 480
        self.portrait = height > width

    # -- drawing helpers -------------------------------------------------------------

    def font(self, size: float, *, bold: bool = False) -> pygame.font.Font:
        """DejaVu Sans at ``size`` units (1 unit is 1 px on a 480 px tall screen)."""
        px = max(8, round(size * self.unit))
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
        color: Color = TEXT,
        align: str = "center",
    ) -> pygame.Rect:
        """Draw ``text`` in ``box``, shrunk until it fits; return where it went."""
        font = self.font(size, bold=bold)
        while font.size(text)[0] > box.width and size > 6:
            size *= 0.9
            font = self.font(size, bold=bold)
        image = font.render(text, True, color)
        rect = image.get_rect()
        rect.centery = box.centery
        if align == "left":
            rect.left = box.left
        else:
            rect.centerx = box.centerx
        self.surface.blit(image, rect)
        self.drawn.append((text, rect))
        return rect

    def wrapped(self, text: str, size: float, box: pygame.Rect, *, color: Color = TEXT) -> None:
        """Draw ``text`` in ``box`` over as many centred lines as it needs."""
        font = self.font(size)
        lines: list[str] = []
        for word in text.split():
            if lines and font.size(f"{lines[-1]} {word}")[0] <= box.width:
                lines[-1] += f" {word}"
            else:
                lines.append(word)
        height = font.get_linesize()
        top = box.centery - height * len(lines) / 2
        for n, line in enumerate(lines):
            row = pygame.Rect(box.left, round(top + n * height), box.width, height)
            self.text(line, size, row, color=color)

    def button(self, rect: pygame.Rect, kind: str, value: str, color: Color = BUTTON) -> None:
        """Draw a button's ground and edge, and remember it as a touch target."""
        radius = round(10 * self.unit)
        pygame.draw.rect(self.surface, color, rect, border_radius=radius)
        pygame.draw.rect(self.surface, BUTTON_EDGE, rect, max(2, round(2 * self.unit)), radius)
        self.buttons.append(Button(rect, kind, value))

    def _begin(self) -> pygame.Rect:
        self.surface.fill(BACKGROUND)
        self.buttons = []
        self.drawn = []
        return self.surface.get_rect().inflate(-round(24 * self.unit), -round(16 * self.unit))

    def hit(self, pos: tuple[float, float]) -> Button | None:
        """The button at ``pos``, if any."""
        for button in self.buttons:
            if button.rect.collidepoint(pos):
                return button
        return None

    def save(self, path: Path) -> None:
        """Save what is on the screen as a PNG file."""
        pygame.image.save(self.surface, str(path))

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
        unit = self.unit
        header = pygame.Rect(area.left, area.top, area.width, round(40 * unit))
        self.text(self.office, 18, header, bold=True, color=DIM_TEXT, align="left")
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
            pygame.draw.rect(self.surface, FAULT, strip, border_radius=round(8 * unit))
            self.wrapped(banner, 17, strip.inflate(-round(16 * unit), 0))
            bottom = strip.top - round(10 * unit)
        if offline:
            mark = pygame.Rect(area.right - round(160 * unit), area.top, round(160 * unit), 30)
            self.text(texts.text("banner.offline"), 13, mark, color=DIM_TEXT)
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
        self.button(rect, "appointment", "", OK_GREEN)
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
            self.wrapped(texts.text("start.scan"), 16, hint, color=DIM_TEXT)

    def _languages(self, bar: pygame.Rect, languages: dict[str, str], current: str) -> None:
        gap = round(10 * self.unit)
        width = (bar.width - gap * (len(languages) - 1)) / max(1, len(languages))
        for n, (lang, name) in enumerate(languages.items()):
            rect = pygame.Rect(
                round(bar.left + n * (width + gap)), bar.top, round(width), bar.height
            )
            chosen = lang == current
            self.button(rect, "lang", lang, SELECTED if chosen else BUTTON)
            self.text(
                name, 20, rect.inflate(-gap, 0), bold=chosen, color=BACKGROUND if chosen else TEXT
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
                BUTTON if why is None else DISABLED,
            )
            inner = rect.inflate(-round(20 * self.unit), -round(10 * self.unit))
            name_box = pygame.Rect(inner.left, inner.top, inner.width, round(inner.height * 0.6))
            name = service_name(state.names, texts.lang, state.service)
            self.text(name, 26, name_box, bold=True, color=TEXT if why is None else DIM_TEXT)
            detail_box = pygame.Rect(
                inner.left, name_box.bottom, inner.width, inner.height - name_box.height
            )
            self.text(self._detail(state, texts, why), 17, detail_box, color=DIM_TEXT)

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
        self.text(mark, size, box, color=NUMBER, align="left")

    def _priority_entry(self, rect: pygame.Rect, texts: Catalog) -> None:
        """The "I need priority" button: the symbol of access and the words."""
        self.button(rect, "priority", "", PRIORITY)
        inner = rect.inflate(-round(16 * self.unit), -round(12 * self.unit))
        icon = pygame.Rect(inner.left, inner.top, inner.height, inner.height)
        pictograms.draw(self.surface, "disability", icon, TEXT)
        label = pygame.Rect(icon.right, inner.top, inner.right - icon.right, inner.height)
        self.text(texts.text("priority.entry"), 22, label, bold=True)

    def priority_reasons(self, texts: Catalog, reasons: tuple[str, ...]) -> None:
        """The reasons for priority, each a button with its pictogram and its words."""
        area = self._begin()
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
            self.button(rect, "reason", reason, PRIORITY)
            inner = rect.inflate(-round(16 * unit), -round(12 * unit))
            icon = pygame.Rect(inner.left, inner.top, inner.height, inner.height)
            pictograms.draw(self.surface, reason, icon, TEXT)
            label = pygame.Rect(icon.right + gap, inner.top, inner.right - icon.right - gap, 0)
            label.height = inner.height
            self.wrapped(texts.text(f"priority.{reason}"), 24, label)

    def priority_services(
        self,
        services: list[QueueState],
        texts: Catalog,
        *,
        can_issue: Callable[[QueueState], str | None],
    ) -> None:
        """The services a priority ticket can be taken for, as on the start screen."""
        area = self._begin()
        unit = self.unit
        title = pygame.Rect(area.left, area.top, area.width, round(56 * unit))
        self.wrapped(f"{PRIORITY_MARK} {texts.text('priority.services')}", 26, title)
        back = self._back_button(area, texts, "priority.back")
        grid = pygame.Rect(area.left, title.bottom + round(8 * unit), area.width, 0)
        grid.height = back.top - round(12 * unit) - grid.top
        self._services(grid, services, texts, can_issue)

    def _back_button(self, area: pygame.Rect, texts: Catalog, key: str) -> pygame.Rect:
        """A "back" button at the bottom centre of ``area``, saying ``key``; where it went."""
        back = pygame.Rect(0, 0, round(min(area.width, 320 * self.unit)), round(76 * self.unit))
        back.midbottom = area.midbottom
        self.button(back, "back", "", DISABLED)
        self.text(texts.text(key), 24, back, bold=True)
        return back

    def busy(self, texts: Catalog, key: str = "busy.text") -> None:
        """The screen while the ticket is being issued and printed (``key``: what it says)."""
        area = self._begin()
        self.wrapped(texts.text(key), 32, area)

    def keypad(self, texts: Catalog, code: str, lengths: tuple[int, ...]) -> None:
        """The on-screen keypad for a check-in code: digits, correct, confirm, cancel.

        ``code`` is what was typed so far; "confirm" is on once it has one of the
        ``lengths`` (a remote ticket's code, a booking's).
        Landscape: the code on the left, the keys on the right; portrait: the keys below.
        """
        area = self._begin()
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
        self.text(shown, 40, field, bold=True, color=NUMBER)
        self.button(cancel, "key", "cancel", DISABLED)
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
                        rect, "key" if ready else "off", value, OK_GREEN if ready else DISABLED
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
            why = texts.text(f"refused.{outcome.refused}")
            if outcome.refused in CLOSED_CODES and state is not None:
                why = f"{why} {opening(state, texts)}."
            self.wrapped(why, 24, body)
        else:
            rows: list[tuple[str, float, bool, Color, float]] = [
                (texts.text("confirm.your_number"), 24, False, DIM_TEXT, 40),
                (ticket.number, 110, True, NUMBER, 130),
                (service_name, 28, True, TEXT, 44),
                (texts.text("confirm.ahead", ahead=ticket.people_ahead), 22, False, TEXT, 34),
                (
                    wait_text(texts, "confirm", ticket.people_ahead, ticket.estimated_wait_s),
                    22,
                    False,
                    TEXT,
                    34,
                ),
            ]
            line = _kind_line(ticket, texts)
            if line is not None:
                rows.insert(3, (line, 22, True, NUMBER, 34))
            if self.portrait:
                rows = [(t, s * 1.4, b, c, h * 1.4) for t, s, b, c, h in rows]
            top = float(area.top)
            for text, size, bold, color, height in rows:
                box = pygame.Rect(area.left, round(top), area.width, round(height * unit))
                where = self.text(text, size, box, bold=bold, color=color)
                if text == ticket.number and ticket.mark:
                    self._mark(where, ticket.mark)
                top += height * unit
            note = "confirm.take_ticket" if outcome.printed else "confirm.not_printed"
            strip = pygame.Rect(
                area.left, round(top + 6 * unit), area.width, back.top - round(top + 12 * unit)
            )
            if not outcome.printed:
                pygame.draw.rect(self.surface, FAULT, strip, border_radius=round(8 * unit))
            self.wrapped(texts.text(note), 20, strip.inflate(-round(16 * unit), 0))
            if ticket.offline:
                mark = pygame.Rect(area.left, area.top, round(200 * unit), 24)
                self.text(texts.text("confirm.offline"), 12, mark, color=DIM_TEXT, align="left")
        self.button(back, "back", "", OK_GREEN)
        self.text(texts.text("confirm.back"), 26, back, bold=True)

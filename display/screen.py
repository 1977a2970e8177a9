"""The call screen in pygame: draws a :class:`~lobby.content.Scene`.

The screen is cut into regions (header, clock, current call, previous calls, services,
ticker). Each region is drawn from its own part of the scene and redrawn only when that
part changed, and only the changed regions are sent to the screen (dirty rectangles),
so an idle display costs next to nothing: the clock region changes once a minute.

:func:`open_screen` opens the screen: KMS/DRM on a Pi without a desktop, a window on a
desktop, or SDL's dummy driver (tests, benchmarks).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from common.display_settings import VideoDriver
from common.errors import PoradovnikError
from common.sdl import pygame
from lobby.catalog import Catalog
from lobby.content import Scene, ShownCall

__all__ = ["CallScreen", "Fonts", "Theme", "open_screen"]

log = logging.getLogger(__name__)

Color = tuple[int, int, int]

TICKER_SPEED = 0.06
"""How fast the ticker scrolls, in screen widths per second."""

TICKER_FPS = 30
"""How often the ticker moves (only its strip is redrawn)."""


@dataclass(frozen=True)
class Theme:
    """The screen's colours."""

    background: Color = (12, 27, 51)
    panel: Color = (22, 45, 84)
    text: Color = (255, 255, 255)
    dim: Color = (160, 180, 210)
    accent: Color = (255, 196, 0)
    """A new call blinks in this colour."""
    on_accent: Color = (12, 27, 51)
    recall: Color = (255, 140, 60)
    warning: Color = (200, 40, 40)


class Fonts:
    """DejaVu Sans (regular and bold) from ``directory``, in any size, cached."""

    FILES: ClassVar[dict[bool, str]] = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}

    def __init__(self, directory: Path) -> None:
        self.paths = {bold: directory / name for bold, name in self.FILES.items()}
        missing = [str(path) for path in self.paths.values() if not path.is_file()]
        if missing:
            raise PoradovnikError(
                f"font not found: {', '.join(missing)}; install the DejaVu fonts "
                "(Debian: apt install fonts-dejavu-core) or set [display] fonts_dir"
            )
        self._fonts: dict[tuple[bool, int], pygame.font.Font] = {}

    def get(self, size: int, *, bold: bool = False) -> pygame.font.Font:
        """The font in ``size`` pixels."""
        key = (bold, max(size, 6))
        font = self._fonts.get(key)
        if font is None:
            font = self._fonts[key] = pygame.font.Font(str(self.paths[bold]), key[1])
        return font

    def fit(self, text: str, width: int, height: int, *, bold: bool = False) -> pygame.font.Font:
        """The largest font in which ``text`` fits a ``width`` × ``height`` box."""
        size = max(int(height * 0.8), 6)
        while size > 6:
            font = self.get(size, bold=bold)
            text_width, text_height = font.size(text)
            if text_width <= width and text_height <= height:
                return font
            size = min(size - 1, int(size * min(width / max(text_width, 1), 1.0)))
        return self.get(6, bold=bold)


def _with_driver(driver: VideoDriver, environ: Mapping[str, str]) -> str | None:
    """The SDL video driver to ask for: ``auto`` means KMS/DRM unless a desktop runs."""
    if driver != "auto":
        return driver
    if environ.get("SDL_VIDEODRIVER"):
        return None  # the environment has chosen already
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None  # SDL picks the desktop's
    return "kmsdrm"


def open_screen(
    *, driver: VideoDriver, width: int, height: int, fullscreen: bool, title: str
) -> pygame.Surface:
    """Open the screen (or a window) and return its surface.

    Raises :class:`PoradovnikError` with a hint when SDL cannot open it.
    """
    chosen = _with_driver(driver, os.environ)
    if chosen is not None:
        os.environ["SDL_VIDEODRIVER"] = chosen
    try:
        pygame.display.init()
        pygame.font.init()
        flags = pygame.FULLSCREEN if fullscreen else 0
        surface = pygame.display.set_mode((width, height), flags)
    except pygame.error as exc:
        used = os.environ.get("SDL_VIDEODRIVER", "SDL's choice")
        raise PoradovnikError(
            f"cannot open the screen ({used}, {width}×{height}): {exc}; on a Pi without a "
            "desktop the service user needs the video and render groups; on a desktop set "
            "[display] fullscreen = false"
        ) from None
    pygame.display.set_caption(title)
    pygame.mouse.set_visible(False)
    log.info("screen %s %d×%d", pygame.display.get_driver(), *surface.get_size())
    return surface


class CallScreen:
    """Draws scenes on ``surface``, only the regions whose content changed.

    ``catalogs`` are the labels by language; ``office`` the office's name; ``logo`` an
    image for the header; ``ticker`` text scrolling at the bottom; ``history`` how many
    previous calls fit the list.
    """

    def __init__(
        self,
        surface: pygame.Surface,
        *,
        fonts: Fonts,
        catalogs: Mapping[str, Catalog],
        office: str,
        history: int = 5,
        logo: Path | None = None,
        ticker: str = "",
        theme: Theme | None = None,
    ) -> None:
        self.surface = surface
        self.fonts = fonts
        self.catalogs = catalogs
        self.office = office
        self.history = history
        self.ticker = ticker
        self.theme = theme or Theme()
        width, height = surface.get_size()
        self.boxes = self._layout(width, height, bool(ticker))
        """Where each part of the screen is drawn, by name."""
        self.logo = self._load_logo(logo) if logo is not None else None
        self._drawn: dict[str, Hashable] = {}
        self._ticker_surface: pygame.Surface | None = None

    # -- layout --------------------------------------------------------------------

    @staticmethod
    def _layout(width: int, height: int, ticker: bool) -> dict[str, pygame.Rect]:
        margin = max(height // 60, 4)
        header_h = height // 10
        ticker_h = height // 14 if ticker else 0
        services_h = height // 5
        body_top = header_h + margin
        body_h = height - body_top - services_h - ticker_h - 2 * margin
        main_w = int(width * 0.62)
        main = pygame.Rect(margin, body_top, main_w - margin, body_h)
        side = pygame.Rect(main_w + margin, body_top, width - main_w - 2 * margin, body_h)
        title_h = main.height // 7
        label_h = main.height // 9
        number_top = main.top + title_h + label_h
        number_h = main.bottom - number_top - margin
        half = main.width // 2
        pad = main.width // 30
        return {
            "header": pygame.Rect(0, 0, width - width // 5, header_h),
            "clock": pygame.Rect(width - width // 5, 0, width // 5, header_h),
            "main": main,
            "title": pygame.Rect(main.left + pad, main.top, main.width - 2 * pad, title_h),
            "ticket_label": pygame.Rect(main.left + pad, main.top + title_h, half - pad, label_h),
            "counter_label": pygame.Rect(main.left + half, main.top + title_h, half - pad, label_h),
            "ticket": pygame.Rect(main.left + pad, number_top, int(half * 1.15) - pad, number_h),
            "counter": pygame.Rect(
                main.left + int(half * 1.15), number_top, int(half * 0.85) - pad, number_h
            ),
            "history": side,
            "services": pygame.Rect(
                margin, side.bottom + margin, width - 2 * margin, services_h - margin
            ),
            "ticker": pygame.Rect(0, height - ticker_h, width, ticker_h),
        }

    def _load_logo(self, path: Path) -> pygame.Surface:
        try:
            image = pygame.image.load(str(path))
        except (pygame.error, OSError, FileNotFoundError) as exc:
            raise PoradovnikError(f"[display] logo: cannot read {path}: {exc}") from None
        box = self.boxes["header"]
        height = int(box.height * 0.8)
        width = max(1, round(image.get_width() * height / max(image.get_height(), 1)))
        return pygame.transform.smoothscale(image.convert_alpha(), (width, height))

    # -- drawing -------------------------------------------------------------------

    def draw(self, scene: Scene, wall: datetime, now: float) -> list[pygame.Rect]:
        """Draw what changed since the last call; return the regions that changed.

        ``wall`` is the office's local time (the clock), ``now`` monotonic seconds (the
        ticker). The caller shows the regions with ``pygame.display.update``.
        """
        catalog = self.catalogs.get(scene.language) or next(iter(self.catalogs.values()))
        regions: list[tuple[str, Hashable, Callable[[], None]]] = [
            ("header", (scene.connected, catalog.lang), lambda: self._header(scene, catalog)),
            ("clock", wall.strftime("%H:%M %d.%m.%Y"), lambda: self._clock(wall)),
            (
                "main",
                (scene.current, scene.lit, catalog.lang, scene.waiting_calls),
                lambda: self._main(scene, catalog),
            ),
            (
                "history",
                (scene.history, catalog.lang),
                lambda: self._history(scene.history, catalog),
            ),
            ("services", (scene.services, catalog.lang), lambda: self._services(scene, catalog)),
        ]
        if self.ticker:
            offset = self.ticker_offset(now)
            regions.append(("ticker", offset, lambda: self._ticker(offset)))
        changed = []
        for name, key, paint in regions:
            if self._drawn.get(name, object()) != key:
                paint()
                self._drawn[name] = key
                changed.append(self.boxes[name])
        return changed

    def invalidate(self) -> None:
        """Forget what was drawn: the next :meth:`draw` redraws everything."""
        self._drawn.clear()
        self.surface.fill(self.theme.background)

    def next_ticker_frame(self, now: float) -> float | None:
        """When the ticker moves next (monotonic seconds), ``None`` without a ticker."""
        if not self.ticker:
            return None
        return (int(now * TICKER_FPS) + 1) / TICKER_FPS

    def ticker_offset(self, now: float) -> int:
        """How far the ticker text has scrolled at ``now``, in pixels."""
        surface = self._ticker_text()
        box = self.boxes["ticker"]
        span = box.width + surface.get_width()
        frame = int(now * TICKER_FPS) / TICKER_FPS
        return int(frame * TICKER_SPEED * box.width) % span

    def text(
        self,
        text: str,
        box: pygame.Rect,
        *,
        color: Color,
        background: Color,
        bold: bool = False,
        align: str = "left",
    ) -> pygame.Rect:
        """Draw ``text`` as large as fits ``box`` on ``background``; return where it went."""
        font = self.fonts.fit(text, box.width, box.height, bold=bold)
        image = self.render(text, font, color, background)
        place = image.get_rect(centery=box.centery)
        if align == "center":
            place.centerx = box.centerx
        elif align == "right":
            place.right = box.right
        else:
            place.left = box.left
        self.surface.blit(image, place)
        return place

    def ticket(
        self, call: ShownCall, box: pygame.Rect, *, color: Color, background: Color
    ) -> pygame.Rect:
        """Draw a call's number in ``box``; return where it went.

        An appointment's, a priority ticket's or a remote ticket's number has its marks
        (:attr:`~lobby.content.ShownCall.mark`, as on its ticket), small, at its top right.
        """
        if not call.mark:
            return self.text(call.ticket, box, color=color, background=background, bold=True)
        mark_w = box.height // 3 * len(call.mark)
        number_box = pygame.Rect(box.left, box.top, box.width - mark_w, box.height)
        place = self.text(call.ticket, number_box, color=color, background=background, bold=True)
        font = self.fonts.get(max(place.height * 2 // 5, 6), bold=True)
        mark = self.render(call.mark, font, color, background)
        self.surface.blit(mark, mark.get_rect(left=place.right + mark_w // 6, top=place.top))
        return place

    @staticmethod
    def render(
        text: str, font: pygame.font.Font, color: Color, background: Color
    ) -> pygame.Surface:
        """``text`` rendered opaque (antialiased onto ``background``)."""
        return font.render(text, True, color, background)

    def _panel(self, box: pygame.Rect, color: Color) -> None:
        self.surface.fill(self.theme.background, box)
        radius = max(box.height // 25, 4)
        pygame.draw.rect(self.surface, color, box, border_radius=radius)

    def _header(self, scene: Scene, catalog: Catalog) -> None:
        theme, box = self.theme, self.boxes["header"]
        self.surface.fill(theme.background, box)
        left = box.left + box.height // 5
        if self.logo is not None:
            self.surface.blit(self.logo, self.logo.get_rect(left=left, centery=box.centery))
            left += self.logo.get_width() + box.height // 5
        name_box = pygame.Rect(left, box.top, box.right - left, box.height)
        if scene.connected:
            self.text(
                self.office,
                name_box.inflate(0, -box.height // 3),
                color=theme.text,
                background=theme.background,
                bold=True,
            )
        else:
            self.surface.fill(theme.warning, name_box)
            self.text(
                catalog.label("offline"),
                name_box.inflate(-box.height // 3, -box.height // 3),
                color=theme.text,
                background=theme.warning,
                bold=True,
            )

    def _clock(self, wall: datetime) -> None:
        theme, box = self.theme, self.boxes["clock"]
        self.surface.fill(theme.background, box)
        inner = box.inflate(-box.height // 3, -box.height // 6)
        top = pygame.Rect(inner.left, inner.top, inner.width, inner.height * 2 // 3)
        bottom = pygame.Rect(inner.left, top.bottom, inner.width, inner.height - top.height)
        self.text(
            wall.strftime("%H:%M"),
            top,
            color=theme.text,
            background=theme.background,
            bold=True,
            align="right",
        )
        date = f"{wall.day}. {wall.month}. {wall.year}"
        self.text(date, bottom, color=theme.dim, background=theme.background, align="right")

    def _main(self, scene: Scene, catalog: Catalog) -> None:
        theme, boxes = self.theme, self.boxes
        call = scene.current
        fill = theme.accent if scene.lit else theme.panel
        ink = theme.on_accent if scene.lit else theme.text
        self._panel(boxes["main"], fill)
        if call is None:
            main = boxes["main"]
            message = main.inflate(-main.width // 8, -main.height * 3 // 4)
            self.text(
                catalog.label("no_calls"), message, color=theme.dim, background=fill, align="center"
            )
            return
        title = catalog.label("recall") if call.recall else catalog.label("now_calling")
        title_ink = theme.recall if call.recall and not scene.lit else ink
        if scene.waiting_calls:
            title = f"{title}  (+{scene.waiting_calls})"
        self.text(
            title,
            boxes["title"].inflate(0, -boxes["title"].height // 4),
            color=title_ink,
            background=fill,
            bold=True,
        )
        label_ink = ink if scene.lit else theme.dim
        self.text(catalog.label("ticket"), boxes["ticket_label"], color=label_ink, background=fill)
        self.text(
            catalog.label("counter"), boxes["counter_label"], color=label_ink, background=fill
        )
        self.ticket(call, boxes["ticket"], color=ink, background=fill)
        self.text(
            counter_text(call),
            boxes["counter"],
            color=ink,
            background=fill,
            bold=True,
            align="center",
        )

    def _history(self, history: tuple[ShownCall, ...], catalog: Catalog) -> None:
        theme, box = self.theme, self.boxes["history"]
        self._panel(box, theme.panel)
        rows = self.history + 1
        row_h = box.height // rows
        pad = box.width // 12
        title = pygame.Rect(box.left + pad, box.top, box.width - 2 * pad, row_h)
        self.text(
            catalog.label("last_calls"),
            title.inflate(0, -row_h // 3),
            color=theme.dim,
            background=theme.panel,
            bold=True,
        )
        for index, call in enumerate(history[: self.history]):
            row = pygame.Rect(
                box.left + pad, box.top + (index + 1) * row_h, box.width - 2 * pad, row_h
            )
            pygame.draw.line(self.surface, theme.background, row.topleft, row.topright, 2)
            inner = row.inflate(0, -row_h // 4)
            left = pygame.Rect(inner.left, inner.top, inner.width * 6 // 10, inner.height)
            right = pygame.Rect(left.right, inner.top, inner.width - left.width, inner.height)
            self.ticket(call, left, color=theme.text, background=theme.panel)
            self.text(
                f"→ {counter_text(call)}",
                right,
                color=theme.text,
                background=theme.panel,
                align="right",
            )

    def _services(self, scene: Scene, catalog: Catalog) -> None:
        theme, box = self.theme, self.boxes["services"]
        self.surface.fill(theme.background, box)
        services = scene.services
        if not services:
            return
        gap = box.height // 12
        width = (box.width - gap * (len(services) - 1)) // len(services)
        for index, row in enumerate(services):
            card = pygame.Rect(box.left + index * (width + gap), box.top, width, box.height)
            self._panel(card, theme.panel)
            inner = card.inflate(-card.width // 10, -card.height // 6)
            third = inner.height // 3
            name = pygame.Rect(inner.left, inner.top, inner.width, third)
            self.text(
                f"{row.prefix}  {row.name(catalog.lang)}",
                name,
                color=theme.text,
                background=theme.panel,
                bold=True,
            )
            lower = pygame.Rect(inner.left, inner.top + third, inner.width, inner.height - third)
            if not row.open:
                self.text(
                    row.closed_text(catalog),
                    lower.inflate(0, -third),
                    color=theme.dim,
                    background=theme.panel,
                )
                continue
            count = pygame.Rect(lower.left, lower.top, lower.width, third)
            wait = pygame.Rect(lower.left, lower.top + third, lower.width, third)
            self.text(
                f"{row.waiting} {catalog.label('waiting')}",
                count,
                color=theme.text,
                background=theme.panel,
            )
            minutes = row.estimated_minutes
            if minutes is not None and row.waiting:
                self.text(
                    catalog.label("estimate", minutes=minutes),
                    wait,
                    color=theme.dim,
                    background=theme.panel,
                )

    def _ticker_text(self) -> pygame.Surface:
        if self._ticker_surface is None:
            box = self.boxes["ticker"]
            font = self.fonts.get(int(box.height * 0.6))
            self._ticker_surface = self.render(self.ticker, font, self.theme.text, self.theme.panel)
        return self._ticker_surface

    def _ticker(self, offset: int) -> None:
        box = self.boxes["ticker"]
        self.surface.fill(self.theme.panel, box)
        image = self._ticker_text()
        place = image.get_rect(centery=box.centery, left=box.right - offset)
        previous = self.surface.get_clip()
        self.surface.set_clip(box)
        self.surface.blit(image, place)
        self.surface.set_clip(previous)


def counter_text(call: ShownCall) -> str:
    """How the screen names a call's counter: its number, or its name if it has none."""
    return call.place

"""The admin's site-wide choices kept in the database: branding and languages."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from sqlalchemy import delete, insert, select

from common.errors import PoradovnikError
from common.i18n import LANGUAGES
from common.settings import Settings
from hub.store import Store, metadata

_table: Final = metadata.tables["site_config"]
_KEY: Final = "branding"
_COLOR_RE: Final = re.compile(r"#[0-9a-fA-F]{6}")


class ConfigError(PoradovnikError):
    """A branding value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Branding:
    """How the portal presents the office."""

    office_name: str
    """The office's name in the portal's header."""
    accent_color: str = "#0b5394"
    """The colour of headers and buttons (``#rrggbb``); dark enough for white text."""
    languages: tuple[str, ...] = LANGUAGES
    """The languages the portal offers, the first being the default."""
    footer: str = ""
    """A line at the bottom of every portal page (address, opening hours…)."""

    def checked(self) -> Branding:
        """Return itself if every value is usable, else raise :class:`ConfigError`."""
        if not 1 <= len(self.office_name.strip()) <= 80:
            raise ConfigError(
                "the office name must have 1-80 characters",
                code="invalid_office_name",
                params={"max": 80},
            )
        if not _COLOR_RE.fullmatch(self.accent_color):
            raise ConfigError(
                "the accent colour must look like #0b5394", code="invalid_accent_color"
            )
        if _luminance(self.accent_color) > 0.18:
            raise ConfigError(
                "the accent colour is too light for white text (WCAG AA)", code="accent_too_light"
            )
        if not self.languages or any(lang not in LANGUAGES for lang in self.languages):
            raise ConfigError(
                f"choose languages from {', '.join(LANGUAGES)}",
                code="invalid_languages",
                params={"languages": ", ".join(LANGUAGES)},
            )
        if len(set(self.languages)) != len(self.languages):
            raise ConfigError("a language is listed twice", code="duplicate_language")
        if len(self.footer) > 200:
            raise ConfigError(
                "the footer may have at most 200 characters",
                code="footer_too_long",
                params={"max": 200},
            )
        return self


class SiteConfig:
    """Reads and saves the :class:`Branding`, starting from the settings file's values."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self._default = Branding(
            office_name=settings.site.name, languages=tuple(settings.site.languages)
        )
        self._lock = threading.Lock()
        self._cached: Branding | None = None
        self.version = 0
        """Grows with every saved change (page caches compare it)."""

    def branding(self) -> Branding:
        """The current branding (cached; saving refreshes it)."""
        cached = self._cached
        if cached is not None:
            return cached
        with self.store.db.connect() as conn:
            value = conn.execute(select(_table.c.value).where(_table.c.key == _KEY)).scalar()
        branding = self._default
        if isinstance(value, dict):
            known = {k: v for k, v in value.items() if k in Branding.__dataclass_fields__}
            if "languages" in known:
                known["languages"] = tuple(known["languages"])
            branding = replace(self._default, **known)
        self._cached = branding
        return branding

    def save(self, branding: Branding) -> None:
        """Check and store new branding."""
        value: dict[str, Any] = asdict(branding.checked())
        value["languages"] = list(branding.languages)
        with self._lock, self.store.transaction() as conn:
            conn.execute(delete(_table).where(_table.c.key == _KEY))
            conn.execute(insert(_table).values(key=_KEY, value=value))
            self._cached = None
            self.version += 1


def _luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb`` (white text needs ≤ 0.18 for 4.5:1)."""

    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
